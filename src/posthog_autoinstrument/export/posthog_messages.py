"""Conventions' messages ("parts") in the shapes PostHog's SDKs send and its trace view renders.

PostHog's trace view normalises each message (products/llm_analytics/frontend/utils.ts,
``normalizeMessage``): ``{role, content}`` with a string, or with a list whose items are all of
the types ``text``, ``function``, ``image`` (rendered as they are), or Anthropic blocks (``text``,
``thinking``, ``tool_use``, ``tool_result``), or an OpenAI tool result ``{role: "tool",
tool_call_id, content}``. A message with only ``parts`` falls through to a JSON dump.

PostHog's SDKs (posthog/ai/openai/openai_converter.py, posthog/ai/anthropic/anthropic_converter.py,
posthog/ai/gemini/gemini_converter.py) send the input as ``[{role, content}]`` with the system prompt first,
and the output as one assistant message whose content is a list of typed items: ``{"type":
"text", "text"}``, ``{"type": "function", "id", "function": {"name", "arguments"}}``,
``{"type": "thinking", "thinking"}``. These functions do the same from the parts of
``gen_ai.input.messages`` / ``gen_ai.output.messages``; anything they do not know passes as it is.
"""

from __future__ import annotations

import json
from typing import Any, Optional


def input_messages(messages: Any, system_instructions: Any = None) -> Optional[list]:
    """``$ai_input`` from parsed ``gen_ai.input.messages`` and ``gen_ai.system_instructions``."""
    translated: list = []
    system = _system_text(system_instructions) if system_instructions is not None else ""
    if system:
        translated.append({"role": "system", "content": system})
    if isinstance(messages, list):
        for message in messages:
            text = _only_text(message)
            if text is None:
                translated.extend(_message(message))
            else:
                translated.append({"role": message.get("role") or "user", "content": text})
    elif messages is not None:
        return None  # not the conventions' list: left to PostHog as it is
    return translated


def output_messages(messages: Any) -> Optional[list]:
    """``$ai_output_choices`` from parsed ``gen_ai.output.messages``: content as a list of items,
    as PostHog's SDKs send the output."""
    if not isinstance(messages, list):
        return None
    translated: list = []
    for message in messages:
        text = _only_text(message)
        if text is None:
            translated.extend(_message(message, as_list=True))
        else:
            translated.append({"role": message.get("role") or "user", "content": [{"type": "text", "text": text}]})
    return translated


def embedding_input(messages: Any) -> Optional[list]:
    """``$ai_input`` of an embedding: the texts, as PostHog's SDK sends the request's input."""
    if not isinstance(messages, list):
        return None
    texts: list[Any] = []
    for message in messages:
        parts = message.get("parts") if isinstance(message, dict) else None
        if not isinstance(parts, list):
            return None
        texts.extend(p.get("content") for p in parts if isinstance(p, dict) and p.get("type") == "text")
    return texts


def _system_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n\n".join(
            p["content"]
            for p in value
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("content"), str)
        )
    return ""


def _only_text(message: Any) -> Any:
    """The text of a conventions message made of one text part and nothing else PostHog shows
    (no name): the common case, translated inline by the callers. None for any other message."""
    parts = message.get("parts") if type(message) is dict else None
    if type(parts) is list and len(parts) == 1:
        part = parts[0]
        if type(part) is dict and part.get("type") == "text" and "name" not in message:
            return part.get("content", "")
    return None


def _message(message: Any, as_list: bool = False) -> list:
    """One conventions message as one PostHog message (tool results: one message each)."""
    parts = message.get("parts") if type(message) is dict else None
    if type(parts) is not list:
        return [message]  # already in some other shape
    role = message.get("role") or "user"
    if len(parts) == 1 and type(parts[0]) is dict and parts[0].get("type") == "text" and "name" not in message:
        # One text: as PostHog's SDKs send it.
        text = parts[0].get("content", "")
        return [{"role": role, "content": [{"type": "text", "text": text}] if as_list else text}]
    parts = [p for p in parts if isinstance(p, dict)]
    results = [p for p in parts if p.get("type") == "tool_call_response"]
    others = [p for p in parts if p.get("type") != "tool_call_response"]
    out: list = []
    if others or not results:
        anthropic_blocks = any(p.get("type") == "reasoning" for p in others)
        items = [_item(p, anthropic_blocks) for p in others]
        translated: dict = {"role": role}
        if not as_list and len(items) == 1 and items[0].get("type") == "text":
            translated["content"] = items[0]["text"]
        elif not as_list and not items:
            translated["content"] = ""
        else:
            translated["content"] = items
        if message.get("name"):
            translated["name"] = message["name"]
        out.append(translated)
    for result in results:
        tool_message = {"role": "tool", "content": _result_text(result.get("response"))}
        if result.get("id") is not None:
            tool_message["tool_call_id"] = result["id"]
        if message.get("name"):
            tool_message["name"] = message["name"]
        out.append(tool_message)
    return out


def _item(part: dict, anthropic_blocks: bool) -> dict:
    """One part as a content item. A message with reasoning uses Anthropic's blocks throughout,
    since PostHog renders ``thinking`` only among those."""
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": part.get("content", "")}
    if kind == "reasoning":
        return {"type": "thinking", "thinking": part.get("content", "")}
    if kind == "tool_call":
        if anthropic_blocks:
            return {"type": "tool_use", "id": part.get("id"), "name": part.get("name"), "input": part.get("arguments")}
        item = {"type": "function", "function": {"name": part.get("name"), "arguments": part.get("arguments")}}
        if part.get("id") is not None:
            item["id"] = part["id"]
        return item
    if kind in ("blob", "uri") and part.get("modality") == "image":
        # By reference, or inline (a data URL; the dialect has already replaced the payload with a
        # placeholder unless media capture is on).
        if kind == "uri":
            return {"type": "image", "image": part.get("uri")}
        content = part.get("content", "")
        if content.startswith("["):  # the placeholder
            return {"type": "image", "image": content}
        return {"type": "image", "image": f"data:{part.get('mime_type') or 'image/png'};base64,{content}"}
    return dict(part)  # audio, files, refusals, ...: kept as typed items


def _result_text(response: Any) -> str:
    """A tool result as text (PostHog renders a tool message's string content): Anthropic's
    text blocks joined, anything else not text as JSON."""
    if isinstance(response, str):
        return response
    if response is None:
        return ""
    if (
        isinstance(response, list)
        and response
        and all(isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str) for b in response)
    ):
        return "\n\n".join(b["text"] for b in response)
    return _json(response)


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return str(value)
