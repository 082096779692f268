"""OpenAI adapter: chat completions, the Responses API and embeddings, sync and async.

Covers ``create`` and ``parse`` on each resource; the SDK's ``.stream(...)`` helpers call
``create(stream=True)`` and so are covered through it, as are ``with_raw_response`` and
``with_streaming_response`` (see ``_raw_response``). ``AzureOpenAI`` and every
OpenAI-compatible endpoint reached through ``base_url`` use the same classes; the provider
is named after the endpoint's host.

Streams report token usage: unless the app asked for it, we ask the endpoint for its usage
chunk (``stream_options.include_usage``) and hide that extra chunk from the app; not through
``with_streaming_response``, whose bytes the app may relay as they come.
"""

from __future__ import annotations

import json
from typing import Any, Optional
from urllib.parse import urlsplit

from .. import config
from ..genai import InferenceCall, InferenceRequest, StreamAccumulator, Usage
from ..genai import messages as m
from ..genai import semconv
from ..genai.semconv import Provider
from ..genai.streams import observe_stream
from ._raw_response import is_raw_response, loose, raw_response_proxy, relayed_stream_requested, server_sent_events
from .base import (CallHandler, LLMInstrumentor, Target, arg, base_url_text, client_base_url, get, given, is_stream,
                   keep_request_body, number)

# Hosts of OpenAI-compatible providers, matched as suffixes of the base URL's host.
_PROVIDER_HOSTS = (
    ("api.openai.com", Provider.OPENAI),
    ("openai.azure.com", Provider.AZURE_OPENAI),
    ("cognitiveservices.azure.com", Provider.AZURE_OPENAI),
    ("services.ai.azure.com", Provider.AZURE_OPENAI),
    ("api.groq.com", Provider.GROQ),
    ("api.deepseek.com", Provider.DEEPSEEK),
    ("api.mistral.ai", Provider.MISTRAL_AI),
    ("openrouter.ai", Provider.OPENROUTER),
    ("api.x.ai", Provider.XAI),
    ("generativelanguage.googleapis.com", Provider.GCP_GEMINI),
    ("api.together.xyz", Provider.TOGETHER),
    ("api.together.ai", Provider.TOGETHER),
    ("api.perplexity.ai", Provider.PERPLEXITY),
    ("api.cohere.ai", Provider.COHERE),
    ("api.cohere.com", Provider.COHERE),
)
_OLLAMA_PORT = 11434
# Azure OpenAI rejects stream_options before this API version.
_AZURE_STREAM_OPTIONS_SINCE = "2024-09-01"

_FINISH_REASONS = {"tool_calls": "tool_call", "function_call": "tool_call"}

_endpoint_cache: dict = {}


class _UsageRequest(dict):
    """``stream_options`` we added ourselves; the type tells the result handler to hide the usage chunk."""


def endpoint_of(client: Any, base_url: Any = None) -> tuple:
    """(provider, server address, server port) for an OpenAI client, cached per base URL
    (``base_url``: the client's, if the caller has read it already)."""
    if base_url is None:
        base_url = client_base_url(client)
    cached = _endpoint_cache.get(id(base_url))
    if cached is not None and cached[0] is base_url:
        return cached[1]
    url = urlsplit(str(base_url)) if base_url is not None else None
    host = (url.hostname or "") if url else ""
    port = url.port if url else None
    provider = Provider.OPENAI
    for suffix, name in _PROVIDER_HOSTS:
        if host == suffix or host.endswith("." + suffix):
            provider = name
            break
    else:
        if "Azure" in type(client).__name__:
            provider = Provider.AZURE_OPENAI
        elif port == _OLLAMA_PORT or "ollama" in host:
            provider = Provider.OLLAMA
    default_port = 443 if (url and url.scheme == "https") else 80
    result = (provider, host or None, port or (default_port if host else None))
    if len(_endpoint_cache) > 256:
        _endpoint_cache.clear()
    _endpoint_cache[id(base_url)] = (base_url, result)
    return result


def _accepts_stream_options(client: Any, provider: str) -> bool:
    if provider == Provider.AZURE_OPENAI:
        version = getattr(client, "_api_version", None)
        return isinstance(version, str) and version >= _AZURE_STREAM_OPTIONS_SINCE
    return True


def _finish_reason(reason: Any) -> Optional[str]:
    if not reason:
        return None
    return _FINISH_REASONS.get(reason, reason)


# -- request translation -----------------------------------------------------------------


def _content_parts(content: Any) -> list:
    if content is None or not given(content):
        return []
    if isinstance(content, str):
        return [m.text(content)]
    parts = []
    for item in content if isinstance(content, (list, tuple)) else [content]:
        if isinstance(item, str):
            parts.append(m.text(item))
            continue
        kind = get(item, "type")
        if kind in ("text", "input_text", "output_text"):
            parts.append(m.text(get(item, "text", "")))
        elif kind == "image_url":
            parts.append(m.media_from_data_url("image", get(get(item, "image_url"), "url", "") or ""))
        elif kind == "input_image":
            url = get(item, "image_url")
            parts.append(m.media_from_data_url("image", url) if url else m.file("image", get(item, "file_id") or ""))
        elif kind == "input_audio":
            audio = get(item, "input_audio")
            parts.append(m.blob("audio", f"audio/{get(audio, 'format', 'wav')}", get(audio, "data", "") or ""))
        elif kind in ("file", "input_file"):
            payload = get(item, "file") if kind == "file" else item
            data = get(payload, "file_data")
            if data:
                parts.append(m.media_from_data_url("document", data) if data.startswith("data:") else m.blob("document", None, data))
            else:
                parts.append(m.file("document", get(payload, "file_id") or get(payload, "file_url") or ""))
        elif kind == "refusal":
            parts.append(m.generic("refusal", content=get(item, "refusal")))
        else:
            parts.append(m.generic(kind or "unknown"))
    return parts


def _chat_message(message: Any) -> dict:
    role = get(message, "role") or "user"
    if role == "tool":
        return m.message("tool", [m.tool_call_response(get(message, "tool_call_id"), get(message, "content"))])
    parts = _content_parts(get(message, "content"))
    for call in get(message, "tool_calls") or ():
        function = get(call, "function")
        if function is not None:
            parts.append(m.tool_call(get(call, "id"), get(function, "name"), get(function, "arguments")))
        else:
            custom = get(call, "custom")
            parts.append(m.tool_call(get(call, "id"), get(custom, "name"), get(custom, "input")))
    function_call = get(message, "function_call")
    if function_call:
        parts.append(m.tool_call(None, get(function_call, "name"), get(function_call, "arguments")))
    return m.message(role, parts, get(message, "name"))


def _tool_definitions(tools: Any) -> list:
    definitions = []
    for tool in tools or ():
        kind = get(tool, "type") or "function"
        function = get(tool, "function")
        if function is not None:  # chat completions nest the function
            definitions.append(m.function_tool(get(function, "name"), get(function, "description"), get(function, "parameters")))
        elif kind == "function":  # the Responses API does not
            definitions.append(m.function_tool(get(tool, "name"), get(tool, "description"), get(tool, "parameters")))
        else:
            definitions.append(m.other_tool(kind, name=get(tool, "name") or get(tool, "server_label"),
                                            server_url=get(tool, "server_url"), headers=get(tool, "headers"),
                                            authorization=get(tool, "authorization")))
    return definitions


def _output_type(response_format: Any) -> Optional[str]:
    if not given(response_format):
        return None
    if isinstance(response_format, type):  # a pydantic model passed to .parse()
        return "json"
    kind = get(response_format, "type")
    if kind in ("json_schema", "json_object"):
        return "json"
    return "text" if kind == "text" else None


def _common_request(instance: Any, kwargs: dict, operation: str) -> InferenceRequest:
    client = getattr(instance, "_client", None)
    base_url = client_base_url(client)  # read once: openai 3's property is not cheap
    provider, address, port = endpoint_of(client, base_url)
    return InferenceRequest(
        provider=provider,
        model=arg(kwargs, "model"),
        operation=operation,
        server_address=address,
        server_port=port,
        stream=bool(arg(kwargs, "stream", False)),
        temperature=number(kwargs.get("temperature")),
        top_p=number(kwargs.get("top_p")),
        seed=number(kwargs.get("seed")),
        frequency_penalty=number(kwargs.get("frequency_penalty")),
        presence_penalty=number(kwargs.get("presence_penalty")),
        attributes={
            semconv.OPENAI_REQUEST_SERVICE_TIER: arg(kwargs, "service_tier"),
            semconv.END_USER_ID: arg(kwargs, "safety_identifier") or arg(kwargs, "user"),
            semconv.BASE_URL: base_url_text(base_url),
        },
    )


# -- response translation ----------------------------------------------------------------


def _chat_usage(usage: Any) -> Optional[Usage]:
    if usage is None:
        return None
    prompt_details = get(usage, "prompt_tokens_details")
    completion_details = get(usage, "completion_tokens_details")
    return Usage(
        input_tokens=get(usage, "prompt_tokens"),
        output_tokens=get(usage, "completion_tokens"),
        cache_read_input_tokens=get(prompt_details, "cached_tokens") if prompt_details is not None else None,
        cache_creation_input_tokens=get(prompt_details, "cache_write_tokens") if prompt_details is not None else None,
        reasoning_tokens=get(completion_details, "reasoning_tokens") if completion_details is not None else None,
    )


def _chat_output(choice_message: Any, finish_reason: Optional[str]) -> dict:
    parts = _content_parts(get(choice_message, "content"))
    refusal = get(choice_message, "refusal")
    if refusal:
        parts.append(m.generic("refusal", content=refusal))
    audio = get(choice_message, "audio")
    if audio is not None and get(audio, "transcript"):
        parts.append(m.text(get(audio, "transcript")))
    for call in get(choice_message, "tool_calls") or ():
        function = get(call, "function")
        if function is not None:
            parts.append(m.tool_call(get(call, "id"), get(function, "name"), get(function, "arguments")))
        else:
            custom = get(call, "custom")
            parts.append(m.tool_call(get(call, "id"), get(custom, "name"), get(custom, "input")))
    function_call = get(choice_message, "function_call")
    if function_call:
        parts.append(m.tool_call(None, get(function_call, "name"), get(function_call, "arguments")))
    return m.output_message(parts, finish_reason)


def _record_chat_completion(call: InferenceCall, completion: Any) -> None:
    choices = get(completion, "choices") or ()
    reasons = [_finish_reason(get(choice, "finish_reason")) for choice in choices]
    call.set_response(
        model=get(completion, "model"),
        response_id=get(completion, "id"),
        finish_reasons=[r for r in reasons if r],
        usage=_chat_usage(get(completion, "usage")),
        attributes={
            semconv.OPENAI_RESPONSE_SERVICE_TIER: get(completion, "service_tier"),
            semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT: get(completion, "system_fingerprint"),
        },
    )
    if call.capture_content:
        call.set_output([_chat_output(get(choice, "message"), reason) for choice, reason in zip(choices, reasons)])


class _ChoiceState:
    __slots__ = ("text", "refusal", "tool_calls", "finish_reason")

    def __init__(self):
        self.text: list = []
        self.refusal: list = []
        self.tool_calls: dict = {}
        self.finish_reason: Optional[str] = None


class ChatStreamAccumulator(StreamAccumulator):
    """Assembles streamed chat completion chunks (content, refusals, tool-call fragments)."""

    __slots__ = ("hide_usage_chunk", "capture", "response_id", "model", "usage", "choices", "service_tier", "fingerprint")
    finish_can_wait = True

    def __init__(self, hide_usage_chunk: bool, capture: bool):
        self.hide_usage_chunk = hide_usage_chunk
        self.capture = capture
        self.response_id = None
        self.model = None
        self.usage = None
        self.choices: dict = {}
        self.service_tier = None
        self.fingerprint = None

    def on_chunk(self, chunk: Any) -> bool:
        # Runs once per chunk. Fields are read from each model's ``__dict__``, where the SDK's
        # models keep every field, defaults included: a pydantic model's attribute read goes
        # through its ``__getattr__`` hook, which the interpreter cannot specialise. Reading the
        # dicts takes this method from 6.0 k to 4.4 k instructions a chunk (callgrind, warm).
        fields = chunk.__dict__
        if not self.model:  # Azure's first chunk (content filter results) carries no model or id
            self.response_id = fields.get("id") or self.response_id
            self.model = fields.get("model")
            self.service_tier = fields.get("service_tier")
            self.fingerprint = fields.get("system_fingerprint")
        usage = fields["usage"]
        choices = fields["choices"]
        if usage is not None:
            self.usage = usage
            if self.hide_usage_chunk and not choices:
                return True  # the usage-only chunk we asked for; the app did not
        elif self.hide_usage_chunk:
            # Asking for usage makes every other chunk carry "usage": null; undo that trace too.
            try:
                chunk.__pydantic_fields_set__.discard("usage")
            except AttributeError:
                pass  # pydantic 1 models keep no such set here
        states = self.choices
        for choice in choices:
            choice_fields = choice.__dict__
            index = choice_fields["index"]
            state = states.get(index)
            if state is None:
                state = states[index] = _ChoiceState()
            reason = choice_fields["finish_reason"]
            if reason:
                state.finish_reason = reason
            if not self.capture:
                continue
            delta = choice_fields["delta"]
            if delta is None:
                continue
            delta_fields = delta.__dict__
            content = delta_fields["content"]
            if content:
                state.text.append(content)
            refusal = delta_fields["refusal"]
            if refusal:
                state.refusal.append(refusal)
            tool_calls = delta_fields["tool_calls"]
            if tool_calls:
                for fragment in tool_calls:
                    entry = state.tool_calls.get(fragment.index)
                    if entry is None:
                        entry = state.tool_calls[fragment.index] = [None, None, []]
                    if fragment.id:
                        entry[0] = fragment.id
                    function = fragment.function
                    if function is not None:
                        if function.name:
                            entry[1] = function.name
                        if function.arguments:
                            entry[2].append(function.arguments)
        return False

    def finish(self, call: InferenceCall) -> None:
        ordered = [self.choices[i] for i in sorted(self.choices)]
        reasons = [_finish_reason(state.finish_reason) for state in ordered]
        call.set_response(
            model=self.model,
            response_id=self.response_id,
            finish_reasons=[r for r in reasons if r],
            usage=_chat_usage(self.usage),
            attributes={
                semconv.OPENAI_RESPONSE_SERVICE_TIER: self.service_tier,
                semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT: self.fingerprint,
            },
        )
        if self.capture:
            outputs = []
            for state, reason in zip(ordered, reasons):
                parts = [m.text("".join(state.text))] if state.text else []
                if state.refusal:
                    parts.append(m.generic("refusal", content="".join(state.refusal)))
                for index in sorted(state.tool_calls):
                    call_id, name, arguments = state.tool_calls[index]
                    parts.append(m.tool_call(call_id, name, "".join(arguments)))
                outputs.append(m.output_message(parts, reason))
            call.set_output(outputs)


class _ResultHandling(CallHandler):
    """Shared by every OpenAI call: plain results, streams and raw responses."""

    input_can_wait = True

    def request(self, instance, args, kwargs):
        # Described later (see Recorder.start): ``describe`` reads only the client and the
        # arguments, as sent when the SDK's request body is known.
        return (lambda sent: self.describe(instance, kwargs if sent is None else sent)), None

    def describe(self, instance: Any, kwargs: dict) -> InferenceRequest:
        raise NotImplementedError

    def record(self, call: InferenceCall, result: Any) -> None:
        raise NotImplementedError

    def accumulator(self, call: InferenceCall, kwargs: dict) -> StreamAccumulator:
        raise NotImplementedError

    def on_parsed(self, call: InferenceCall, parsed: Any, kwargs: dict) -> Any:
        if is_stream(parsed):
            return observe_stream(parsed, call, self.accumulator(call, kwargs))
        call.later(self.record, call, parsed)
        call.end()
        return parsed

    def on_relayed(self, call: InferenceCall, body: bytes, kwargs: dict) -> None:
        """The body the app read itself (export thread): a stream's events or a JSON result."""
        if arg(kwargs, "stream", False):
            accumulator = self.accumulator(call, kwargs)
            for event in server_sent_events(body):
                accumulator.on_chunk(loose(event))
            accumulator.finish(call)
        else:
            self.record(call, json.loads(body))

    def result(self, call: InferenceCall, result: Any, kwargs: dict) -> Any:
        if is_raw_response(result):
            proxy = raw_response_proxy(result, call, lambda c, parsed: self.on_parsed(c, parsed, kwargs),
                                       lambda c, body: self.on_relayed(c, body, kwargs))
            if type(result).__name__ == "LegacyAPIResponse" and not arg(kwargs, "stream", False):
                proxy.parse()  # body already read; parsing now is cached and reused by the app
            return proxy
        return self.on_parsed(call, result, kwargs)


class ChatCompletions(_ResultHandling):
    def request(self, instance, args, kwargs):
        new_kwargs = None
        messages = kwargs.get("messages")
        if messages is not None and not isinstance(messages, (list, tuple)):
            # An iterator of messages can be read once: read it for both us and the SDK.
            new_kwargs = dict(kwargs, messages=list(messages))
        if arg(kwargs, "stream", False) and config.settings().stream_usage and not relayed_stream_requested(kwargs):
            options = arg(kwargs, "stream_options")
            if not (options and get(options, "include_usage")):
                client = getattr(instance, "_client", None)
                if _accepts_stream_options(client, endpoint_of(client)[0]):
                    new_kwargs = dict(new_kwargs or kwargs)
                    new_kwargs["stream_options"] = _UsageRequest(options or {}, include_usage=True)
        describe, _ = super().request(instance, args, new_kwargs or kwargs)
        return describe, new_kwargs

    def describe(self, instance, kwargs) -> InferenceRequest:
        request = _common_request(instance, kwargs, semconv.Operation.CHAT)
        max_tokens = arg(kwargs, "max_completion_tokens") or arg(kwargs, "max_tokens")
        request.max_tokens = number(max_tokens)
        request.stop_sequences = arg(kwargs, "stop")
        request.choice_count = number(kwargs.get("n"))
        request.reasoning_level = arg(kwargs, "reasoning_effort")
        request.output_type = _output_type(kwargs.get("response_format"))
        return request

    def record_input(self, call, instance, args, kwargs):
        messages = kwargs.get("messages") or ()
        call.set_input(
            messages=[_chat_message(message) for message in messages],
            tool_definitions=_tool_definitions(arg(kwargs, "tools")) or _tool_definitions(
                [{"type": "function", "function": f} for f in arg(kwargs, "functions") or ()]),
        )

    def record(self, call, result):
        _record_chat_completion(call, result)

    def accumulator(self, call, kwargs):
        hide = isinstance(kwargs.get("stream_options"), _UsageRequest)
        return ChatStreamAccumulator(hide, call.capture_content)


# -- Responses API -------------------------------------------------------------------------


def _responses_input(value: Any) -> list:
    if not given(value) or value is None:
        return []
    if isinstance(value, str):
        return [m.message("user", [m.text(value)])]
    result = []
    for item in value:
        kind = get(item, "type")
        if kind == "function_call":
            result.append(m.message("assistant", [m.tool_call(get(item, "call_id"), get(item, "name"), get(item, "arguments"))]))
        elif kind == "function_call_output":
            result.append(m.message("tool", [m.tool_call_response(get(item, "call_id"), get(item, "output"))]))
        elif kind in (None, "message"):
            result.append(m.message(get(item, "role") or "user", _content_parts(get(item, "content"))))
        elif kind == "reasoning":
            result.append(m.message("assistant", [m.reasoning(_summary_text(item))]))
        else:
            result.append(m.message("user", [m.generic(kind)]))
    return result


def _summary_text(item: Any) -> str:
    return "\n".join(get(s, "text", "") or "" for s in get(item, "summary") or ())


def _response_usage(usage: Any) -> Optional[Usage]:
    if usage is None:
        return None
    input_details = get(usage, "input_tokens_details")
    output_details = get(usage, "output_tokens_details")
    return Usage(
        input_tokens=get(usage, "input_tokens"),
        output_tokens=get(usage, "output_tokens"),
        cache_read_input_tokens=get(input_details, "cached_tokens") if input_details is not None else None,
        cache_creation_input_tokens=get(input_details, "cache_write_tokens") if input_details is not None else None,
        reasoning_tokens=get(output_details, "reasoning_tokens") if output_details is not None else None,
    )


_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


def _record_response(call: InferenceCall, response: Any) -> None:
    items = get(response, "output") or ()
    parts = []
    calls_tool = False
    for item in items:
        kind = get(item, "type")
        if kind == "message":
            parts.extend(_content_parts(get(item, "content")))
        elif kind == "function_call":
            calls_tool = True
            parts.append(m.tool_call(get(item, "call_id"), get(item, "name"), get(item, "arguments")))
        elif kind == "reasoning":
            summary = _summary_text(item)
            if summary:
                parts.append(m.reasoning(summary))
        elif kind:
            parts.append(m.generic("server_tool_call", name=kind, id=get(item, "id")))
    status = get(response, "status")
    if status == "incomplete":
        details = get(response, "incomplete_details")
        reason = _INCOMPLETE_REASONS.get(get(details, "reason") if details is not None else None, "length")
    elif status == "failed":
        reason = "error"
    else:
        reason = "tool_call" if calls_tool else ("stop" if status == "completed" else status)
    call.set_response(
        model=get(response, "model"),
        response_id=get(response, "id"),
        finish_reasons=[reason] if reason else None,
        usage=_response_usage(get(response, "usage")),
        attributes={semconv.OPENAI_RESPONSE_SERVICE_TIER: get(response, "service_tier")},
    )
    if call.capture_content:
        call.set_output([m.output_message(parts, reason)])


class ResponsesStreamAccumulator(StreamAccumulator):
    """The Responses stream ends with an event holding the whole response; keep only that."""

    __slots__ = ("response",)
    finish_can_wait = True

    _FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
    _EARLY = frozenset({"response.created", "response.in_progress"})

    def __init__(self):
        self.response = None

    def on_chunk(self, chunk: Any) -> bool:
        kind = getattr(chunk, "type", None)
        if kind in self._FINAL or (kind in self._EARLY and self.response is None):
            self.response = chunk.response
        return False

    def finish(self, call: InferenceCall) -> None:
        if self.response is not None:
            _record_response(call, self.response)


class Responses(_ResultHandling):
    def describe(self, instance, kwargs) -> InferenceRequest:
        request = _common_request(instance, kwargs, semconv.Operation.CHAT)
        request.max_tokens = number(kwargs.get("max_output_tokens"))
        reasoning = arg(kwargs, "reasoning")
        request.reasoning_level = get(reasoning, "effort") if reasoning else None
        text = arg(kwargs, "text")
        request.output_type = _output_type(get(text, "format")) if text else None
        if given(kwargs.get("text_format")):
            request.output_type = "json"
        conversation = arg(kwargs, "conversation")
        request.conversation_id = conversation if isinstance(conversation, str) else (get(conversation, "id") if conversation else None)
        return request

    def record_input(self, call, instance, args, kwargs):
        instructions = arg(kwargs, "instructions")
        call.set_input(
            messages=_responses_input(arg(kwargs, "input")),
            system_instructions=[m.text(instructions)] if isinstance(instructions, str) and instructions else None,
            tool_definitions=_tool_definitions(arg(kwargs, "tools")),
        )

    def record(self, call, result):
        _record_response(call, result)

    def accumulator(self, call, kwargs):
        return ResponsesStreamAccumulator()


# -- embeddings ------------------------------------------------------------------------------


class Embeddings(_ResultHandling):
    def describe(self, instance, kwargs) -> InferenceRequest:
        request = _common_request(instance, kwargs, semconv.Operation.EMBEDDINGS)
        encoding = arg(kwargs, "encoding_format")
        request.encoding_formats = [encoding] if encoding else None
        return request

    def record_input(self, call, instance, args, kwargs):
        value = arg(kwargs, "input")
        texts = [value] if isinstance(value, str) else [v for v in (value or ()) if isinstance(v, str)]
        call.set_input(messages=[m.message("user", [m.text(t)]) for t in texts])

    def record(self, call, result):
        data = get(result, "data") or ()
        first = get(data[0], "embedding") if data else None
        usage = get(result, "usage")
        call.set_response(
            model=get(result, "model"),
            usage=Usage(input_tokens=get(usage, "prompt_tokens")) if usage is not None else None,
            attributes={semconv.EMBEDDINGS_DIMENSION_COUNT: len(first) if isinstance(first, list) else None},
        )

    def accumulator(self, call, kwargs):
        return StreamAccumulator()


class OpenAIInstrumentor(LLMInstrumentor):
    requirements = ("openai >= 1.40.0, < 4",)

    def targets(self) -> list:
        chat, responses, embeddings = ChatCompletions(), Responses(), Embeddings()
        # Up to 1.62 ``chat.completions`` is a module; 1.63 made it a package.
        chat_at = dict(module="openai.resources.chat.completions.completions",
                       older_modules=("openai.resources.chat.completions",))
        chat_always = dict(chat_at, required_since="1.40.0")
        chat_parse = dict(chat_at, required_since="1.92.0")  # before: beta.chat's parse, over create
        responses_module = "openai.resources.responses.responses"
        embeddings_module = "openai.resources.embeddings"
        since = "1.66.0"  # the Responses API's first release
        return [
            Target(qualname="Completions.create", handler=chat, **chat_always),
            Target(qualname="Completions.parse", handler=chat, **chat_parse),
            Target(qualname="AsyncCompletions.create", handler=chat, is_async=True, **chat_always),
            Target(qualname="AsyncCompletions.parse", handler=chat, is_async=True, **chat_parse),
            Target(responses_module, "Responses.create", responses, required_since=since),
            Target(responses_module, "Responses.parse", responses),
            Target(responses_module, "AsyncResponses.create", responses, is_async=True, required_since=since),
            Target(responses_module, "AsyncResponses.parse", responses, is_async=True),
            Target(embeddings_module, "Embeddings.create", embeddings, required_since="1.40.0"),
            Target(embeddings_module, "AsyncEmbeddings.create", embeddings, is_async=True, required_since="1.40.0"),
            Target("openai._base_client", "BaseClient._build_request", wrapper=keep_request_body),
        ]
