"""The spans Pydantic AI records itself, as our framework adapters record theirs.

Pydantic AI traces itself once an agent is instrumented (our adapter switches that on): its
agent, tool and model-request spans become the steps and generations our framework adapters
record. ``complete_span`` does that; the adapter registers it for ``SCOPE`` (see
``genai.self_tracing``). It runs after privacy has removed content, so everything derived
from content (an agent's input and output state) is derived from what privacy left.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from ..genai import messages as m
from ..genai import semconv
from .conventions_json import part as part_as_built
from .conventions_json import rewrite_json

#: The instrumentation scope of Pydantic AI's spans.
SCOPE = "pydantic-ai"
FRAMEWORK = "pydantic-ai"

# Logfire's rendering hints, the framework's run bookkeeping, and what our spans record under
# the conventions' names (or not at all): the agent's model and name, its run id, its
# aggregated usage (the generations carry the usage), the request parameters (tool definitions
# are in gen_ai.tool.definitions), the legacy gen_ai.system, and the price it computed
# (PostHog prices generations itself). These keys are also what PostHog's ingestion recognises
# Pydantic AI by; with them gone its spans take the same path as ours.
_PYDANTIC_AI_ONLY = frozenset(
    {
        "logfire.msg",
        "logfire.json_schema",
        "logfire.span_type",
        "logfire.tags",
        "model_name",
        "agent_name",
        "final_result",
        "metadata",
        "model_request_parameters",
        "gen_ai.system",
        "gen_ai.agent.call.id",
        "operation.cost",
    }
)
_PYDANTIC_AI_ONLY_PREFIXES = ("pydantic_ai.", "gen_ai.aggregated_usage.", "gen_ai.usage.details.", "logfire.")
_PYDANTIC_AI_TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
_PYDANTIC_AI_USAGE_DETAILS = {
    "gen_ai.usage.details.reasoning_tokens": semconv.USAGE_REASONING_OUTPUT_TOKENS,
    "gen_ai.usage.details.cache_write_tokens": semconv.USAGE_CACHE_CREATION_INPUT_TOKENS,
}


def complete_span(attrs: dict) -> None:
    """Rewrite the attributes of a span Pydantic AI recorded (a copy, after privacy) in place."""
    operation = attrs.get(semconv.OPERATION_NAME)
    if operation == semconv.Operation.CHAT:
        _pydantic_ai_model_request(attrs)
    elif operation == semconv.Operation.INVOKE_AGENT:
        _pydantic_ai_agent_run(attrs)
    if not any(key.startswith("gen_ai.") and not _pydantic_ai_only(key) for key in attrs):
        # A span of another kind with nothing of the conventions: its own keys are what makes
        # it an AI span for PostHog (a step), so they stay.
        return
    attrs[semconv.FRAMEWORK] = FRAMEWORK
    for key in [k for k in attrs if _pydantic_ai_only(k)]:
        del attrs[key]


def _pydantic_ai_only(key: str) -> bool:
    return key in _PYDANTIC_AI_ONLY or key.startswith(_PYDANTIC_AI_ONLY_PREFIXES)


def _pydantic_ai_model_request(attrs: dict) -> None:
    """A model request: the generation (a model we do not instrument) or, delegated, a step."""
    for detail, key in _PYDANTIC_AI_USAGE_DETAILS.items():
        value = attrs.get(detail)
        if isinstance(value, int) and not isinstance(value, bool):
            attrs.setdefault(key, value)
    first_chunk = attrs.pop(_PYDANTIC_AI_TIME_TO_FIRST_CHUNK, None)
    if first_chunk is not None:
        # Only streamed requests have a first chunk.
        attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] = first_chunk
        attrs.setdefault(semconv.REQUEST_STREAM, True)
    rewrite_json(attrs, semconv.SYSTEM_INSTRUCTIONS, lambda parts: [_pydantic_ai_part(p) for p in parts])
    rewrite_json(attrs, semconv.INPUT_MESSAGES, _pydantic_ai_messages)
    rewrite_json(
        attrs,
        semconv.OUTPUT_MESSAGES,
        lambda messages: [
            m.output_message(
                [_pydantic_ai_part(p) for p in msg.get("parts") or ()],
                msg.get("finish_reason"),
                msg.get("role") or "assistant",
            )
            for msg in messages
        ],
    )


def _pydantic_ai_messages(messages: list) -> list:
    # Input messages as our builders write them: role and parts (a response in the history
    # keeps no finish reason).
    return [
        m.message(msg.get("role") or "user", [_pydantic_ai_part(p) for p in msg.get("parts") or ()]) for msg in messages
    ]


def _pydantic_ai_part(part: Any) -> Any:
    """Pydantic AI's parts as our builders write them: tool arguments as objects, a tool's result
    as the conventions' ``response``, no tool name on a response, no visibility markers. Parts
    recorded without content (an app's ``include_content=False``) stay without it."""
    if not isinstance(part, dict):
        return part
    kind = part.get("type")
    if kind == "tool_call_response" and ("result" in part or "response" in part):
        return m.tool_call_response(part.get("id"), part.get("response", part.get("result")))
    if kind == "tool_call" and "arguments" in part:
        return m.tool_call(part.get("id"), part.get("name"), part.get("arguments"))
    if kind in ("text", "reasoning") and "content" in part:
        return part_as_built(part)
    return {k: v for k, v in part.items() if k != "visible"}


def _pydantic_ai_agent_run(attrs: dict) -> None:
    """An agent run: a step whose input is the run's prompt and whose output is its result."""
    model = attrs.get("model_name")
    if isinstance(model, str) and model and model != "no-model":
        attrs.setdefault(semconv.REQUEST_MODEL, model)
    # The run's instructions are in its model requests; on a step PostHog would show them as input.
    attrs.pop(semconv.SYSTEM_INSTRUCTIONS, None)
    prompt = _pydantic_ai_prompt(
        attrs.get("pydantic_ai.all_messages"), bool(attrs.get("pydantic_ai.new_message_index"))
    )
    if prompt is not None:
        attrs[semconv.INPUT_STATE] = m.to_json(prompt)
    result = attrs.get("final_result")
    if result is not None:
        attrs[semconv.OUTPUT_STATE] = result if isinstance(result, str) else m.to_json(result)


def _pydantic_ai_prompt(all_messages: Any, has_history: bool) -> Optional[list]:
    """The run's prompt, from the run's whole conversation (history included).

    Without history the prompt is the first user message; with history, the last one (tool
    results are not user messages in format version 6; in older formats, and after a retry the
    model was told about in a user message, the last user message may be that instead).
    """
    if not isinstance(all_messages, str):
        return None
    try:
        messages = json.loads(all_messages)
    except ValueError:
        return None
    if not isinstance(messages, list):
        return None
    users = [msg for msg in messages if isinstance(msg, dict) and msg.get("role") == "user"]
    if not users:
        return None
    chosen = users[-1] if has_history else users[0]
    return _pydantic_ai_messages([chosen])
