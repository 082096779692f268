"""MCP (Model Context Protocol) messages, translated into the steps PostHog shows.

Pure translation of the protocol's JSON shapes (its wire names: ``isError``,
``structuredContent``, ``mimeType``): which step an MCP request becomes, and what its
arguments and results say, as plain values. The ``mcp`` SDK's results are pydantic models;
:func:`wire` reads them in their wire shape, so a result given as a dict reads the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ..genai import semconv
from ..genai.self_tracing import NOT_AI

# The instrumentation scope of the spans the ``mcp`` SDK (2.x) records itself.
SDK_SCOPE = "mcp-python-sdk"

# MCP's own attribute names (OpenTelemetry semantic conventions for MCP).
METHOD_NAME = "mcp.method.name"
PROTOCOL_VERSION = "mcp.protocol.version"
RESOURCE_URI = "mcp.resource.uri"
# The GenAI conventions' prompt name, which the MCP conventions use for prompts/get.
PROMPT_NAME = "gen_ai.prompt.name"

TOOLS_CALL = "tools/call"
TOOLS_LIST = "tools/list"
RESOURCES_READ = "resources/read"
PROMPTS_GET = "prompts/get"

# The step operation of each request we record: a tool call is the conventions' execute_tool,
# the others keep the protocol's method name (the MCP conventions name spans after it too).
OPERATIONS = {
    TOOLS_CALL: semconv.Operation.EXECUTE_TOOL,
    TOOLS_LIST: TOOLS_LIST,
    RESOURCES_READ: RESOURCES_READ,
    PROMPTS_GET: PROMPTS_GET,
}

# The error.type the MCP conventions give a tool call whose result says ``isError``.
TOOL_ERROR = "tool_error"


def wire(value: Any) -> Any:
    """An MCP message (an SDK model, or already a dict) in its JSON wire shape."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(by_alias=True, mode="json", exclude_none=True)
    return value


def step_target(method: str, target: Optional[str]) -> Optional[str]:
    """What the step's name adds to its operation: the tool or prompt name, never a resource's
    URI (the MCP conventions keep span names low in cardinality; the URI is an attribute)."""
    return None if method == RESOURCES_READ else target


@dataclass
class ToolOutcome:
    """A ``tools/call`` result: what it returned, and the error text when it says ``isError``."""

    output: Any
    is_error: bool = False
    error: Optional[str] = None


def tool_result(result: Any) -> ToolOutcome:
    """Read a ``CallToolResult``: its content, as the model that called the tool reads it (a
    tool with structured output sends its JSON text there too); the structured content only
    where there is no other."""
    result = wire(result)
    if not isinstance(result, dict):
        return ToolOutcome(result)
    content = content_value(result.get("content"))
    structured = result.get("structuredContent")
    output = content if content or structured is None else structured
    if result.get("isError") is True:
        return ToolOutcome(output, True, content if isinstance(content, str) else None)
    return ToolOutcome(output)


def content_value(blocks: Any) -> Any:
    """Content blocks as one value: the text of a text-only result (the usual tool answer),
    else a list with media as placeholders (type, mime type, size), never their data."""
    if not isinstance(blocks, list):
        return blocks
    parts = [_content_block(block) for block in blocks]
    if parts and all(isinstance(part, str) for part in parts):
        return parts[0] if len(parts) == 1 else "\n".join(parts)
    return parts


def _content_block(block: Any) -> Any:
    if not isinstance(block, dict):
        return block
    kind = block.get("type")
    if kind == "text":
        return block.get("text")
    if kind in ("image", "audio"):
        return _media(kind, block.get("mimeType"), block.get("data"))
    if kind == "resource":
        return {**_resource_content(block.get("resource")), "type": "resource"}
    if kind == "resource_link":
        return {key: block[key] for key in ("type", "uri", "name", "mimeType") if block.get(key) is not None}
    return block


def _media(kind: str, mime_type: Any, data: Any) -> dict:
    placeholder: dict = {"type": kind}
    if mime_type:
        placeholder["mime_type"] = mime_type
    if isinstance(data, str):
        placeholder["size"] = len(data) * 3 // 4  # base64 text: the decoded size
    return placeholder


def _resource_content(content: Any) -> dict:
    if not isinstance(content, dict):
        return {"content": content}
    out = {"uri": content.get("uri")}
    if "text" in content:
        out["text"] = content.get("text")
    elif "blob" in content:
        out.update(_media("blob", content.get("mimeType"), content.get("blob")))
    return out


def resource_contents(result: Any) -> Any:
    """Read a ``ReadResourceResult``: the text of a single text resource, else each content
    as ``{uri, text}`` (binary ones as placeholders)."""
    result = wire(result)
    contents = result.get("contents") if isinstance(result, dict) else None
    if not isinstance(contents, list):
        return result
    read = [_resource_content(content) for content in contents]
    if len(read) == 1 and "text" in read[0]:
        return read[0]["text"]
    return read


def prompt_messages(result: Any) -> Any:
    """Read a ``GetPromptResult``: its messages as ``[{role, content}]``."""
    result = wire(result)
    messages = result.get("messages") if isinstance(result, dict) else None
    if not isinstance(messages, list):
        return result
    out = []
    for message in messages:
        if isinstance(message, dict):
            content = message.get("content")
            out.append(
                {
                    "role": message.get("role"),
                    "content": content_value(content if isinstance(content, list) else [content]),
                }
            )
    return out


def tool_names(result: Any) -> Any:
    """Read a ``ListToolsResult``: the names of the tools listed."""
    result = wire(result)
    tools = result.get("tools") if isinstance(result, dict) else None
    if not isinstance(tools, list):
        return None
    return [tool.get("name") for tool in tools if isinstance(tool, dict)]


def complete_sdk_span(attrs: dict) -> Any:
    """The ``mcp`` SDK's own spans are not what PostHog receives: our adapter records each MCP
    request as a step itself, with its arguments and results, nested where the caller's trace
    context puts it. The SDK's spans stay in the app's own telemetry."""
    return NOT_AI
