"""Ollama adapter (the ``ollama`` package): ``chat``, ``generate``, ``embed`` and ``embeddings`` on
``Client`` and ``AsyncClient``, streamed (NDJSON) or not.

The module-level functions (``ollama.chat``, ``from ollama import chat``) are methods of a default
``Client`` bound while ``ollama/__init__.py`` runs. We patch the classes in ``ollama._client`` as
soon as that submodule is imported, which is before ``__init__`` binds them, so the bound methods
are already ours. Should the package have been imported before instrumentation started, the
module-level names are re-bound to the patched methods (names an application copied before that
cannot be reached).

Ollama reports ``prompt_eval_count`` and ``eval_count``; there is no response id, and a cached
prompt prefix is simply not counted in ``prompt_eval_count`` (no separate cache figure).
"""

from __future__ import annotations

import base64
import logging
import sys
from typing import Any, Optional

import wrapt

from ..genai import InferenceCall, InferenceRequest, StreamAccumulator, Usage
from ..genai import messages as m
from ..genai.semconv import EMBEDDINGS_DIMENSION_COUNT, Operation, Provider
from .base import LLMInstrumentor, ResponseOrStream, Target, get, host_and_port, number

logger = logging.getLogger("posthog_autoinstrument")

_CLIENT_MODULE = "ollama._client"
_MODULE_FUNCTIONS = ("chat", "generate", "embed", "embeddings")

# Positional parameters of each method, in order (the rest are keyword-only or rarely positional).
_POSITIONAL = {
    "chat": ("model", "messages"),
    "generate": ("model", "prompt", "suffix"),
    "embed": ("model", "input", "truncate", "options", "keep_alive", "dimensions"),
    "embeddings": ("model", "prompt", "options", "keep_alive"),
}


def _params(method: str, args: tuple, kwargs: dict) -> dict:
    if not args:
        return kwargs
    params = dict(zip(_POSITIONAL[method], args))
    params.update(kwargs)
    return params


def _endpoint(client: Any) -> tuple:
    try:
        url = str(client._client.base_url)
    except Exception:
        return None, None
    return host_and_port(url)


def _output_type(fmt: Any) -> Optional[str]:
    if fmt == "json" or isinstance(fmt, dict):
        return "json"
    return None


def _image_part(image: Any) -> dict:
    value = getattr(image, "value", image)  # ollama.Image wraps the value
    if isinstance(value, (bytes, bytearray)):
        return m.blob("image", None, base64.b64encode(value).decode("ascii"))
    text = str(value)
    # The SDK accepts file paths as well as base64 data; a short string with a path separator or
    # an image suffix is a path (base64 of any real image is far longer).
    if len(text) < 1024 and (
        "/" in text or "\\" in text or text.lower().endswith((".png", ".jpg", ".jpeg", ".webp", ".gif"))
    ):
        return m.uri("image", text)
    return m.blob("image", None, text)


def _message(message: Any) -> dict:
    role = get(message, "role") or "user"
    content = get(message, "content")
    if role == "tool":
        return m.message("tool", [m.tool_call_response(None, content)], get(message, "tool_name"))
    parts = []
    thinking = get(message, "thinking")
    if thinking:
        parts.append(m.reasoning(thinking))
    if content:
        parts.append(m.text(content))
    for image in get(message, "images") or ():
        parts.append(_image_part(image))
    for call in get(message, "tool_calls") or ():
        function = get(call, "function")
        parts.append(m.tool_call(get(call, "id"), get(function, "name"), get(function, "arguments")))
    return m.message(role, parts)


def _dump(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump(exclude_none=True, by_alias=True) if callable(dump) else value


def _tool_definitions(tools: Any) -> list:
    definitions = []
    for tool in tools or ():
        if callable(tool) and not isinstance(tool, dict) and not hasattr(tool, "function"):
            try:
                from ollama._utils import convert_function_to_tool  # the SDK's own conversion

                tool = convert_function_to_tool(tool)
            except Exception:
                definitions.append(m.function_tool(getattr(tool, "__name__", None)))
                continue
        function = get(tool, "function")
        if function is None:
            continue
        definitions.append(
            m.function_tool(get(function, "name"), get(function, "description"), _dump(get(function, "parameters")))
        )
    return definitions


def _usage(response: Any) -> Optional[Usage]:
    prompt, output = get(response, "prompt_eval_count"), get(response, "eval_count")
    if prompt is None and output is None:
        return None
    return Usage(input_tokens=prompt, output_tokens=output)


def _finish_reason(reason: Any, calls_tool: bool) -> Optional[str]:
    # Ollama says "stop" when the model stops to call a tool; the conventions call that "tool_call".
    if calls_tool and reason in (None, "stop"):
        return "tool_call"
    return reason if isinstance(reason, str) and reason else None


def _output_parts(thinking: Any, text: Any, tool_calls: Any) -> list:
    parts = [m.reasoning(thinking)] if thinking else []
    if text:
        parts.append(m.text(text))
    for call in tool_calls or ():
        function = get(call, "function")
        parts.append(m.tool_call(get(call, "id"), get(function, "name"), get(function, "arguments")))
    return parts


def _record(call: InferenceCall, response: Any, parts: list, reason: Optional[str]) -> None:
    call.set_response(model=get(response, "model"), finish_reasons=[reason] if reason else None, usage=_usage(response))
    if call.capture_content and parts:
        call.set_output([m.output_message(parts, reason)])


class _GenerationStream(StreamAccumulator):
    """Folds NDJSON parts of chat or generate; the last part (``done``) carries the counts."""

    __slots__ = ("capture", "chat", "text", "thinking", "tool_calls", "final", "model")

    def __init__(self, capture: bool, chat: bool):
        self.capture = capture
        self.chat = chat
        self.text: list = []
        self.thinking: list = []
        self.tool_calls: list = []
        self.final = None
        self.model = None

    def on_chunk(self, part: Any) -> bool:
        if self.model is None:
            self.model = get(part, "model")
        if get(part, "done"):
            self.final = part
        source = get(part, "message") if self.chat else part
        if source is None:
            return False
        tool_calls = get(source, "tool_calls")
        if tool_calls:
            self.tool_calls.extend(tool_calls)
        if self.capture:
            text = get(source, "content") if self.chat else get(source, "response")
            if text:
                self.text.append(text)
            thinking = get(source, "thinking")
            if thinking:
                self.thinking.append(thinking)
        return False

    def finish(self, call: InferenceCall) -> None:
        final = self.final
        reason = _finish_reason(get(final, "done_reason") if final is not None else None, bool(self.tool_calls))
        if final is None:  # the stream ended early: no counts, no reason of Ollama's
            call.set_response(model=self.model)
        else:
            call.set_response(
                model=get(final, "model") or self.model,
                finish_reasons=[reason] if reason else None,
                usage=_usage(final),
            )
        if self.capture:
            parts = _output_parts("".join(self.thinking), "".join(self.text), self.tool_calls)
            if parts:
                call.set_output([m.output_message(parts, reason)])


class _Handler(ResponseOrStream):
    method = ""
    operation = Operation.CHAT

    def streams(self, result, kwargs):
        return hasattr(result, "__next__") or hasattr(result, "__anext__")

    def request(self, instance, args, kwargs):
        params = _params(self.method, args, kwargs)
        address, port = _endpoint(instance)
        options = params.get("options")
        request = InferenceRequest(
            provider=Provider.OLLAMA,
            model=params.get("model") or None,
            operation=self.operation,
            server_address=address,
            server_port=port,
            stream=bool(params.get("stream", False)),
        )
        if options is not None:
            request.temperature = number(get(options, "temperature"))
            request.top_p = number(get(options, "top_p"))
            request.top_k = number(get(options, "top_k"))
            request.max_tokens = number(get(options, "num_predict"))
            request.seed = number(get(options, "seed"))
            request.frequency_penalty = number(get(options, "frequency_penalty"))
            request.presence_penalty = number(get(options, "presence_penalty"))
            stops = get(options, "stop")
            request.stop_sequences = list(stops) if stops else None
        request.output_type = _output_type(params.get("format"))
        think = params.get("think")
        request.reasoning_level = think if isinstance(think, str) else None
        return request, None


class Chat(_Handler):
    method = "chat"

    def record_input(self, call, instance, args, kwargs):
        params = _params(self.method, args, kwargs)
        # System messages stay in the conversation, where Ollama keeps them (as openai.py does).
        call.set_input(
            messages=[_message(msg) for msg in params.get("messages") or ()],
            tool_definitions=_tool_definitions(params.get("tools")),
        )

    def accumulator(self, call):
        return _GenerationStream(call.capture_content, chat=True)

    def record(self, call, response):
        message = get(response, "message")
        tool_calls = get(message, "tool_calls") if message is not None else None
        reason = _finish_reason(get(response, "done_reason"), bool(tool_calls))
        parts = (
            _output_parts(get(message, "thinking"), get(message, "content"), tool_calls) if message is not None else []
        )
        _record(call, response, parts, reason)


class Generate(_Handler):
    method = "generate"
    operation = Operation.TEXT_COMPLETION

    def record_input(self, call, instance, args, kwargs):
        params = _params(self.method, args, kwargs)
        parts = [m.text(params["prompt"])] if params.get("prompt") else []
        parts.extend(_image_part(image) for image in params.get("images") or ())
        system = params.get("system")
        call.set_input(
            messages=[m.message("user", parts)] if parts else None,
            system_instructions=[m.text(system)] if system else None,
        )

    def accumulator(self, call):
        return _GenerationStream(call.capture_content, chat=False)

    def record(self, call, response):
        reason = _finish_reason(get(response, "done_reason"), False)
        _record(call, response, _output_parts(get(response, "thinking"), get(response, "response"), None), reason)


class Embed(_Handler):
    method = "embed"
    operation = Operation.EMBEDDINGS

    def record_input(self, call, instance, args, kwargs):
        params = _params(self.method, args, kwargs)
        value = params.get("input", params.get("prompt"))
        texts = [value] if isinstance(value, str) else [v for v in value or () if isinstance(v, str)]
        call.set_input(messages=[m.message("user", [m.text(t)]) for t in texts if t])

    def result(self, call, result, kwargs):
        vectors = get(result, "embeddings")
        first = vectors[0] if vectors else get(result, "embedding")
        call.set_response(
            model=get(result, "model"),
            usage=_usage(result),
            attributes={EMBEDDINGS_DIMENSION_COUNT: len(first) if first else None},
        )
        call.end()
        return result


class Embeddings(Embed):
    method = "embeddings"


class OllamaInstrumentor(LLMInstrumentor):
    requirements = ("ollama >= 0.4.0, < 1",)

    def targets(self) -> list:
        handlers = {"chat": Chat(), "generate": Generate(), "embed": Embed(), "embeddings": Embeddings()}
        targets = []
        for name, handler in handlers.items():
            targets.append(Target(_CLIENT_MODULE, f"Client.{name}", handler))
            targets.append(Target(_CLIENT_MODULE, f"AsyncClient.{name}", handler, is_async=True))
        return targets

    def _instrument(self, **kwargs) -> None:
        super()._instrument(**kwargs)
        wrapt.register_post_import_hook(self._on_import, "ollama")

    def _on_import(self, module: Any) -> None:
        super()._on_import(module)
        if getattr(self, "_active", False):
            self._rebind_module_functions()

    def _rebind_module_functions(self) -> None:
        """Point ``ollama.chat`` & co. at the patched methods if the package bound them before."""
        package, client_module = sys.modules.get("ollama"), sys.modules.get(_CLIENT_MODULE)
        if package is None or client_module is None:
            return
        default = package.__dict__.get("_client")
        if not isinstance(default, client_module.Client):
            return  # the package is still being imported: it will bind the patched methods itself
        for name in _MODULE_FUNCTIONS:
            bound = package.__dict__.get(name)
            if bound is None or isinstance(bound, wrapt.ObjectProxy) or getattr(bound, "__self__", None) is not default:
                continue
            try:
                setattr(package, name, getattr(default, name))
                self._patched.append((package, name, bound))
            except Exception:
                logger.debug("posthog-instrument: could not re-bind ollama.%s", name, exc_info=True)
