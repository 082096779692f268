"""The spans Strands Agents records itself, as our framework adapters record theirs.

Strands traces every agent run into the global tracer provider: ``invoke_agent <name>`` per run,
``execute_event_loop_cycle`` per cycle of its event loop, ``chat`` per model request and
``execute_tool <name>`` per tool call (``invoke_swarm`` / ``invoke_graph`` for multi-agent runs).
Its content is in span events, in one of two styles chosen by ``OTEL_SEMCONV_STABILITY_OPT_IN``:

* by default, the conventions' older per-message events: ``gen_ai.system.message``,
  ``gen_ai.user.message``, ``gen_ai.assistant.message``, ``gen_ai.tool.message`` (content: JSON
  of Strands' content blocks) and ``gen_ai.choice`` (``message``, ``finish_reason``, and a
  cycle's ``tool.result``); the provider is in ``gen_ai.system``;
* with ``gen_ai_latest_experimental``, ``gen_ai.client.inference.operation.details`` events
  carrying ``gen_ai.input.messages`` / ``gen_ai.output.messages`` / ``gen_ai.system_instructions``
  in the parts format (as span attributes instead with ``gen_ai_span_attributes_only``), tool
  arguments and results in ``gen_ai.tool.call.arguments`` / ``.result``, the provider in
  ``gen_ai.provider.name``.

PostHog reads no span events, so ``read_events`` writes that content into the conventions'
attributes first (before privacy removes what it must); ``complete_span`` then makes the spans
the steps and generations our framework adapters record. The adapter registers both for
``SCOPE`` (see ``genai.self_tracing``).
"""

from __future__ import annotations

import json
from typing import Any, Optional, Sequence

from ..genai import messages as m
from ..genai import semconv

#: The instrumentation scope of Strands' spans (its tracer is named after its module).
SCOPE = "strands.telemetry.tracer"
FRAMEWORK = "strands"
# What Strands names as the provider of every span: the framework, not who served the model.
_STRANDS_PROVIDER = "strands-agents"

# Strands' stop reasons (shared by its model providers) as the conventions' finish reasons.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_call",
    "max_tokens": "length",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}

_LATEST_EVENT = "gen_ai.client.inference.operation.details"
_MESSAGE_EVENTS = {
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
_CHOICE_EVENT = "gen_ai.choice"
_SYSTEM_EVENT = "gen_ai.system.message"

_CYCLE = "execute_event_loop_cycle"
_TIME_TO_FIRST_TOKEN_MS = "gen_ai.server.time_to_first_token"
# Strands' bookkeeping, and names it records beside the conventions' (the older usage names,
# the server-side duration: the span's own times are the latency).
_STRANDS_ONLY = frozenset(
    {
        "gen_ai.event.start_time",
        "gen_ai.event.end_time",
        "gen_ai.server.request.duration",
        "gen_ai.usage.prompt_tokens",
        "gen_ai.usage.completion_tokens",
        "gen_ai.usage.total_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "gen_ai.usage.cache_write_input_tokens",
    }
)


# -- content from events (before privacy) -----------------------------------------------------


def read_events(attrs: dict, events: Sequence[Any]) -> None:
    """Write the content of a Strands span's events into ``attrs`` (a copy), as conventions JSON."""
    operation = attrs.get(semconv.OPERATION_NAME)
    for key in (semconv.INPUT_MESSAGES, semconv.OUTPUT_MESSAGES):
        # Recorded as attributes already (gen_ai_span_attributes_only): tool results as ours.
        if isinstance(_json(attrs.get(key)), list):
            attrs[key] = m.to_json(_latest_messages(attrs[key]))
    inputs: list = []
    outputs: list = []
    system: Optional[list] = None
    for event in events:
        name, values = event.name, event.attributes or {}
        if name == _LATEST_EVENT:
            if semconv.SYSTEM_INSTRUCTIONS in values and system is None:
                system = _parts_list(values[semconv.SYSTEM_INSTRUCTIONS])
            if semconv.INPUT_MESSAGES in values:
                # A cycle's second input is its tool results, fed back to the model: its output.
                (outputs if inputs else inputs).extend(_latest_messages(values[semconv.INPUT_MESSAGES]))
            if semconv.OUTPUT_MESSAGES in values:
                outputs.extend(_latest_messages(values[semconv.OUTPUT_MESSAGES]))
        elif name == _SYSTEM_EVENT and system is None:
            system = _blocks_as_parts(_json(values.get("content")))
        elif name in _MESSAGE_EVENTS:
            if operation == semconv.Operation.EXECUTE_TOOL:
                _set_text(attrs, semconv.TOOL_CALL_ARGUMENTS, values.get("content"))
                continue
            content = values.get("content")
            parts = _blocks_as_parts(_json(content))
            if parts is None and isinstance(content, str):
                parts = [m.text(content)]  # a multi-agent run's task, or content the app redacted
            if parts is not None:
                inputs.append(_message(_MESSAGE_EVENTS[name], parts))
        elif name == _CHOICE_EVENT:
            if operation == semconv.Operation.EXECUTE_TOOL:
                result = values.get("message")
                if isinstance(result, str):
                    attrs.setdefault(semconv.TOOL_CALL_RESULT, result)
                continue
            outputs.extend(_legacy_choice(values))
    if system is not None:
        attrs.setdefault(semconv.SYSTEM_INSTRUCTIONS, m.to_json(system))
    if inputs:
        attrs.setdefault(semconv.INPUT_MESSAGES, m.to_json(inputs))
    if outputs:
        attrs.setdefault(semconv.OUTPUT_MESSAGES, m.to_json(outputs))


def _json(value: Any) -> Any:
    if not isinstance(value, str):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None  # redacted by the app's own OTEL_SEMCONV_STABILITY_OPT_IN policy, or cut


def _set_text(attrs: dict, key: str, value: Any) -> None:
    if isinstance(value, str):
        attrs.setdefault(key, value)


def _legacy_choice(values: dict) -> list:
    """A ``gen_ai.choice`` event: a model's or a cycle's message (content blocks), an agent's
    answer (its text), and a cycle's tool results."""
    messages = []
    message = values.get("message")
    finish_reason = values.get("finish_reason")
    blocks = _json(message)
    parts = _blocks_as_parts(blocks) if isinstance(blocks, list) else None
    if parts is None and isinstance(message, str):
        parts = [m.text(message)]  # an agent's answer: str(AgentResult)
    if parts is not None:
        messages.append(m.output_message(parts, finish_reason if isinstance(finish_reason, str) else None))
    results = _blocks_as_parts(_json(values.get("tool.result")))
    if results:
        messages.append(_message("tool", results))
    return messages


def _latest_messages(value: Any) -> list:
    """Messages Strands wrote in the parts format, with tool results as our adapters write them."""
    messages = []
    for message in _json(value) or ():
        if not isinstance(message, dict):
            continue
        parts = _parts_list(message.get("parts"))
        if parts is None:
            continue
        built = _message(str(message.get("role") or "user"), parts)
        if "finish_reason" in message:
            built["finish_reason"] = message["finish_reason"]
        messages.append(built)
    return messages


def _parts_list(value: Any) -> Optional[list]:
    parts = _json(value) if isinstance(value, str) else value
    if not isinstance(parts, list):
        return None
    return [_part(part) for part in parts if isinstance(part, dict)]


def _part(part: dict) -> dict:
    kind = part.get("type")
    if kind == "text":
        return m.text(part.get("content"))
    if kind == "tool_call":
        return m.tool_call(part.get("id"), part.get("name"), part.get("arguments"))
    if kind == "tool_call_response":
        return m.tool_call_response(part.get("id"), tool_output(part.get("response")))
    return part


def _message(role: str, parts: list) -> dict:
    # Strands sends tool results in a user message; the conventions (and PostHog) give them the tool role.
    if parts and all(part.get("type") == "tool_call_response" for part in parts):
        role = "tool"
    return m.message(role, parts)


def _blocks_as_parts(blocks: Any) -> Optional[list]:
    """Strands' content blocks (Bedrock Converse's shapes) as conventions parts."""
    if not isinstance(blocks, list):
        return None
    parts = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if "text" in block:
            parts.append(m.text(block["text"]))
        elif "toolUse" in block and isinstance(block["toolUse"], dict):
            use = block["toolUse"]
            parts.append(m.tool_call(use.get("toolUseId"), use.get("name"), use.get("input")))
        elif "toolResult" in block and isinstance(block["toolResult"], dict):
            result = block["toolResult"]
            parts.append(m.tool_call_response(result.get("toolUseId"), tool_output(result.get("content"))))
        elif "reasoningContent" in block and isinstance(block["reasoningContent"], dict):
            reasoning = block["reasoningContent"].get("reasoningText") or {}
            parts.append(m.reasoning(reasoning.get("text", "") if isinstance(reasoning, dict) else ""))
        else:
            for kind, value in block.items():
                parts.append(m.generic(kind, content=value))
    return parts


def tool_output(content: Any) -> Any:
    """A tool result's content blocks as the value our adapters record: its text when it is text
    only, the JSON value of a single ``json`` block, else the blocks."""
    if not isinstance(content, list):
        return content
    if content and all(isinstance(block, dict) and set(block) == {"text"} for block in content):
        return "\n".join(str(block["text"]) for block in content)
    if len(content) == 1 and isinstance(content[0], dict) and set(content[0]) == {"json"}:
        return content[0]["json"]
    return content


# -- completion (after privacy) ---------------------------------------------------------------


def complete_span(attrs: dict) -> None:
    """Rewrite the attributes of a span Strands recorded (a copy, after privacy) in place."""
    for key in (semconv.PROVIDER_NAME, "gen_ai.system"):
        if attrs.get(key) == _STRANDS_PROVIDER:
            del attrs[key]
    for key in _STRANDS_ONLY:
        attrs.pop(key, None)
    attrs[semconv.FRAMEWORK] = FRAMEWORK
    first_token_ms = attrs.pop(_TIME_TO_FIRST_TOKEN_MS, None)
    operation = attrs.get(semconv.OPERATION_NAME)
    if operation == semconv.Operation.CHAT:
        _model_request(attrs, first_token_ms)
    elif operation == semconv.Operation.EXECUTE_TOOL:
        _tool_call(attrs)
    elif operation == _CYCLE:
        # The cycle's input is the conversation so far, which its model request carries too.
        attrs.pop(semconv.INPUT_MESSAGES, None)
        _messages_as_state(attrs, semconv.OUTPUT_MESSAGES, semconv.OUTPUT_STATE)
    elif isinstance(operation, str) and operation.startswith("invoke_"):
        _run(attrs)
    elif isinstance(operation, str) and operation.startswith("memory."):
        # A memory query or write, as an attribute with gen_ai_span_attributes_only (an event
        # otherwise, left out): not under a key privacy knows, so never sent.
        attrs.pop("content", None)


def _model_request(attrs: dict, first_token_ms: Any) -> None:
    """A model request: a step when a provider adapter of ours recorded the request beneath it
    (the core marks it delegated), else the generation."""
    delegated = bool(attrs.get(semconv.DELEGATED))
    if delegated:
        # The generation beneath it carries the instructions, and what only a generation has.
        attrs.pop(semconv.SYSTEM_INSTRUCTIONS, None)
    elif isinstance(first_token_ms, (int, float)) and not isinstance(first_token_ms, bool):
        # Only streamed responses have a first token.
        attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] = first_token_ms / 1000.0
        attrs.setdefault(semconv.REQUEST_STREAM, True)
    output = _json(attrs.get(semconv.OUTPUT_MESSAGES))
    if not isinstance(output, list):
        return
    reasons = []
    for message in output:
        if isinstance(message, dict) and isinstance(message.get("finish_reason"), str):
            message["finish_reason"] = FINISH_REASONS.get(message["finish_reason"], message["finish_reason"])
            reasons.append(message["finish_reason"])
    attrs[semconv.OUTPUT_MESSAGES] = m.to_json(output)
    if reasons and not delegated:
        attrs.setdefault(semconv.RESPONSE_FINISH_REASONS, reasons)


def _tool_call(attrs: dict) -> None:
    """A tool call: its arguments and result (text, when the result is text only) as state."""
    result = _json(attrs.get(semconv.TOOL_CALL_RESULT))
    if isinstance(result, list):
        output = tool_output(result)
        attrs[semconv.TOOL_CALL_RESULT] = output if isinstance(output, str) else m.to_json(output)
    # The same call again, as conventions messages (latest conventions): the state says it.
    attrs.pop(semconv.INPUT_MESSAGES, None)
    attrs.pop(semconv.OUTPUT_MESSAGES, None)


def _run(attrs: dict) -> None:
    """An agent (or multi-agent) run: a step whose input is the prompt and output the answer. Its
    token counts are the run's totals, which its generations carry one by one."""
    for key in [k for k in attrs if k.startswith("gen_ai.usage.")]:
        del attrs[key]
    # The instructions are in its model requests; on a step PostHog would show them as input.
    attrs.pop(semconv.SYSTEM_INSTRUCTIONS, None)
    _messages_as_state(attrs, semconv.INPUT_MESSAGES, semconv.INPUT_STATE)
    output = _json(attrs.pop(semconv.OUTPUT_MESSAGES, None))
    if isinstance(output, list):
        texts = [
            part.get("content")
            for message in output
            if isinstance(message, dict)
            for part in message.get("parts") or ()
            if isinstance(part, dict) and part.get("type") == "text"
        ]
        if texts:
            attrs[semconv.OUTPUT_STATE] = "".join(str(text) for text in texts)
        else:
            attrs[semconv.OUTPUT_STATE] = m.to_json(output)


def _messages_as_state(attrs: dict, key: str, state: str) -> None:
    value = attrs.pop(key, None)
    if isinstance(value, str):
        attrs[state] = value
