"""OpenAI's Responses API wire format: its input items, its output items, usage and status.

Message content and tool definitions share :mod:`.openai_chat`'s readers, which know this
API's part and tool shapes too.
"""

from __future__ import annotations

from typing import Any, Optional

from ..genai import messages as m
from ..genai import semconv
from ..genai.call_types import Usage
from .fields import get, given
from .openai_chat import content_parts, token_usage

_INCOMPLETE_REASONS: dict[Any, str] = {"max_output_tokens": "length", "content_filter": "content_filter"}


def summary_text(item: Any) -> str:
    """A reasoning item's summary, its pieces one a line."""
    return "\n".join(get(s, "text", "") or "" for s in get(item, "summary") or ())


def input_messages(value: Any) -> list:
    """The request's ``input``: a string, or a list of messages and items (tool calls, their
    outputs, reasoning)."""
    if not given(value) or value is None:
        return []
    if isinstance(value, str):
        return [m.message("user", [m.text(value)])]
    result = []
    for item in value:
        kind = get(item, "type")
        if kind == "function_call":
            result.append(
                m.message("assistant", [m.tool_call(get(item, "call_id"), get(item, "name"), get(item, "arguments"))])
            )
        elif kind == "function_call_output":
            result.append(m.message("tool", [m.tool_call_response(get(item, "call_id"), get(item, "output"))]))
        elif kind in (None, "message"):
            result.append(m.message(get(item, "role") or "user", content_parts(get(item, "content"))))
        elif kind == "reasoning":
            result.append(m.message("assistant", [m.reasoning(summary_text(item))]))
        else:
            result.append(m.message("user", [m.generic(kind)]))
    return result


def usage(reported: Any) -> Optional[Usage]:
    """The response's ``usage``, cached and reasoning tokens from its details."""
    return token_usage(reported, _USAGE_KEYS)


_USAGE_KEYS = ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")


def finish_reason(response: Any) -> Optional[str]:
    """From the response's status: ``tool_call`` when it calls a function, ``length`` or
    ``content_filter`` when incomplete, ``error`` when failed."""
    status = get(response, "status")
    if status == "incomplete":
        details = get(response, "incomplete_details")
        return _INCOMPLETE_REASONS.get(get(details, "reason") if details is not None else None, "length")
    if status == "failed":
        return "error"
    if any(get(item, "type") == "function_call" for item in get(response, "output") or ()):
        return "tool_call"
    return "stop" if status == "completed" else status


def response_details(response: Any) -> dict:
    """What a response reports beside its output, as the keyword arguments of the call's ``set_response``."""
    reason = finish_reason(response)
    return dict(
        model=get(response, "model"),
        response_id=get(response, "id"),
        finish_reasons=[reason] if reason else None,
        usage=usage(get(response, "usage")),
        attributes={semconv.OPENAI_RESPONSE_SERVICE_TIER: get(response, "service_tier")},
    )


def output_message(response: Any) -> dict:
    """The response's output items as one assistant message: text, tool calls, reasoning
    summaries, and the server-side tools it ran (web search, ...) by name."""
    parts = []
    for item in get(response, "output") or ():
        kind = get(item, "type")
        if kind == "message":
            parts.extend(content_parts(get(item, "content")))
        elif kind == "function_call":
            parts.append(m.tool_call(get(item, "call_id"), get(item, "name"), get(item, "arguments")))
        elif kind == "reasoning":
            summary = summary_text(item)
            if summary:
                parts.append(m.reasoning(summary))
        elif kind:
            parts.append(m.generic("server_tool_call", name=kind, id=get(item, "id")))
    return m.output_message(parts, finish_reason(response))
