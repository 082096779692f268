"""A loopback stand-in for Agents for Amazon Bedrock's runtime API (``bedrock-agent-runtime``).

boto3 reaches it through ``AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME`` with fake credentials
(requests without a SigV4 ``Authorization`` header are refused, as AWS does). Real wire format:

* ``POST /agents/{agentId}/agentAliases/{aliasId}/sessions/{sessionId}/text`` (InvokeAgent) and
  ``POST /agents/{sessionId}`` (InvokeInlineAgent, the agent named by ``agentName``): an
  ``application/vnd.amazon.eventstream`` stream (the framing of :mod:`.bedrock_server`) of
  ``chunk`` events (``{"bytes": base64}``) and, with ``enableTrace``, ``trace`` events shaped as
  AWS sends them: an orchestration step whose model invocation asks for a tool (an action
  group), a knowledge-base lookup, and a last model invocation giving the final response;
  the agent id ``supervisor`` adds a collaborator agent with its own trace;
* ``POST /knowledgebases/{id}/retrieve``, ``/retrieveAndGenerate``: JSON;
* ``POST /retrieveAndGenerateStream``: ``output`` and ``citation`` events, the session id in
  the ``x-amzn-bedrock-knowledge-base-session-id`` header.

An agent or knowledge-base id ``error-<status>`` fails with that status as AWS does (status,
``x-amzn-ErrorType``, ``{"message"}``); the agent id ``stream-error`` sends a
``throttlingException`` event after its first chunk; ``return-control`` hands a function call back
(a ``returnControl`` event) instead of answering.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any, Iterator
from urllib.parse import unquote

from ._http import BaseHandler, RecordingServer
from .bedrock_server import _ERRORS, event, exception_event

ANSWER_PIECES = ["It is sunny ", "in Paris."]
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
INPUT_TOKENS, OUTPUT_TOKENS = 11, 7
DOCUMENTS = [
    ("s3://docs/paris.txt", 0.91, "Paris is the capital of France."),
    ("s3://docs/berlin.txt", 0.52, "Berlin is the capital of Germany."),
]

_AGENT = re.compile(r"^/agents/(?P<agent>[^/]+)/agentAliases/(?P<alias>[^/]+)/sessions/(?P<session>[^/]+)/text$")
_INLINE_AGENT = re.compile(r"^/agents/(?P<session>[^/]+)/?$")
_RETRIEVE = re.compile(r"^/knowledgebases/(?P<kb>[^/]+)/retrieve$")


def reference(uri: str, score: float, text: str, with_score: bool = True) -> dict:
    found = {
        "content": {"text": text, "type": "TEXT"},
        "location": {"type": "S3", "s3Location": {"uri": uri}},
        "metadata": {"x-amz-bedrock-kb-source-uri": uri, "x-amz-bedrock-kb-chunk-id": "chunk-" + uri[-9:-4]},
    }
    if with_score:
        found["score"] = score
    return found


# -- InvokeAgent ---------------------------------------------------------------------------


def chunk(text: str) -> bytes:
    return event("chunk", {"bytes": base64.b64encode(text.encode()).decode()})


def trace(agent_id: str, session_id: str, step: dict, collaborator: str | None = None) -> bytes:
    part = {
        "agentId": agent_id,
        "agentAliasId": "ALIAS1",
        "agentVersion": "1",
        "sessionId": session_id,
        "eventTime": "2026-01-01T00:00:00Z",
        "callerChain": [{"agentAliasArn": f"arn:aws:bedrock:us-east-1:123456789012:agent-alias/{agent_id}/ALIAS1"}],
        "trace": step,
    }
    if collaborator:
        part["collaboratorName"] = collaborator
        part["callerChain"].append({"agentAliasArn": "arn:aws:bedrock:us-east-1:123456789012:agent-alias/SUB/ALIAS2"})
    return event("trace", part)


def model_input(trace_id: str, question: str) -> dict:
    prompt = {"system": "You are a weather agent.", "messages": [{"role": "user", "content": question}]}
    return {
        "modelInvocationInput": {
            "traceId": trace_id,
            "type": "ORCHESTRATION",
            "foundationModel": MODEL,
            "text": json.dumps(prompt),
            "inferenceConfiguration": {
                "maximumLength": 2048,
                "temperature": 0.0,
                "topP": 1.0,
                "topK": 250,
                "stopSequences": ["</invoke>"],
            },
        }
    }


def model_output(trace_id: str, content: list, stop: str) -> dict:
    raw = {
        "id": "msg_agent_" + trace_id[-1],
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-haiku-20241022",
        "content": content,
        "stop_reason": stop,
        "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS},
    }
    return {
        "modelInvocationOutput": {
            "traceId": trace_id,
            "rawResponse": {"content": json.dumps(raw)},
            "metadata": {"usage": {"inputTokens": INPUT_TOKENS, "outputTokens": OUTPUT_TOKENS}},
        }
    }


def orchestration(agent_id: str, session_id: str, question: str, collaborator: str | None = None) -> list:
    """The trace of one agent's run: tool, knowledge base, answer."""
    prefix = f"{collaborator or 'main'}-{session_id[-4:]}"
    answer = "".join(ANSWER_PIECES)

    def step(body: dict) -> bytes:
        return trace(agent_id, session_id, {"orchestrationTrace": body}, collaborator)

    tool_use = [
        {"type": "text", "text": "I will look up the weather."},
        {"type": "tool_use", "id": "toolu_1", "name": "weather__get_weather", "input": {"city": "Paris"}},
    ]
    return [
        step(model_input(f"{prefix}-0", question)),
        step(model_output(f"{prefix}-0", tool_use, "tool_use")),
        step({"rationale": {"traceId": f"{prefix}-0", "text": "I will look up the weather."}}),
        step(
            {
                "invocationInput": {
                    "traceId": f"{prefix}-0",
                    "invocationType": "ACTION_GROUP",
                    "actionGroupInvocationInput": {
                        "actionGroupName": "weather",
                        "function": "get_weather",
                        "executionType": "LAMBDA",
                        "parameters": [{"name": "city", "type": "string", "value": "Paris"}],
                    },
                }
            }
        ),
        step(
            {
                "observation": {
                    "traceId": f"{prefix}-0",
                    "type": "ACTION_GROUP",
                    "actionGroupInvocationOutput": {"text": "Sunny, 21 degrees"},
                }
            }
        ),
        step(
            {
                "invocationInput": {
                    "traceId": f"{prefix}-1",
                    "invocationType": "KNOWLEDGE_BASE",
                    "knowledgeBaseLookupInput": {"knowledgeBaseId": "KB12345678", "text": "Paris"},
                }
            }
        ),
        step(
            {
                "observation": {
                    "traceId": f"{prefix}-1",
                    "type": "KNOWLEDGE_BASE",
                    "knowledgeBaseLookupOutput": {
                        "retrievedReferences": [reference(*DOCUMENTS[0], with_score=False)],
                        "metadata": {"totalTimeMs": 40},
                    },
                }
            }
        ),
        step(model_input(f"{prefix}-2", question)),
        step(model_output(f"{prefix}-2", [{"type": "text", "text": answer}], "end_turn")),
        step(
            {
                "observation": {
                    "traceId": f"{prefix}-2",
                    "type": "FINISH",
                    "finalResponse": {"text": answer, "metadata": {"operationTotalTimeMs": 900}},
                }
            }
        ),
    ]


def supervisor(agent_id: str, session_id: str, question: str) -> list:
    """A supervisor handing the question to its collaborator ``Forecaster``."""
    events = [
        trace(
            agent_id,
            session_id,
            {
                "orchestrationTrace": {
                    "invocationInput": {
                        "traceId": "sup-0",
                        "invocationType": "AGENT_COLLABORATOR",
                        "agentCollaboratorInvocationInput": {
                            "agentCollaboratorName": "Forecaster",
                            "input": {"type": "TEXT", "text": question},
                        },
                    }
                }
            },
        )
    ]
    events += orchestration(agent_id, session_id, question, collaborator="Forecaster")
    events.append(
        trace(
            agent_id,
            session_id,
            {
                "orchestrationTrace": {
                    "observation": {
                        "traceId": "sup-0",
                        "type": "AGENT_COLLABORATOR",
                        "agentCollaboratorInvocationOutput": {
                            "agentCollaboratorName": "Forecaster",
                            "output": {"type": "TEXT", "text": "".join(ANSWER_PIECES)},
                        },
                    }
                }
            },
        )
    )
    return events


def agent_events(agent_id: str, session_id: str, body: dict) -> Iterator[bytes]:
    question = body.get("inputText") or ""
    if body.get("enableTrace"):
        yield from (supervisor if agent_id == "supervisor" else orchestration)(agent_id, session_id, question)
    if agent_id == "return-control":  # the agent hands the tool call back to the app
        function = {
            "actionGroup": "weather",
            "function": "get_weather",
            "parameters": [{"name": "city", "type": "string", "value": "Paris"}],
        }
        yield event(
            "returnControl", {"invocationId": "inv-1", "invocationInputs": [{"functionInvocationInput": function}]}
        )
        return
    for n, piece in enumerate(ANSWER_PIECES):
        if agent_id == "stream-error" and n == 1:
            yield exception_event("throttlingException", "Your request rate is too high.")
            return
        yield chunk(piece)


# -- knowledge bases -------------------------------------------------------------------------


def retrieve_response(body: dict) -> dict:
    search = (body.get("retrievalConfiguration") or {}).get("vectorSearchConfiguration") or {}
    count = search.get("numberOfResults") or len(DOCUMENTS)
    return {"retrievalResults": [reference(*d) for d in DOCUMENTS[:count]]}


def citations() -> list:
    answer = "".join(ANSWER_PIECES)
    return [
        {
            "generatedResponsePart": {"textResponsePart": {"text": answer, "span": {"start": 0, "end": len(answer)}}},
            "retrievedReferences": [reference(*DOCUMENTS[0], with_score=False)],
        }
    ]


# -- the server ------------------------------------------------------------------------------


class FakeBedrockAgent(RecordingServer):
    """bedrock-agent-runtime on 127.0.0.1; ``endpoint_url`` is the value for boto3."""

    def __init__(self) -> None:
        super().__init__()
        self.handler_class = _AgentHandler

    @property
    def endpoint_url(self) -> str:
        return self.root_url


class _AgentHandler(BaseHandler):
    server_version = "fake-bedrock-agent/1"

    def do_POST(self) -> None:  # noqa: N802
        path, _ = self.split_path()
        headers = self.lowered_headers()
        raw = self.read_body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        self.owner._record({"path": path, "headers": headers, "json": body})
        try:
            self._answer(unquote(path), headers, body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _answer(self, path: str, headers: dict, body: Any) -> None:
        if not headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 Credential="):
            return self._error(403, "AccessDeniedException", "Missing Authentication Token")
        if not isinstance(body, dict):
            return self._error(400, "ValidationException", "Malformed request")
        agent, retrieve = _AGENT.match(path), _RETRIEVE.match(path)
        inline = _INLINE_AGENT.match(path)
        if inline:
            agent = {"agent": body.get("agentName") or "inline", "session": inline.group("session")}
        elif agent:
            agent = agent.groupdict()
        target = agent["agent"] if agent else retrieve.group("kb") if retrieve else ""
        if path == "/retrieveAndGenerate" or path == "/retrieveAndGenerateStream":
            target = ((body.get("retrieveAndGenerateConfiguration") or {}).get("knowledgeBaseConfiguration") or {}).get(
                "knowledgeBaseId", ""
            )
        fault = re.search(r"error-(\d{3})", target)
        if fault:
            status = int(fault.group(1))
            return self._error(status, _ERRORS.get(status, "InternalServerException"), f"Fake failure {status}")
        if agent:
            session = agent["session"]
            self.start_chunked(
                200,
                "application/vnd.amazon.eventstream",
                {
                    **self._meta(),
                    "x-amz-bedrock-agent-session-id": session,
                    "x-amzn-bedrock-agent-content-type": "application/json",
                },
            )
            for message in agent_events(agent["agent"], session, body):
                self.write_chunk(message)
            return self.end_chunked()
        if retrieve:
            return self.send_json(200, retrieve_response(body), self._meta())
        if path == "/retrieveAndGenerate":
            answer = {
                "output": {"text": "".join(ANSWER_PIECES)},
                "citations": citations(),
                "sessionId": "rag-session-1",
            }
            return self.send_json(200, answer, self._meta())
        if path == "/retrieveAndGenerateStream":
            self.start_chunked(
                200,
                "application/vnd.amazon.eventstream",
                {**self._meta(), "x-amzn-bedrock-knowledge-base-session-id": "rag-session-2"},
            )
            for piece in ANSWER_PIECES:
                self.write_chunk(event("output", {"text": piece}))
            self.write_chunk(event("citation", {"citation": citations()[0]}))
            return self.end_chunked()
        return self._error(404, "UnknownOperationException", "Unknown operation")

    def _meta(self) -> dict:
        return {"x-amzn-RequestId": str(uuid.uuid4())}

    def _error(self, status: int, code: str, message: str) -> None:
        self.send_json(status, {"message": message}, {**self._meta(), "x-amzn-ErrorType": f"{code}:http://internal"})
