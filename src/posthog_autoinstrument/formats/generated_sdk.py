"""Reading the models of SDKs generated from an OpenAPI description (Cohere's by Fern, Mistral's
by Speakeasy).

Each generator marks an argument the app omitted with its own sentinel (Fern ``...``, Speakeasy
``UNSET``), which must read as absent; both SDKs describe tools and response formats in OpenAI's
shape, and message content as a string or a list of typed blocks. What the blocks are, and
everything else, stays in each library's adapter.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from ..genai import messages as m
from .fields import get


class Fields:
    """Reads one SDK's models, or the plain dicts an app passes instead, with ``given`` telling
    a value from that SDK's "argument omitted" sentinel."""

    __slots__ = ("given",)

    def __init__(self, given: Callable[[Any], bool]):
        self.given = given

    def value(self, obj: Any, key: str) -> Any:
        value = get(obj, key)
        return value if self.given(value) else None

    def content_parts(self, content: Any, block_part: Callable[[Any], Optional[dict]]) -> list:
        """A message's content, a string or a list of blocks that ``block_part`` translates."""
        if not self.given(content):
            return []
        if isinstance(content, str):
            return [m.text(content)] if content else []
        parts = []
        for block in content:
            part = block_part(block)
            if part is not None:
                parts.append(part)
        return parts

    def tool_definitions(self, tools: Any) -> list:
        definitions = []
        for tool in tools or () if self.given(tools) else ():
            function = self.value(tool, "function")
            if function is not None:
                definitions.append(m.function_tool(self.value(function, "name"), self.value(function, "description"),
                                                   self.value(function, "parameters")))
            else:
                definitions.append(m.other_tool(str(self.value(tool, "type") or "unknown")))
        return definitions

    def output_type(self, response_format: Any) -> Optional[str]:
        kind = self.value(response_format, "type") if self.given(response_format) else None
        if kind in ("json_object", "json_schema"):
            return "json"
        return "text" if kind == "text" else None
