"""Spans that libraries record themselves, rewritten into what our own adapters record.

Some SDKs trace themselves (``anthropic`` since 1.14). Where one does, its span is the only
span of the call (one call, one generation), so the PostHog copy of that span must say what
our adapter would have said: the same attribute keys, the same message JSON, input tokens
that include cache tokens, the same finish reasons and error types. ``complete`` does that,
in place, on the export thread, for the spans it recognises by instrumentation scope; any
other span is left alone. It never raises.

Frameworks that trace themselves (Pydantic AI) are completed the same way: their agent, tool
and model-request spans become the steps and generations our framework adapters record. They
come here after privacy has removed content, so everything derived from content (an agent's
input and output state) is derived from what privacy left.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, Optional

from ..genai import messages as m
from ..genai import semconv

logger = logging.getLogger("posthog_autoinstrument")

ANTHROPIC_SCOPE = "com.anthropic.sdk.python"
PYDANTIC_AI_SCOPE = "pydantic-ai"


# Returned by complete() for a native span that is not an AI event (an SDK's count_tokens,
# files or models call): PostHog should not receive it.
NOT_AI = object()


def complete(attrs: dict, scope_name: Optional[str]):
    """Rewrite a native span's attributes (``attrs``, a copy) into our adapter's dialect.

    Returns the span name our adapter would have used, ``NOT_AI`` for a span that must not be
    exported, or None to keep the span as it is.
    """
    if attrs.get(semconv.DELEGATED):
        _other_conventions_step(attrs)
    if not scope_name:
        return None
    try:
        if scope_name == ANTHROPIC_SCOPE or scope_name.startswith(ANTHROPIC_SCOPE + "."):
            if attrs.get(semconv.OPERATION_NAME) != semconv.Operation.CHAT:
                return NOT_AI
            _anthropic_message(attrs)
            model = attrs.get(semconv.REQUEST_MODEL)
            return f"{semconv.Operation.CHAT} {model}" if model else semconv.Operation.CHAT
        if scope_name == PYDANTIC_AI_SCOPE:
            _pydantic_ai(attrs)
    except Exception:
        logger.debug("posthog-instrument: could not complete a %s span", scope_name, exc_info=True)
    return None


# -- another recorder's model call around ours ------------------------------------------------

# What makes PostHog's ingestion count a span of OpenLLMetry or OpenInference as a generation or
# an embedding, and the token counts it reads from them (rust/capture/src/otel/providers.rs,
# nodejs/src/ingestion/pipelines/ai/otel/middleware/{traceloop,openinference}.ts).
_OTHER_TOKEN_PREFIXES = ("llm.usage.", "llm.token_count.")
_OPENINFERENCE_SPAN_KIND = "openinference.span.kind"


def _other_conventions_step(attrs: dict) -> None:
    """A delegated model call (a step now, see genai.spans.model_call_starts) recorded in
    another convention: it must not stay a generation, nor carry tokens, under that one either
    (the PostHog dialect does the same for the GenAI conventions' keys)."""
    attrs.pop("llm.request.type", None)
    if attrs.get(_OPENINFERENCE_SPAN_KIND) in ("LLM", "EMBEDDING"):
        attrs[_OPENINFERENCE_SPAN_KIND] = "CHAIN"
    for key in [k for k in attrs if k.startswith(_OTHER_TOKEN_PREFIXES)]:
        del attrs[key]


# -- anthropic ---------------------------------------------------------------------------------

# What the SDK's span records that our adapter does not: transport details, ids of the API
# request, organisation and workspace, the beta header, and its own truncation marker.
_ANTHROPIC_ONLY = frozenset({
    "http.request.method", "http.route", "http.request.resend_count",
    "url.scheme", "url.path", "url.query", "url.full",
    "anthropic.request.id", "anthropic.organization.id", "anthropic.workspace.id",
    "anthropic.beta", "anthropic.content.truncated",
})
_STOP_REASON = "anthropic.message.stop_reason"

# The SDK's error.type for failures that have no API error envelope.
_ANTHROPIC_TRANSPORT_ERRORS = {
    "client_timeout_error": "APITimeoutError",
    "connection_error": "APIConnectionError",
}
# Status codes to exception classes, for SDKs without a table of their own to consult.
_ANTHROPIC_STATUS_ERRORS = {
    400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError", 404: "NotFoundError",
    409: "ConflictError", 413: "RequestTooLargeError", 422: "UnprocessableEntityError", 429: "RateLimitError",
    529: "OverloadedError",
}


def _anthropic_message(attrs: dict) -> None:
    from ..instrumentation.anthropic import finish_reason

    for key in _ANTHROPIC_ONLY:
        attrs.pop(key, None)
    cache_write = attrs.pop(semconv.USAGE_CACHE_WRITE_INPUT_TOKENS, None)
    if cache_write is not None:
        attrs.setdefault(semconv.USAGE_CACHE_CREATION_INPUT_TOKENS, cache_write)
    reason = finish_reason(attrs.pop(_STOP_REASON, None))
    if reason:
        attrs[semconv.RESPONSE_FINISH_REASONS] = (reason,)  # as a span attribute holds it

    _rewrite_json(attrs, semconv.SYSTEM_INSTRUCTIONS, lambda parts: [_part(p) for p in parts])
    _rewrite_json(attrs, semconv.INPUT_MESSAGES, lambda messages: [
        m.message(msg.get("role") or "user", [_part(p) for p in msg.get("parts") or ()]) for msg in messages])
    _rewrite_json(attrs, semconv.OUTPUT_MESSAGES, lambda messages: [
        m.output_message([_part(p) for p in msg.get("parts") or ()], reason, msg.get("role") or "assistant")
        for msg in messages])

    error = attrs.get(semconv.ERROR_TYPE)
    if error is None:
        # Our spans carry a status code only for a failed call (PostHog reads it as the error's).
        attrs.pop(semconv.HTTP_RESPONSE_STATUS_CODE, None)
    elif isinstance(error, str):
        status = attrs.get(semconv.HTTP_RESPONSE_STATUS_CODE)
        if error == "connection_error" and isinstance(status, int) and status < 400:
            # The body broke off after a successful response: the app saw the HTTP client's
            # transport error, which carries no status code.
            attrs.pop(semconv.HTTP_RESPONSE_STATUS_CODE, None)
            error = "transport_error"
        exception = _anthropic_exception(error, attrs.get(semconv.HTTP_RESPONSE_STATUS_CODE))
        if exception:
            attrs[semconv.ERROR_TYPE] = exception
            # The SDK's span has no exception event: say what failed, without any message text.
            attrs.setdefault("$ai_error", f"{exception}: {error}")


def _anthropic_exception(error: str, status: Any) -> Optional[str]:
    """The ``error.type`` our adapter records for the failure the SDK recorded as ``error``."""
    name = _ANTHROPIC_TRANSPORT_ERRORS.get(error)
    if name is None and isinstance(status, int) and not isinstance(status, bool):
        table = getattr(sys.modules.get("anthropic._error_classes"), "ERROR_CLASSES", None)
        found = table.get((status, None)) if isinstance(table, dict) else None
        if found is not None:
            name = found.__qualname__
        else:
            name = _ANTHROPIC_STATUS_ERRORS.get(status) or ("InternalServerError" if status >= 500 else "APIStatusError")
    if error == "transport_error":
        return "httpx2.TransportError"
    return f"anthropic.{name}" if name else None


def _part(part: Any) -> Any:
    """A part as our message builders write it (same keys, same order)."""
    if not isinstance(part, dict):
        return part
    kind = part.get("type")
    if kind == "text":
        return m.text(part.get("content"))
    if kind == "reasoning":
        return m.reasoning(part.get("content"))
    if kind == "tool_call":
        rebuilt = m.tool_call(part.get("id"), part.get("name"), part.get("arguments"))
        rebuilt.update({k: v for k, v in part.items() if k not in ("type", "id", "name", "arguments") and v is not None})
        return rebuilt
    if kind == "tool_call_response":
        return m.tool_call_response(part.get("id"), part.get("response"))
    return part


def _rewrite_json(attrs: dict, key: str, rewrite) -> None:
    value = attrs.get(key)
    if not isinstance(value, str):
        return
    try:
        parsed = json.loads(value)
    except ValueError:
        return
    if isinstance(parsed, list):
        attrs[key] = m.to_json(rewrite([item for item in parsed if isinstance(item, dict)]))


# -- pydantic-ai -------------------------------------------------------------------------------

PYDANTIC_AI_FRAMEWORK = "pydantic-ai"

# Logfire's rendering hints, the framework's run bookkeeping, and what our spans record under
# the conventions' names (or not at all): the agent's model and name, its run id, its
# aggregated usage (the generations carry the usage), the request parameters (tool definitions
# are in gen_ai.tool.definitions), the legacy gen_ai.system, and the price it computed
# (PostHog prices generations itself). These keys are also what PostHog's ingestion recognises
# Pydantic AI by; with them gone its spans take the same path as ours.
_PYDANTIC_AI_ONLY = frozenset({
    "logfire.msg", "logfire.json_schema", "logfire.span_type", "logfire.tags",
    "model_name", "agent_name", "final_result", "metadata", "model_request_parameters",
    "gen_ai.system", "gen_ai.agent.call.id", "operation.cost",
})
_PYDANTIC_AI_ONLY_PREFIXES = ("pydantic_ai.", "gen_ai.aggregated_usage.", "gen_ai.usage.details.", "logfire.")
_PYDANTIC_AI_TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
_PYDANTIC_AI_USAGE_DETAILS = {
    "gen_ai.usage.details.reasoning_tokens": semconv.USAGE_REASONING_OUTPUT_TOKENS,
    "gen_ai.usage.details.cache_write_tokens": semconv.USAGE_CACHE_CREATION_INPUT_TOKENS,
}


def _pydantic_ai(attrs: dict) -> None:
    operation = attrs.get(semconv.OPERATION_NAME)
    if operation == semconv.Operation.CHAT:
        _pydantic_ai_model_request(attrs)
    elif operation == semconv.Operation.INVOKE_AGENT:
        _pydantic_ai_agent_run(attrs)
    if not any(key.startswith("gen_ai.") and not _pydantic_ai_only(key) for key in attrs):
        # A span of another kind with nothing of the conventions: its own keys are what makes
        # it an AI span for PostHog (a step), so they stay.
        return
    attrs[semconv.FRAMEWORK] = PYDANTIC_AI_FRAMEWORK
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
    _rewrite_json(attrs, semconv.SYSTEM_INSTRUCTIONS, lambda parts: [_pydantic_ai_part(p) for p in parts])
    _rewrite_json(attrs, semconv.INPUT_MESSAGES, _pydantic_ai_messages)
    _rewrite_json(attrs, semconv.OUTPUT_MESSAGES, lambda messages: [
        m.output_message([_pydantic_ai_part(p) for p in msg.get("parts") or ()], msg.get("finish_reason"),
                         msg.get("role") or "assistant")
        for msg in messages])


def _pydantic_ai_messages(messages: list) -> list:
    # Input messages as our builders write them: role and parts (a response in the history
    # keeps no finish reason).
    return [m.message(msg.get("role") or "user", [_pydantic_ai_part(p) for p in msg.get("parts") or ()])
            for msg in messages]


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
        return _part(part)
    return {k: v for k, v in part.items() if k != "visible"}


def _pydantic_ai_agent_run(attrs: dict) -> None:
    """An agent run: a step whose input is the run's prompt and whose output is its result."""
    model = attrs.get("model_name")
    if isinstance(model, str) and model and model != "no-model":
        attrs.setdefault(semconv.REQUEST_MODEL, model)
    # The run's instructions are in its model requests; on a step PostHog would show them as input.
    attrs.pop(semconv.SYSTEM_INSTRUCTIONS, None)
    prompt = _pydantic_ai_prompt(attrs.get("pydantic_ai.all_messages"),
                                 bool(attrs.get("pydantic_ai.new_message_index")))
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
