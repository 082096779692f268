"""OpenAI adapter: chat completions, the Responses API, embeddings, legacy completions, audio
(transcriptions, translations, speech) and images (generation, edits, variations), sync and async.

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

from typing import Any, Optional

from .. import config
from ..formats import openai_chat, openai_completions, openai_media, openai_responses
from ..formats.endpoints import EndpointCache, host_and_port, openai_compatible_provider
from ..formats.fields import reader
from ..formats.openai_chat import ChoiceBuffer, ToolCallBuffer, ordered_choices
from ..genai import InferenceCall, InferenceRequest, StreamAccumulator, Usage
from ..genai import messages as m
from ..genai import semconv
from ..genai.semconv import Provider
from ..genai.streams import observe_stream
from ._raw_response import is_raw_response, loose, raw_response_proxy, relayed_stream_requested, server_sent_events
from .base import (
    CallHandler,
    LLMInstrumentor,
    Target,
    arg,
    base_url_text,
    client_base_url,
    get,
    given,
    is_stream,
    keep_request_body,
    keep_response_body,
    number,
)

_OLLAMA_PORT = 11434
# Azure OpenAI rejects stream_options before this API version.
_AZURE_STREAM_OPTIONS_SINCE = "2024-09-01"

_endpoints = EndpointCache()


class _UsageRequest(dict):
    """``stream_options`` we added ourselves; the type tells the result handler to hide the usage chunk."""


def endpoint_of(client: Any, base_url: Any = None) -> tuple:
    """(provider, server address, server port) for an OpenAI client, cached per base URL
    (``base_url``: the client's, if the caller has read it already)."""
    if base_url is None:
        base_url = client_base_url(client)
    cached = _endpoints.get(base_url)
    if cached is not None:
        return cached
    host, port = host_and_port(str(base_url)) if base_url is not None else (None, None)
    provider = openai_compatible_provider(host)
    if provider is None:
        if "Azure" in type(client).__name__:
            provider = Provider.AZURE_OPENAI
        elif port == _OLLAMA_PORT or "ollama" in (host or ""):
            provider = Provider.OLLAMA
        else:
            provider = Provider.OPENAI
    return _endpoints.put(base_url, None, (provider, host, port))


def _accepts_stream_options(client: Any, provider: str) -> bool:
    if provider == Provider.AZURE_OPENAI:
        version = getattr(client, "_api_version", None)
        return isinstance(version, str) and version >= _AZURE_STREAM_OPTIONS_SINCE
    return True


def _common_request(instance: Any, kwargs: dict, operation: str) -> InferenceRequest:
    client = getattr(instance, "_client", None)
    base_url = client_base_url(client)  # read once: openai 3's property is not cheap
    provider, address, port = endpoint_of(client, base_url)
    # (fields in order, not by name: a class called with keyword arguments gathers them in a
    # dict first, which costs as much as the rest of making the request)
    request = InferenceRequest(
        provider, arg(kwargs, "model"), operation, address, port, bool(arg(kwargs, "stream", False))
    )
    request.attributes = {
        semconv.OPENAI_REQUEST_SERVICE_TIER: arg(kwargs, "service_tier"),
        semconv.END_USER_ID: arg(kwargs, "safety_identifier") or arg(kwargs, "user"),
        semconv.BASE_URL: base_url_text(base_url),
    }
    return request


def _record_chat_completion(call: InferenceCall, completion: Any, usage: Any = None) -> None:
    read = reader(completion)
    choices = read("choices") or ()
    reasons = [openai_chat.finish_reason(get(choice, "finish_reason")) for choice in choices]
    call.set_response(
        model=read("model"),
        response_id=read("id"),
        finish_reasons=list(filter(None, reasons)),
        usage=openai_chat.usage(usage if usage is not None else read("usage")),
        attributes={
            semconv.OPENAI_RESPONSE_SERVICE_TIER: read("service_tier"),
            semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT: read("system_fingerprint"),
        },
    )
    if call.capture_content:
        call.set_output(
            [openai_chat.output_message(get(choice, "message"), reason) for choice, reason in zip(choices, reasons)]
        )


def _usage_as_returned(completion: Any) -> Any:
    """The completion's token counts as the SDK returned them, read now: the completion is
    translated later, and a framework may rewrite its usage in place before that (Instructor
    writes the running total of its attempts into each attempt's response). Its details are
    replaced there, not changed, so they are kept by reference."""
    usage = getattr(completion, "usage", None)
    if usage is None or isinstance(usage, dict):
        return usage
    fields = getattr(usage, "__dict__", None)  # (a pydantic model's fields: a copy is the cheapest read)
    if type(fields) is dict and "prompt_tokens" in fields:
        return fields.copy()
    return {key: getattr(usage, key, None) for key in openai_chat.CHAT_USAGE_KEYS}


class ChatStreamAccumulator(StreamAccumulator):
    """Assembles streamed chat completion chunks (content, refusals, tool-call fragments)."""

    __slots__ = (
        "hide_usage_chunk",
        "capture",
        "response_id",
        "model",
        "usage",
        "choices",
        "service_tier",
        "fingerprint",
    )
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
                state = states[index] = ChoiceBuffer()
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
                    entry = state.tool_calls.get(fragment.index)  # (ChoiceBuffer.tool_call inlined: no call a fragment)
                    if entry is None:
                        entry = state.tool_calls[fragment.index] = ToolCallBuffer()
                    if fragment.id:
                        entry.id = fragment.id
                    function = fragment.function
                    if function is not None:
                        if function.name:
                            entry.name = function.name
                        if function.arguments:
                            entry.fragments.append(function.arguments)
        return False

    def finish(self, call: InferenceCall) -> None:
        ordered = ordered_choices(self.choices)
        reasons = [openai_chat.finish_reason(state.finish_reason) for state in ordered]
        call.set_response(
            model=self.model,
            response_id=self.response_id,
            finish_reasons=[r for r in reasons if r],
            usage=openai_chat.usage(self.usage),
            attributes={
                semconv.OPENAI_RESPONSE_SERVICE_TIER: self.service_tier,
                semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT: self.fingerprint,
            },
        )
        if self.capture:
            call.set_output([m.output_message(state.parts(), reason) for state, reason in zip(ordered, reasons)])


class _Describer:
    """A handler's ``describe`` of one call's client, for the arguments the recorder gives it:
    one small object a queued call keeps (a closure over the same would keep four)."""

    __slots__ = ("handler", "instance")

    def __init__(self, handler: _ResultHandling, instance: Any):
        self.handler = handler
        self.instance = instance

    def __call__(self, arguments: dict) -> InferenceRequest:
        return self.handler.describe(self.instance, arguments)


def _record_body(handler: _ResultHandling, call: InferenceCall, body: bytes) -> None:
    handler.record(call, m.from_json(body))


class _ResultHandling(CallHandler):
    """Shared by every OpenAI call: plain results, streams and raw responses."""

    input_can_wait = True
    # Whether ``record`` translates the JSON body as well as the SDK's result (see on_parsed).
    records_body = False

    def request(self, instance, args, kwargs):
        # Described later (see Recorder.start): ``describe`` reads only the client and the
        # arguments, as sent when the SDK's request body is known.
        return _Describer(self, instance), None

    def describe(self, instance: Any, kwargs: dict) -> InferenceRequest:
        raise NotImplementedError

    def record(self, call: InferenceCall, result: Any) -> None:
        raise NotImplementedError

    def accumulator(self, call: InferenceCall, kwargs: dict) -> StreamAccumulator:
        raise NotImplementedError

    def on_parsed(self, call: InferenceCall, parsed: Any, kwargs: dict) -> Any:
        if is_stream(parsed):
            return observe_stream(parsed, call, self.accumulator(call, kwargs))
        # A queued call keeps the response's bytes rather than the SDK's objects made from them,
        # which every collection would walk until the export thread translates the call.
        body = call.received_body() if self.records_body else None
        if body is not None:
            call.later(_record_body, self, call, body)
        else:
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
            self.record(call, m.from_json(body))

    def result(self, call: InferenceCall, result: Any, kwargs: dict) -> Any:
        if is_raw_response(result):
            proxy = raw_response_proxy(
                result,
                call,
                lambda c, parsed: self.on_parsed(c, parsed, kwargs),
                lambda c, body: self.on_relayed(c, body, kwargs),
            )
            if type(result).__name__ == "LegacyAPIResponse" and not arg(kwargs, "stream", False):
                proxy.parse()  # body already read; parsing now is cached and reused by the app
            return proxy
        return self.on_parsed(call, result, kwargs)


def _asking_for_stream_usage(instance: Any, kwargs: dict) -> Optional[dict]:
    """Replacement arguments that ask a stream for its usage chunk, where the app did not and
    the endpoint takes the option; else None."""
    if arg(kwargs, "stream", False) and config.settings().stream_usage and not relayed_stream_requested(kwargs):
        options = arg(kwargs, "stream_options")
        if not (options and get(options, "include_usage")):
            client = getattr(instance, "_client", None)
            if _accepts_stream_options(client, endpoint_of(client)[0]):
                return dict(kwargs, stream_options=_UsageRequest(options or {}, include_usage=True))
    return None


class ChatCompletions(_ResultHandling):
    records_body = True

    def request(self, instance, args, kwargs):
        new_kwargs = None
        messages = kwargs.get("messages")
        if messages is not None and not isinstance(messages, (list, tuple)):
            # An iterator of messages can be read once: read it for both us and the SDK.
            new_kwargs = dict(kwargs, messages=list(messages))
        new_kwargs = _asking_for_stream_usage(instance, new_kwargs or kwargs) or new_kwargs
        describe, _ = super().request(instance, args, new_kwargs or kwargs)
        return describe, new_kwargs

    def describe(self, instance, kwargs) -> InferenceRequest:
        return openai_chat.request_parameters(_common_request(instance, kwargs, semconv.Operation.CHAT), kwargs)

    def record_input(self, call, instance, args, kwargs):
        messages = kwargs.get("messages") or ()
        call.set_input(
            messages=[openai_chat.input_message(message) for message in messages],
            tool_definitions=openai_chat.request_tool_definitions(arg(kwargs, "tools"), arg(kwargs, "functions")),
        )

    def on_parsed(self, call, parsed, kwargs):
        if is_stream(parsed) or call.received_body() is not None:
            return super().on_parsed(call, parsed, kwargs)
        # No bytes kept (a raw response parsed by the app): translated from the SDK's object, its
        # usage read now (see _usage_as_returned).
        call.later(self.record, call, parsed, _usage_as_returned(parsed))
        call.end()
        return parsed

    def record(self, call, result, usage=None):
        _record_chat_completion(call, result, usage)

    def accumulator(self, call, kwargs):
        hide = isinstance(kwargs.get("stream_options"), _UsageRequest)
        return ChatStreamAccumulator(hide, call.capture_content)


# -- Responses API -------------------------------------------------------------------------


def _record_response(call: InferenceCall, response: Any) -> None:
    call.set_response(**openai_responses.response_details(response))
    if call.capture_content:
        call.set_output([openai_responses.output_message(response)])


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
        request.temperature = number(kwargs.get("temperature"))
        request.top_p = number(kwargs.get("top_p"))
        request.max_tokens = number(kwargs.get("max_output_tokens"))
        reasoning = arg(kwargs, "reasoning")
        request.reasoning_level = get(reasoning, "effort") if reasoning else None
        text = arg(kwargs, "text")
        request.output_type = openai_chat.output_type(get(text, "format")) if text else None
        if given(kwargs.get("text_format")):
            request.output_type = "json"
        conversation = arg(kwargs, "conversation")
        request.conversation_id = (
            conversation if isinstance(conversation, str) else (get(conversation, "id") if conversation else None)
        )
        return request

    def record_input(self, call, instance, args, kwargs):
        instructions = arg(kwargs, "instructions")
        call.set_input(
            messages=openai_responses.input_messages(arg(kwargs, "input")),
            system_instructions=[m.text(instructions)] if isinstance(instructions, str) and instructions else None,
            tool_definitions=openai_chat.tool_definitions(arg(kwargs, "tools")),
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


# -- legacy completions -----------------------------------------------------------------------


def _record_text_completion(call: InferenceCall, completion: Any) -> None:
    choices = get(completion, "choices") or ()
    call.set_response(
        model=get(completion, "model"),
        response_id=get(completion, "id"),
        finish_reasons=openai_completions.finish_reasons(choices),
        usage=openai_chat.usage(get(completion, "usage")),
        attributes={semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT: get(completion, "system_fingerprint")},
    )
    if call.capture_content:
        call.set_output(openai_completions.output_messages(choices))


class TextCompletionStreamAccumulator(StreamAccumulator):
    """Assembles a streamed legacy completion: text per choice, usage from its last chunk."""

    __slots__ = ("hide_usage_chunk", "capture", "response_id", "model", "usage", "choices")
    finish_can_wait = True

    def __init__(self, hide_usage_chunk: bool, capture: bool):
        self.hide_usage_chunk = hide_usage_chunk
        self.capture = capture
        self.response_id = None
        self.model = None
        self.usage = None
        self.choices: dict = {}

    def on_chunk(self, chunk: Any) -> bool:
        self.response_id = self.response_id or get(chunk, "id")
        self.model = self.model or get(chunk, "model")
        usage = get(chunk, "usage")
        choices = get(chunk, "choices")
        if usage is not None:
            self.usage = usage
            if self.hide_usage_chunk and not choices:
                return True  # the usage-only chunk we asked for; the app did not
        elif self.hide_usage_chunk:
            try:
                chunk.__pydantic_fields_set__.discard("usage")
            except AttributeError:
                pass
        openai_completions.add_chunk_choices(self.choices, choices, self.capture)
        return False

    def finish(self, call: InferenceCall) -> None:
        reasons, output = openai_completions.streamed_output(self.choices)
        call.set_response(
            model=self.model, response_id=self.response_id, finish_reasons=reasons, usage=openai_chat.usage(self.usage)
        )
        if self.capture:
            call.set_output(output)


class TextCompletions(_ResultHandling):
    """``completions.create``: a prompt in, text choices out (``text_completion``)."""

    def request(self, instance, args, kwargs):
        new_kwargs = _asking_for_stream_usage(instance, kwargs)
        describe, _ = super().request(instance, args, new_kwargs or kwargs)
        return describe, new_kwargs

    def describe(self, instance, kwargs) -> InferenceRequest:
        request = _common_request(instance, kwargs, semconv.Operation.TEXT_COMPLETION)
        return openai_chat.request_parameters(request, kwargs)

    def record_input(self, call, instance, args, kwargs):
        call.set_input(messages=openai_completions.input_messages(arg(kwargs, "prompt")))

    def record(self, call, result):
        _record_text_completion(call, result)

    def accumulator(self, call, kwargs):
        return TextCompletionStreamAccumulator(
            isinstance(kwargs.get("stream_options"), _UsageRequest), call.capture_content
        )


# -- audio and images ------------------------------------------------------------------------
# Their requests carry files (multipart uploads): described and recorded from the arguments at
# once, so that no reference to the app's audio or images outlives the call.


class _MediaCall(_ResultHandling):
    input_can_wait = False

    def request(self, instance, args, kwargs):
        return self.describe(instance, kwargs), None

    def accumulator(self, call, kwargs):
        return StreamAccumulator()


def _record_audio_result(call: InferenceCall, found: openai_media.AudioResult) -> None:
    call.set_response(usage=found.usage, attributes=found.attributes)
    if call.capture_content and isinstance(found.text, str):
        call.set_output([m.output_message([m.text(found.text)], None)])


class AudioStreamAccumulator(StreamAccumulator):
    """A streamed transcription: its ``transcript.text.done`` event holds the text and usage."""

    __slots__ = ("found",)

    def __init__(self):
        self.found = None

    def on_chunk(self, chunk: Any) -> bool:
        if get(chunk, "type") == "transcript.text.done":
            self.found = openai_media.AudioResult(text=get(chunk, "text"))
            openai_media.add_audio_usage(self.found, get(chunk, "usage"))
        return False

    def finish(self, call: InferenceCall) -> None:
        if self.found is not None:
            _record_audio_result(call, self.found)


class AudioToText(_MediaCall):
    """``audio.transcriptions.create`` and ``audio.translations.create``: audio in, text out."""

    def describe(self, instance, kwargs) -> InferenceRequest:
        request = _common_request(instance, kwargs, semconv.Operation.GENERATE_CONTENT)
        request.temperature = number(kwargs.get("temperature"))
        request.attributes.update(openai_media.transcription_parameters(kwargs))
        return request

    def record_input(self, call, instance, args, kwargs):
        if call.capture_content:
            call.set_input(messages=openai_media.audio_input(kwargs.get("file"), arg(kwargs, "prompt")))

    def record(self, call, result):
        _record_audio_result(call, openai_media.audio_result(result))

    def accumulator(self, call, kwargs):
        return AudioStreamAccumulator()


class Speech(_MediaCall):
    """``audio.speech.create``: text in, audio out (returned to the app, never read by us)."""

    def describe(self, instance, kwargs) -> InferenceRequest:
        request = _common_request(instance, kwargs, semconv.Operation.GENERATE_CONTENT)
        request.attributes.update(openai_media.speech_parameters(kwargs))
        return request

    def record_input(self, call, instance, args, kwargs):
        if call.capture_content:
            messages, system = openai_media.speech_input(arg(kwargs, "input"), arg(kwargs, "instructions"))
            call.set_input(messages=messages, system_instructions=system)

    def result(self, call, result, kwargs):
        # The audio itself is the app's: noted by its format, never read.
        if call.capture_content:
            call.set_output(openai_media.speech_output(arg(kwargs, "response_format")))
        call.end()
        return result


def _record_images(call: InferenceCall, response: Any) -> None:
    usage, extra = openai_media.image_usage(get(response, "usage"))
    call.set_response(usage=usage, attributes=extra)
    if call.capture_content:
        call.set_output(openai_media.image_output(response))


class ImageStreamAccumulator(StreamAccumulator):
    """A streamed image generation or edit (partial images): usage from its completed event;
    the images themselves (base64) are never kept."""

    __slots__ = ("usage", "output_format")
    _COMPLETED = frozenset({"image_generation.completed", "image_edit.completed"})

    def __init__(self):
        self.usage = None
        self.output_format = None

    def on_chunk(self, chunk: Any) -> bool:
        if get(chunk, "type") in self._COMPLETED:
            self.usage = get(chunk, "usage")
            self.output_format = get(chunk, "output_format")
        return False

    def finish(self, call: InferenceCall) -> None:
        if self.usage is not None:
            usage, extra = openai_media.image_usage(self.usage)
            call.set_response(usage=usage, attributes=extra)
            if call.capture_content:
                call.set_output([m.output_message([m.text(f"[image: {self.output_format or 'png'}]")], None)])


class Images(_MediaCall):
    """``images.generate``, ``images.edit`` and ``images.create_variation``."""

    def describe(self, instance, kwargs) -> InferenceRequest:
        request = _common_request(instance, kwargs, semconv.Operation.GENERATE_CONTENT)
        request.choice_count = number(kwargs.get("n"))
        request.attributes.update(openai_media.image_parameters(kwargs))
        return request

    def record_input(self, call, instance, args, kwargs):
        if call.capture_content:
            call.set_input(
                messages=openai_media.image_input(arg(kwargs, "prompt"), kwargs.get("image"), kwargs.get("mask"))
            )

    def record(self, call, result):
        _record_images(call, result)

    def accumulator(self, call, kwargs):
        return ImageStreamAccumulator()


class OpenAIInstrumentor(LLMInstrumentor):
    requirements = ("openai >= 1.40.0, < 4",)

    def targets(self) -> list:
        chat, responses, embeddings = ChatCompletions(), Responses(), Embeddings()
        # Up to 1.62 ``chat.completions`` is a module; 1.63 made it a package.
        chat_at = dict(
            module="openai.resources.chat.completions.completions", older_modules=("openai.resources.chat.completions",)
        )
        chat_always = dict(chat_at, required_since="1.40.0")
        chat_parse = dict(chat_at, required_since="1.92.0")  # before: beta.chat's parse, over create
        responses_module = "openai.resources.responses.responses"
        embeddings_module = "openai.resources.embeddings"
        since = "1.66.0"  # the Responses API's first release
        completions, audio, speech, images = TextCompletions(), AudioToText(), Speech(), Images()
        audio_module = "openai.resources.audio."
        since_first = dict(required_since="1.40.0")
        return [
            Target("openai.resources.completions", "Completions.create", completions, **since_first),
            Target(
                "openai.resources.completions", "AsyncCompletions.create", completions, is_async=True, **since_first
            ),
            Target(audio_module + "transcriptions", "Transcriptions.create", audio, **since_first),
            Target(audio_module + "transcriptions", "AsyncTranscriptions.create", audio, is_async=True, **since_first),
            Target(audio_module + "translations", "Translations.create", audio, **since_first),
            Target(audio_module + "translations", "AsyncTranslations.create", audio, is_async=True, **since_first),
            Target(audio_module + "speech", "Speech.create", speech, **since_first),
            Target(audio_module + "speech", "AsyncSpeech.create", speech, is_async=True, **since_first),
            Target("openai.resources.images", "Images.generate", images, **since_first),
            Target("openai.resources.images", "AsyncImages.generate", images, is_async=True, **since_first),
            Target("openai.resources.images", "Images.edit", images, **since_first),
            Target("openai.resources.images", "AsyncImages.edit", images, is_async=True, **since_first),
            Target("openai.resources.images", "Images.create_variation", images, **since_first),
            Target("openai.resources.images", "AsyncImages.create_variation", images, is_async=True, **since_first),
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
            Target("openai._response", "BaseAPIResponse._parse", wrapper=keep_response_body),
        ]
