"""Reading the models of SDKs generated from an OpenAPI description (Cohere's by Fern, Mistral's
by Speakeasy).

Each generator marks an argument the app omitted with its own sentinel (Fern ``...``, Speakeasy
``UNSET``), which must read as absent; both SDKs describe tools, tool calls, image URLs and
response formats in OpenAI's shape, and message content as a string or a list of typed blocks.
What the blocks are, and everything else, stays in each library's adapter.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from ..genai import messages as m
from ..genai import semconv
from ..genai.call_types import InferenceRequest
from .fields import get, number


class Fields:
    """Reads one SDK's models, or the plain dicts an app passes instead, with ``given`` telling
    a value from that SDK's "argument omitted" sentinel."""

    __slots__ = ("given",)

    def __init__(self, given: Callable[[Any], bool]):
        self.given = given

    def value(self, obj: Any, key: str) -> Any:
        value = get(obj, key)
        return value if self.given(value) else None

    def content_parts(self, content: Any, block_part: Callable[[Any, Any], Optional[dict]]) -> list:
        """A message's content, a string or a list of blocks. Strings, ``text`` and ``image_url``
        blocks are read here; ``block_part(block, kind)`` translates the SDK's other kinds (None:
        a part named after the kind)."""
        if not self.given(content):
            return []
        if isinstance(content, str):
            return [m.text(content)] if content else []
        parts = []
        for block in content:
            part = self._block_part(block, block_part)
            if part is not None:
                parts.append(part)
        return parts

    def _block_part(self, block: Any, block_part: Callable[[Any, Any], Optional[dict]]) -> Optional[dict]:
        if isinstance(block, str):
            return m.text(block)
        kind = self.value(block, "type")
        if kind == "text":
            return m.text(self.value(block, "text") or "")
        if kind == "image_url":
            return self.image_url_part(block)
        part = block_part(block, kind)
        if part is None and kind:
            return m.generic(str(kind))
        return part

    def image_url_part(self, block: Any) -> dict:
        """An ``image_url`` block: the URL as a string or as ``{"url": ...}``, maybe a data URL."""
        image = self.value(block, "image_url")
        url = image if isinstance(image, str) else self.value(image, "url")
        return m.media_from_data_url("image", url or "")

    def tool_call_parts(self, tool_calls: Any) -> list:
        """Tool calls in OpenAI's shape (``id``, ``function.name``, ``function.arguments``)."""
        parts = []
        for call in tool_calls or () if self.given(tool_calls) else ():
            function = self.value(call, "function")
            call_id = self.value(call, "id")
            # Speakeasy's SDKs fill a missing id with the string "null".
            parts.append(
                m.tool_call(
                    None if call_id == "null" else call_id,
                    self.value(function, "name"),
                    self.value(function, "arguments"),
                )
            )
        return parts

    def tool_definitions(self, tools: Any) -> list:
        definitions = []
        for tool in tools or () if self.given(tools) else ():
            function = self.value(tool, "function")
            if function is not None:
                definitions.append(
                    m.function_tool(
                        self.value(function, "name"),
                        self.value(function, "description"),
                        self.value(function, "parameters"),
                    )
                )
            else:
                definitions.append(m.other_tool(str(self.value(tool, "type") or "unknown")))
        return definitions

    def chat_request(
        self, kwargs: dict, arguments: ChatArguments, provider: str, address: Any, port: Any, stream: bool
    ) -> InferenceRequest:
        """A chat call's description: the provider and endpoint given, the model and the sampling
        and output parameters read from its keyword arguments under the SDK's names for them
        (``arguments``)."""
        value = self.value
        request = InferenceRequest(
            provider=provider,
            model=value(kwargs, "model"),
            operation=semconv.Operation.CHAT,
            server_address=address,
            server_port=port,
            stream=stream,
        )
        for field, name in arguments.numbers:
            setattr(request, field, number(value(kwargs, name)))
        stop = value(kwargs, arguments.stop)
        request.stop_sequences = [stop] if isinstance(stop, str) else stop
        if arguments.reasoning_effort is not None:
            effort = value(kwargs, arguments.reasoning_effort)
            request.reasoning_level = str(getattr(effort, "value", effort)) if effort is not None else None
        request.output_type = self.output_type(kwargs.get("response_format"))
        return request

    def output_type(self, response_format: Any) -> Optional[str]:
        kind = self.value(response_format, "type") if self.given(response_format) else None
        if kind in ("json_object", "json_schema"):
            return "json"
        return "text" if kind == "text" else None


class ChatArguments:
    """What one SDK calls a chat call's parameters. The numeric fields of
    :class:`InferenceRequest` are read from the arguments of the same name (temperature, top_p,
    top_k, max_tokens, seed, frequency_penalty, presence_penalty), except where ``renamed``
    names the SDK's own (``{"seed": "random_seed"}``), which may add fields (``choice_count``);
    ``stop`` is the argument holding the stop sequences, ``reasoning_effort`` the one holding
    the reasoning level (None: the SDK has none)."""

    __slots__ = ("numbers", "stop", "reasoning_effort")

    def __init__(self, renamed: dict, stop: str, reasoning_effort: Optional[str] = None):
        names = {field: field for field in _SAMPLING_FIELDS}
        names.update(renamed)
        self.numbers = tuple(names.items())
        self.stop = stop
        self.reasoning_effort = reasoning_effort


_SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "max_tokens", "seed", "frequency_penalty", "presence_penalty")
