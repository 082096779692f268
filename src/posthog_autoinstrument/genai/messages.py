"""Plain-data builders for GenAI content in the conventions' "parts" format.

Adapters describe what a provider sent and returned with these helpers, never with raw
dicts or JSON of their own, so that every library produces the same shapes:

    message("user", [text("hi")])
    output_message([text("hello"), tool_call("call_1", "get_weather", {"city": "Paris"})], "tool_call")

The JSON schemas are those of the GenAI semantic conventions (input/output messages,
system instructions, tool definitions).
"""

from __future__ import annotations

import json
from typing import Any, Optional

Part = dict
Message = dict


def text(content: Any) -> Part:
    return {"type": "text", "content": content if isinstance(content, str) else str(content)}


def reasoning(content: Any) -> Part:
    return {"type": "reasoning", "content": content if isinstance(content, str) else str(content)}


def tool_call(call_id: Optional[str], name: Optional[str], arguments: Any) -> Part:
    part: Part = {"type": "tool_call", "name": name, "arguments": parse_json_arguments(arguments)}
    if call_id is not None:
        part["id"] = call_id
    return part


def tool_call_response(call_id: Optional[str], response: Any) -> Part:
    part: Part = {"type": "tool_call_response", "response": response}
    if call_id is not None:
        part["id"] = call_id
    return part


def blob(modality: str, mime_type: Optional[str], content: str) -> Part:
    """Inline media (base64). The export pipeline replaces it with a placeholder unless allowed."""
    part: Part = {"type": "blob", "modality": modality, "content": content}
    if mime_type:
        part["mime_type"] = mime_type
    return part


def uri(modality: str, uri_value: str, mime_type: Optional[str] = None) -> Part:
    part: Part = {"type": "uri", "modality": modality, "uri": uri_value}
    if mime_type:
        part["mime_type"] = mime_type
    return part


def file(modality: str, file_id: str, mime_type: Optional[str] = None) -> Part:
    part: Part = {"type": "file", "modality": modality, "file_id": file_id}
    if mime_type:
        part["mime_type"] = mime_type
    return part


def generic(type_name: str, **fields: Any) -> Part:
    """A part the conventions have no specific shape for (refusal, audio transcript, ...)."""
    return {"type": type_name, **fields}


def media_from_data_url(modality: str, url: str) -> Part:
    """``data:image/png;base64,....`` becomes a blob part; any other URL a uri part."""
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        mime_type = header[5:].split(";", 1)[0] or None
        return blob(modality, mime_type, payload)
    return uri(modality, url)


def message(role: str, parts: list, name: Optional[str] = None) -> Message:
    msg: Message = {"role": role, "parts": parts}
    if name:
        msg["name"] = name
    return msg


def output_message(parts: list, finish_reason: Optional[str], role: str = "assistant") -> Message:
    return {"role": role, "parts": parts, "finish_reason": finish_reason or ""}


class PartRuns:
    """A streamed message's parts in arrival order, each run of text (or reasoning) pieces joined
    into one part, for streams whose deltas are small parts of the same kinds as whole messages."""

    __slots__ = ("items",)

    def __init__(self):
        self.items: list = []  # ("text" | "reasoning", [pieces]) runs, or ("part", part)

    def add(self, part: Part) -> None:
        kind = part.get("type")
        if kind in ("text", "reasoning"):
            if self.items and self.items[-1][0] == kind:
                self.items[-1][1].append(part["content"])
            else:
                self.items.append((kind, [part["content"]]))
        else:
            self.items.append(("part", part))

    def parts(self, empty_text: bool = True) -> list:
        """The joined parts; without ``empty_text``, a text run that joined to "" is left out."""
        built = []
        for kind, value in self.items:
            if kind == "text":
                content = "".join(value)
                if content or empty_text:
                    built.append(text(content))
            elif kind == "reasoning":
                built.append(reasoning("".join(value)))
            else:
                built.append(value)
        return built


def function_tool(name: Optional[str], description: Optional[str] = None, parameters: Any = None) -> dict:
    tool: dict = {"type": "function", "name": name}
    if description:
        tool["description"] = description
    if parameters is not None:
        tool["parameters"] = parameters
    return tool


def other_tool(type_name: str, **fields: Any) -> dict:
    """A provider-hosted tool (web search, file search, MCP, ...)."""
    return {"type": type_name, **{k: v for k, v in fields.items() if v is not None}}


def parse_json_arguments(arguments: Any) -> Any:
    """Tool arguments are objects in the conventions; providers often send a JSON string."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


def from_json(data: Any) -> Any:
    """``json.loads(data)`` (text or UTF-8 bytes), through the C scanner itself where it takes
    the whole of ``data``: ``json.loads`` adds an encoding check and two whitespace matches, a
    fifth of its cost on a response body. Anything else (whitespace around the value, another
    encoding, not JSON) is left to ``json.loads``, which then returns or raises as it would."""
    try:
        text = data if type(data) is str else data.decode("utf-8")
        value, end = scan_json(text, 0)
        if end == len(text):
            return value
    except Exception:
        pass
    return json.loads(data)


# The C scanner of one decoder, shared by what parses bodies on the export thread.
scan_json = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set in __init__, undeclared in typeshed


def to_json(value: Any) -> str:
    if _c_encode is not None:
        return "".join(_c_encode(value, 0))
    return _ENCODER.encode(value)


def _json_fallback(value: Any) -> Any:
    # Provider SDK objects (pydantic models, dataclasses) that slipped into content.
    for method in ("model_dump", "to_dict", "dict"):
        dump = getattr(value, method, None)
        if callable(dump):
            try:
                return dump()
            except Exception:
                break
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    # Never iterate unknown objects here: that could consume the application's generator.
    return str(value)


# One encoder for every call: json.dumps with options builds a new one each time, and
# JSONEncoder.encode builds a new C encoder each time too. _c_encode is the C encoder that
# _ENCODER makes, built once, without the circular-reference check (content is lists and
# dicts our adapters build, and what a fallback dumps: a cycle is still stopped, by Python's
# recursion limit).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_fallback)
# (c_make_encoder: None without the C accelerator; typeshed leaves it out.)
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_c_encode = (
    None
    if _c_make_encoder is None
    else _c_make_encoder(None, _json_fallback, json.encoder.encode_basestring, None, ":", ",", False, False, True)
)
