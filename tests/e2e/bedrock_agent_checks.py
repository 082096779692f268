"""What the Bedrock Agents tests check, for boto3 (test_bedrock_agents.py) and aiobotocore
(test_aiobotocore_agents.py) alike: both apps run the same scenarios against the stand-in of
tests/servers/bedrock_agent_server.py, print the same lines, and must export the same trees."""

from __future__ import annotations

import json
import os
from collections import defaultdict

from tests.e2e.providers import app_env
from tests.e2e.traces import posthog_input, posthog_output, tree

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
ANSWER = "It is sunny in Paris."
# A traced run of the stand-in's agent: its model asks for a tool, looks in a knowledge base,
# and answers.
AGENT_RUN = [
    (0, "$ai_trace", "invoke_agent AGENT123"),
    (1, "$ai_generation", f"chat {MODEL}"),
    (1, "$ai_span", "execute_tool get_weather"),
    (1, "$ai_span", "retrieval KB12345678"),
    (1, "$ai_generation", f"chat {MODEL}"),
]
PRIVACY_SCENARIOS = ("agent", "retrieve", "retrieve_and_generate_stream")
PRIVACY_SPAN_COUNT = 7  # a traced run of five, a retrieval, a retrieve-and-generate


def environment(server, posthog, **extra) -> dict:
    return app_env(
        posthog,
        "AWS_",
        AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME=server.endpoint_url,
        AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY="fake-secret",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_MAX_ATTEMPTS="1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        **extra,
    )


def by_trace(spans: list) -> list:
    """The spans grouped by trace."""
    traces = defaultdict(list)
    for span in spans:
        traces[span["trace_id"]].append(span)
    return list(traces.values())


def run_of(traces: list, session: str) -> list:
    """The one trace with a span of this session id, its spans in the order they started."""
    (found,) = [t for t in traces if any(s["attributes"].get("gen_ai.conversation.id") == session for s in t)]
    return sorted(found, key=lambda s: s["start_ns"])


def state(span: dict, key: str):
    value = span["attributes"].get(key)
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value


def assert_agent_run(run: list) -> None:
    """The traced run of session-0001: the step, its two model calls, its tool and its lookup."""
    assert tree(run) == AGENT_RUN
    agent, first, tool, lookup, last = run
    attrs = agent["attributes"]
    assert attrs["$ai_framework"] == "bedrock_agents"
    assert attrs["gen_ai.provider.name"] == "amazon-bedrock"
    assert attrs["gen_ai.agent.id"] == "AGENT123" and attrs["aws.bedrock.agent.alias_id"] == "ALIAS1"
    assert attrs["$ai_session_id"] == "session-0001"
    assert attrs["$ai_input_state"] == "What is the weather in Paris?"
    assert attrs["$ai_output_state"] == ANSWER
    assert agent["status_code"] != "ERROR"

    # Each model invocation inside the agent is a generation with the tokens Bedrock reports.
    for generation in (first, last):
        attrs = generation["attributes"]
        assert attrs["gen_ai.request.model"] == MODEL
        assert attrs["gen_ai.usage.input_tokens"] == 11 and attrs["gen_ai.usage.output_tokens"] == 7
        assert attrs["$ai_session_id"] == "session-0001"
        assert attrs["$ai_framework"] == "bedrock_agents"
        assert attrs["aws.bedrock.agent.stage"] == "orchestration"
        assert attrs["$ai_model_parameters"]["top_k"] == 250
        assert posthog_input(generation) == [
            {"role": "system", "content": "You are a weather agent."},
            {"role": "user", "content": "What is the weather in Paris?"},
        ]
    assert first["attributes"]["$ai_stop_reason"] == "tool_call"
    assert posthog_output(first)[0]["content"][1] == {
        "type": "function",
        "id": "toolu_1",
        "function": {"name": "weather__get_weather", "arguments": {"city": "Paris"}},
    }
    assert posthog_output(last) == [{"role": "assistant", "content": [{"type": "text", "text": ANSWER}]}]

    assert state(tool, "$ai_input_state") == {"city": "Paris"}
    assert tool["attributes"]["$ai_output_state"] == "Sunny, 21 degrees"
    assert state(lookup, "$ai_input_state") == {"query": "Paris"}
    assert [d["id"] for d in state(lookup, "$ai_output_state")] == ["s3://docs/paris.txt"]


def assert_inline_agent(stdout: str, traces: list) -> None:
    assert "inline_agent 'It is sunny in Paris.' 10" in stdout
    run = run_of(traces, "session-0006")
    assert tree(run) == [(0, "$ai_trace", "invoke_agent Planner"), *AGENT_RUN[1:]]
    assert run[0]["attributes"]["gen_ai.request.model"] == MODEL
    assert run[0]["attributes"]["$ai_input_state"] == "Plan a day in Paris"


def assert_collaborator(traces: list) -> None:
    run = run_of(traces, "session-0003")
    assert tree(run) == [
        (0, "$ai_trace", "invoke_agent supervisor"),
        (1, "$ai_span", "invoke_agent Forecaster"),
        *[(depth + 1, kind, name) for depth, kind, name in AGENT_RUN[1:]],
    ]
    assert run[1]["attributes"]["$ai_input_state"] == "Ask the forecaster"
    assert run[1]["attributes"]["$ai_output_state"] == ANSWER


def assert_concurrent_runs_apart(traces: list) -> None:
    for n in (1, 2):
        run = run_of(traces, f"session-100{n}")
        assert tree(run) == AGENT_RUN
        assert run[0]["attributes"]["$ai_input_state"] == f"Concurrent question {n}"
        assert {s["attributes"].get("$ai_session_id") for s in run if "chat" in s["name"]} == {f"session-100{n}"}


def assert_agent_errors(stdout: str, traces: list) -> None:
    """An HTTP error (404) and an error event midway through the stream."""
    assert "agent_error ResourceNotFoundException ResourceNotFoundException 404" in stdout
    assert "agent_stream_error ['It is sunny '] EventStreamError throttlingException" in stdout
    (missing,) = run_of(traces, "session-0004")
    assert missing["status_code"] == "ERROR"
    assert missing["attributes"]["error.type"] == "botocore.ResourceNotFoundException"
    assert missing["attributes"]["$ai_http_status"] == 404
    (broken,) = run_of(traces, "session-0005")
    assert broken["status_code"] == "ERROR"
    assert broken["attributes"]["error.type"] == "botocore.EventStreamError"
    assert broken["attributes"]["$ai_output_state"] == "It is sunny "  # what the app received


def assert_retrieve(stdout: str, traces: list) -> None:
    """``retrieve``, and one that failed with 429."""
    assert "retrieve [('s3://docs/paris.txt', 0.91), ('s3://docs/berlin.txt', 0.52)]" in stdout
    (step,) = [t[0] for t in traces if t[0]["name"] == "retrieval KB12345678"]
    attrs = step["attributes"]
    assert attrs["gen_ai.provider.name"] == "amazon-bedrock"
    assert attrs["gen_ai.data_source.id"] == "KB12345678"
    assert attrs["gen_ai.request.top_k"] == 2
    assert state(step, "$ai_input_state") == {
        "query": "capital of France",
        "filter": {"equals": {"key": "country", "value": "France"}},
    }
    assert state(step, "$ai_output_state") == [
        {
            "id": "s3://docs/paris.txt",
            "score": 0.91,
            "text": "Paris is the capital of France.",
            "metadata": {
                "x-amz-bedrock-kb-source-uri": "s3://docs/paris.txt",
                "x-amz-bedrock-kb-chunk-id": "chunk-paris",
            },
        },
        {
            "id": "s3://docs/berlin.txt",
            "score": 0.52,
            "text": "Berlin is the capital of Germany.",
            "metadata": {
                "x-amz-bedrock-kb-source-uri": "s3://docs/berlin.txt",
                "x-amz-bedrock-kb-chunk-id": "chunk-erlin",
            },
        },
    ]
    assert "retrieve_error ThrottlingException 429" in stdout
    (failed,) = [t[0] for t in traces if t[0]["name"] == "retrieval KB-error-429"]
    assert failed["status_code"] == "ERROR"
    assert failed["attributes"]["$ai_http_status"] == 429


def assert_retrieve_and_generate(stdout: str, traces: list) -> None:
    """``retrieve_and_generate`` and its stream: one step each."""
    assert "rag It is sunny in Paris. rag-session-1 1" in stdout
    assert "rag_stream rag-session-2 ['output', 'output', 'citation']" in stdout
    for session in ("rag-session-1", "rag-session-2"):
        (step,) = run_of(traces, session)
        attrs = step["attributes"]
        assert step["name"] == "retrieve_and_generate KB12345678"
        assert attrs["gen_ai.request.model"].endswith("foundation-model/" + MODEL)
        assert attrs["gen_ai.request.top_k"] == 3 and attrs["gen_ai.request.max_tokens"] == 300
        assert attrs["$ai_session_id"] == session
        output = state(step, "$ai_output_state")
        assert output["text"] == ANSWER
        assert [r["id"] for r in output["references"]] == ["s3://docs/paris.txt"]
    assert "other bedrock-agent-runtime True" in stdout  # other calls pass through unrecorded


def assert_private(spans: list) -> None:
    """The spans of ``PRIVACY_SCENARIOS`` in privacy mode: structure and usage, no content."""
    assert len(spans) == PRIVACY_SPAN_COUNT
    exported = json.dumps([s["attributes"] for s in spans])
    for content in ("Paris", "weather agent", "capital"):
        assert content not in exported, content
    generations = [s for s in spans if s["name"].startswith("chat ")]
    assert [s["attributes"]["gen_ai.usage.output_tokens"] for s in generations] == [7, 7]
    assert {s["attributes"]["gen_ai.data_source.id"] for s in spans if "retrieval" in s["name"]} == {"KB12345678"}
