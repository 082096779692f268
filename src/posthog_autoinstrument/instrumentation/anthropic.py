"""Anthropic adapter: the Messages API, stable and beta, on ``Anthropic``, ``AnthropicBedrock``
and ``AnthropicVertex`` clients; sync and async; ``create`` (streaming or not), ``parse`` and the
``stream(...)`` helper (``text_stream``, ``get_final_message``, ``until_done``); raw responses.

Since 1.14 the SDK traces itself with OpenTelemetry: one CLIENT span per API call, named
``anthropic.messages.create``, instrumentation scope ``com.anthropic.sdk.python`` (``.bedrock``,
``.vertex`` for the platform clients), metadata only unless its content mode is ``content``.
One call must be one span, so each call is recorded by exactly one of two paths:

Which one is PostHog's choice only while nobody else consumes spans. When PostHog's processor is
the only one on the tracer provider as the app constructs a client (no exporter of the app's own)
and the app has not set ``ANTHROPIC_OPEN_TELEMETRY`` itself, the client is constructed with its
tracing off, as that switch would (``env_open_telemetry`` reads the SDK's environment variables
for a client given no ``open_telemetry`` option): the SDK's span, with content serialised on
the app's thread, would cost more than twice our own recording and nobody else would see it.
With telemetry of the app's own, the SDK traces itself as it would without us.

* **the SDK's span**, when the client traces itself into our tracer provider. This adapter then
  records nothing of its own. It switches the SDK's content capture on (an environment default,
  never over the app's choice, and not under privacy mode), adds at span start what the SDK
  leaves out (tool definitions, the end user, stop sequences, sampling parameters, the calling
  function), and lends the span of a raw ``create(stream=True)`` stream the assembled output,
  which the SDK otherwise records only for its helpers. The export pipeline
  (``formats/anthropic.py``, registered with ``genai/self_tracing.py``) rewrites the span into exactly what the other path records.
* **our span**, for every other client: SDKs before 1.14, clients made while PostHog was the
  only consumer of spans, ``open_telemetry=False``, ``ANTHROPIC_OPEN_TELEMETRY=false``, or an
  app that sends the SDK's spans to a tracer provider of its own.

The translation (content blocks, usage, stop reasons, streamed events) is
:mod:`..formats.anthropic`'s, shared with Bedrock's Anthropic bodies.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, Optional

import wrapt
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN_CONTEXT, NonRecordingSpan

from .. import config, lifecycle
from ..genai import InferenceCall, InferenceRequest, Recorder, StreamAccumulator
from ..genai import messages as m
from ..genai import semconv
from ..genai.semconv import Provider
from ..genai.attributes import request_attributes
from ..genai.caller_location import caller_location
from ..formats import anthropic as anthropic_format
from ..formats.endpoints import EndpointCache
from ..formats.anthropic import StreamedMessage, content_parts, input_messages, tool_definitions
from ..genai import self_tracing
from ..genai.streams import observe_stream
from ._raw_response import is_raw_response, raw_response_proxy, relayed_stream_requested, server_sent_events
from .base import (
    CallHandler,
    LLMInstrumentor,
    Target,
    async_wrapper,
    sync_wrapper,
    arg,
    base_url_text,
    client_base_url,
    get,
    given,
    host_and_port,
    is_stream,
    keep_request_body,
    number,
)

logger = logging.getLogger("posthog_autoinstrument")

#: The SDK's own instrumentation scope; platform clients append ``.bedrock`` / ``.vertex``.
NATIVE_SCOPE = anthropic_format.SCOPE
#: The environment variable the SDK reads (once per client) to record content on its spans.
CONTENT_MODE_ENV = "ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE"
#: The SDK's switch for its own spans (read once per client); set by the app, it decides.
TRACING_ENV = "ANTHROPIC_OPEN_TELEMETRY"
#: The SDK's function (1.14+) that makes a client's tracing options from its environment variables.
_ENV_OPTIONS = "env_open_telemetry"

# The SDK's spans reach the export pipeline only once the SDK is imported, which imports this
# adapter first: registering here means the export thread never imports adapter code.
self_tracing.register(NATIVE_SCOPE, anthropic_format.complete_sdk_span, sub_scopes=True)


# -- endpoint --------------------------------------------------------------------------------

_endpoints = EndpointCache()


def provider_of(client: Any) -> str:
    # 1.14+ clients name their provider for their own spans; older ones by class.
    named = getattr(type(client), "_gen_ai_provider_name", None)
    if isinstance(named, str) and named:
        return named
    name = type(client).__name__
    if "Bedrock" in name:
        return Provider.AWS_BEDROCK
    if "Vertex" in name:
        return Provider.GCP_VERTEX_AI
    return Provider.ANTHROPIC


def endpoint_of(client: Any, base_url: Any = None) -> tuple:
    """(provider, server address, server port), cached per base URL (``base_url``: the
    client's, if the caller has read it already)."""
    if base_url is None:
        base_url = client_base_url(client)
    cached = _endpoints.get(base_url, type(client))
    if cached is not None:
        return cached
    host, port = host_and_port(str(base_url)) if base_url is not None else (None, None)
    return _endpoints.put(base_url, type(client), (provider_of(client), host, port))


# -- request translation (keyword arguments, or the body the SDK sends) ----------------------


def _field(params: Mapping, name: str) -> Any:
    value = arg(params, name)
    if value is None:
        extra = params.get("extra_body")
        if isinstance(extra, Mapping):
            value = extra.get(name)
    return value


def _integer(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def _output_type(params: Mapping) -> Optional[str]:
    output_config = _field(params, "output_config")
    formats = (get(output_config, "format") if output_config else None, _field(params, "output_format"))
    for output_format in formats:
        if isinstance(output_format, type) or get(output_format, "type") == "json_schema":
            return "json"
    return None


def describe(params: Mapping, client: Any = None, stream: Optional[bool] = None) -> InferenceRequest:
    """The request, from a call's keyword arguments or from the body the SDK sends."""
    base_url = client_base_url(client) if client is not None else None
    provider, address, port = endpoint_of(client, base_url) if client is not None else (Provider.ANTHROPIC, None, None)
    thinking = _field(params, "thinking")
    output_config = _field(params, "output_config")
    metadata = _field(params, "metadata")
    stops = _field(params, "stop_sequences")
    return InferenceRequest(
        provider=provider,
        model=_text(_field(params, "model")),
        server_address=address,
        server_port=port,
        stream=bool(_field(params, "stream")) if stream is None else stream,
        temperature=number(_field(params, "temperature")),
        top_p=number(_field(params, "top_p")),
        top_k=number(_field(params, "top_k")),
        max_tokens=number(_field(params, "max_tokens")),
        stop_sequences=list(stops) if isinstance(stops, (list, tuple)) else None,
        reasoning_level=_text(get(output_config, "effort")) if output_config else None,
        output_type=_output_type(params),
        attributes={
            semconv.END_USER_ID: _text(get(metadata, "user_id")) if metadata else None,
            semconv.BASE_URL: base_url_text(base_url),
            semconv.ANTHROPIC_REQUEST_SERVICE_TIER: _text(_field(params, "service_tier")),
            semconv.ANTHROPIC_THINKING_TYPE: _text(get(thinking, "type")) if thinking else None,
            semconv.ANTHROPIC_THINKING_BUDGET_TOKENS: _integer(get(thinking, "budget_tokens")) if thinking else None,
        },
    )


# -- response translation (formats/anthropic.py) ----------------------------------------------


def record_message(call: InferenceCall, message: Any) -> None:
    call.set_response(**anthropic_format.response_details(message))
    if call.capture_content:
        call.set_output([anthropic_format.output_message(message)])


class MessageStreamAccumulator(StreamAccumulator):
    """Folds the raw Messages stream into one message (``formats.anthropic.StreamedMessage``)."""

    __slots__ = ("message",)
    finish_can_wait = True

    def __init__(self, capture: bool):
        self.message = StreamedMessage(capture)

    def on_chunk(self, event: Any) -> bool:
        self.message.add(event)
        return False

    def finish(self, call: InferenceCall) -> None:
        message = self.message
        call.set_response(**message.response_details())
        if message.capture and call.capture_content:
            call.set_output([message.output_message()])

    def snapshot(self) -> Any:
        """The Message so far, as the SDK's stream helpers share it with the SDK's own span."""
        message = self.message
        if message.response_id is None:
            return None
        types = sys.modules.get("anthropic.types")
        message_cls = getattr(types, "Message", None)
        if message_cls is None:
            return None
        return message_cls.construct(
            id=message.response_id,
            type="message",
            role="assistant",
            model=message.model,
            content=message.content(),
            stop_reason=message.stop_reason,
            stop_sequence=None,
            usage=dict(message.usage or {}),
        )


# -- our own recording ------------------------------------------------------------------------


class _Messages(CallHandler):
    """``messages.create`` / ``messages.parse`` (stable and beta)."""

    input_can_wait = True
    streams: Optional[bool] = None

    def request(self, instance, args, kwargs):
        new_kwargs = None
        for name in ("messages", "tools"):
            value = kwargs.get(name)
            if value is not None and given(value) and not isinstance(value, (list, tuple)):
                # An iterator can be read once: read it for both us and the SDK.
                new_kwargs = dict(new_kwargs or kwargs, **{name: list(value)})
        request = describe(new_kwargs or kwargs, getattr(instance, "_client", None), self.streams)
        return request, new_kwargs

    def record_input(self, call, instance, args, kwargs):
        system = arg(kwargs, "system")
        call.set_input(
            messages=input_messages(arg(kwargs, "messages")),
            system_instructions=content_parts(system) if system is not None else None,
            tool_definitions=tool_definitions(arg(kwargs, "tools")),
        )

    def on_parsed(self, call: InferenceCall, parsed: Any) -> Any:
        if is_stream(parsed):
            return observe_stream(parsed, call, MessageStreamAccumulator(call.capture_content))
        call.later(record_message, call, parsed)
        call.end()
        return parsed

    def on_relayed(self, call: InferenceCall, body: bytes, streamed: bool) -> None:
        """The body the app read itself (export thread): a stream's events or a JSON message."""
        if streamed:
            accumulator = MessageStreamAccumulator(call.capture_content)
            for event in server_sent_events(body):
                accumulator.on_chunk(event)
            accumulator.finish(call)
        else:
            record_message(call, json.loads(body))

    def result(self, call, result, kwargs):
        if is_raw_response(result):
            streamed = bool(self.streams or arg(kwargs, "stream", False))
            proxy = raw_response_proxy(result, call, self.on_parsed, lambda c, body: self.on_relayed(c, body, streamed))
            if type(result).__name__ == "LegacyAPIResponse" and not arg(kwargs, "stream", False):
                proxy.parse()  # body already read; the SDK caches the parse and hands the app the same
            return proxy
        return self.on_parsed(call, result)


class _MessagesStream(_Messages):
    """``messages.stream(...)``: the request is made when the returned manager is entered."""

    streams = True

    def result(self, call, result, kwargs):
        if is_raw_response(result) or is_stream(result):
            return super().result(call, result, kwargs)  # not the helper's manager: a stream as such
        return StreamManagerProxy(result, call)


class StreamManagerProxy(wrapt.ObjectProxy):
    """The SDK's ``MessageStreamManager``: observes the raw stream under the helper it returns.

    The helper (``MessageStream``) reads every event, for ``text_stream``, ``until_done()`` and
    ``get_final_message()`` alike, from its raw stream; that one is proxied before the first
    read, so the helper the app gets is the SDK's own object.
    """

    def __init__(self, wrapped: Any, call: InferenceCall):
        super().__init__(wrapped)
        self._self_call = call
        self._self_entered = False

    def __enter__(self):
        self._self_entered = True
        try:
            stream = self.__wrapped__.__enter__()
        except BaseException as exc:
            self._self_call.fail(exc)
            raise
        return self._self_observe(stream)

    def __exit__(self, exc_type, exc_value, traceback):
        try:
            return self.__wrapped__.__exit__(exc_type, exc_value, traceback)
        finally:
            self._self_call.end()

    async def __aenter__(self):
        self._self_entered = True
        try:
            stream = await self.__wrapped__.__aenter__()
        except BaseException as exc:
            self._self_call.fail(exc)
            raise
        return self._self_observe(stream)

    async def __aexit__(self, exc_type, exc_value, traceback):
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc_value, traceback)
        finally:
            self._self_call.end()

    def _self_observe(self, stream: Any) -> Any:
        call = self._self_call
        try:
            raw = stream._raw_stream
            stream._raw_stream = observe_stream(raw, call, MessageStreamAccumulator(call.capture_content))
        except Exception:
            logger.debug("posthog-instrument: anthropic stream helper not understood", exc_info=True)
            call.end()
        return stream

    def __del__(self):
        # A manager that was never entered made no request; an entered one ends with its stream.
        try:
            if not self._self_entered:
                self._self_call.end()
        except Exception:
            pass


# -- the SDK's own spans ----------------------------------------------------------------------


class _CurrentSpanTracer(trace.NoOpTracer):
    """Hands out non-recording stand-ins for the current span: the core's bookkeeping of nested
    calls runs as for any provider call, while the SDK's span is the one that records."""

    def start_span(self, name, context=None, *args, **kwargs):
        return NonRecordingSpan(trace.get_current_span(context).get_span_context())


def _body_argument(args: tuple, kwargs: dict) -> Optional[Mapping]:
    for value in (*args, *kwargs.values()):
        if isinstance(value, Mapping) and "messages" in value:
            return value
    return None


# Called by the SDK (1.14+) for the attributes its span of a Messages call starts with.
_SPAN_START_HOOK = "messages_create_request_attributes"

# Request attributes the SDK's span lacks (it records the others itself).
_ADDED_TO_NATIVE_SPANS = (
    semconv.REQUEST_STOP_SEQUENCES,
    semconv.REQUEST_TEMPERATURE,
    semconv.REQUEST_TOP_P,
    semconv.REQUEST_TOP_K,
    semconv.END_USER_ID,
)


def native_span_additions(body: Mapping) -> dict:
    """What our adapter records at the start of a call and the SDK's span does not."""
    described = request_attributes(describe(body))
    additions = {key: described[key] for key in _ADDED_TO_NATIVE_SPANS if key in described}
    tools = tool_definitions(arg(body, "tools"))
    if tools:
        additions[semconv.TOOL_DEFINITIONS] = m.to_json(tools)
    caller_location(additions)
    return additions


class AnthropicInstrumentor(LLMInstrumentor):
    requirements = ("anthropic >= 0.40.0, < 3",)

    def _instrument(self, **kwargs) -> None:
        self._tracer_provider = kwargs.get("tracer_provider")
        self.delegating = Recorder(_CurrentSpanTracer(), capture_content=False)
        super()._instrument(**kwargs)
        wrapt.register_post_import_hook(self._configure_native_tracing, "anthropic")

    def targets(self) -> list:
        create, stream = _Messages(), _MessagesStream()
        targets = []
        # anthropic 0.40 keeps ``Messages`` in the module ``resources.messages`` (0.41 made it a
        # package); ``beta.messages`` is a package throughout, with ``stream`` from 0.43.
        for module, older, stream_since in (
            ("anthropic.resources.messages.messages", ("anthropic.resources.messages",), "0.40.0"),
            ("anthropic.resources.beta.messages.messages", (), "0.43.0"),
        ):
            at = dict(module=module, older_modules=older)
            always, streams = dict(at, required_since="0.40.0"), dict(at, required_since=stream_since)
            targets += [
                Target(qualname="Messages.create", wrapper=self._dispatch(create, False), **always),
                Target(qualname="Messages.parse", wrapper=self._dispatch(create, False), **at),
                Target(qualname="Messages.stream", wrapper=self._dispatch(stream, False), **streams),
                Target(qualname="AsyncMessages.create", wrapper=self._dispatch(create, True), **always),
                Target(qualname="AsyncMessages.parse", wrapper=self._dispatch(create, True), **at),
                # Returns its manager synchronously; the request is made when it is entered.
                Target(qualname="AsyncMessages.stream", wrapper=self._dispatch(stream, False), **streams),
                # Called by the SDK (1.14+) when its span of a Messages call starts.
                Target(qualname=_SPAN_START_HOOK, wrapper=self._native_span_start, **at),
            ]
        targets.append(Target("anthropic._base_client", "BaseClient._build_request", wrapper=keep_request_body))
        # Called by the SDK (1.14+) as a client given no ``open_telemetry`` option is constructed.
        targets.append(Target("anthropic._tracing", _ENV_OPTIONS, wrapper=self._tracing_options_from_env))
        return targets

    def _patch(self, module: Any, target: Target) -> None:
        if target.qualname != _SPAN_START_HOOK:
            super()._patch(module, target)
            return
        # The SDK keeps this function in request options that platform clients deep-copy, which a
        # wrapt proxy refuses: it is replaced by a plain function instead.
        original = getattr(module, _SPAN_START_HOOK, None)
        if original is None or getattr(original, "_posthog_original", None) is not None:
            return
        hook = self._native_span_start

        @functools.wraps(original)
        def messages_create_request_attributes(*args, **kwargs):
            if not getattr(self, "_active", False):
                return original(*args, **kwargs)
            return hook(original, None, args, kwargs)

        messages_create_request_attributes._posthog_original = original
        setattr(module, _SPAN_START_HOOK, messages_create_request_attributes)
        self._patched.append((module, _SPAN_START_HOOK, original))

    # -- which path records a call ----------------------------------------------------------
    def natively_traced(self, client: Any) -> bool:
        """Whether this client's own span of the call reaches our pipeline (SDK 1.14+)."""
        options = getattr(client, "_open_telemetry", None)
        if not isinstance(options, dict):
            return False
        traces = options.get("traces")
        if not isinstance(traces, dict) or not traces.get("enabled"):
            return False
        provider = options.get("tracer_provider")
        if (
            provider is not None
            and provider is not self._tracer_provider
            and provider is not trace.get_tracer_provider()
        ):
            return False  # the app sends the SDK's spans elsewhere: PostHog gets ours
        return getattr(client, "_tracer", None) is not None

    def _tracing_options_from_env(self, wrapped, instance, args, kwargs):
        """The options a client constructed with no ``open_telemetry`` option gets: tracing off
        while PostHog is the only consumer of spans and the app has not set the switch itself."""
        options = wrapped(*args, **kwargs)
        try:
            if TRACING_ENV in os.environ or not lifecycle.posthog_is_the_only_consumer():
                return options
            traces = options.get("traces")
            if isinstance(traces, bool):
                traces = {"enabled": traces}
            if not isinstance(traces, dict) or "enabled" in traces:
                return options
            return {**options, "traces": {**traces, "enabled": False}}
        except Exception:
            logger.debug("posthog-instrument: anthropic tracing options not read", exc_info=True)
            return options

    def _configure_native_tracing(self, module: Any) -> None:
        """An SDK that traces itself records content only when told to; tell it, unless private."""
        try:
            if not getattr(self, "_active", False) or "anthropic._tracing" not in sys.modules:
                return
            settings = config.settings()
            if settings.privacy_mode or not (settings.record_inputs or settings.record_outputs):
                return
            os.environ.setdefault(CONTENT_MODE_ENV, "content")
        except Exception:
            logger.debug("posthog-instrument: anthropic tracing not configured", exc_info=True)

    def _dispatch(self, handler: _Messages, is_async: bool):
        recording = (async_wrapper if is_async else sync_wrapper)(self, handler)

        def wrapper(wrapped, instance, args, kwargs):
            client = getattr(instance, "_client", None)
            try:
                native = self.natively_traced(client)
            except Exception:
                native = False
            # The SDK's span learns a body's content only when the SDK parses it: a body the app
            # reads itself (``with_streaming_response``, an LLM proxy relaying the events) is
            # recorded by us, and the SDK's span of it, inside our call, is not sent to PostHog.
            if not native or relayed_stream_requested(kwargs):
                return recording(wrapped, instance, args, kwargs)
            if is_async:
                return self._native_async(wrapped, client, args, kwargs)
            self._note_native_call(client, kwargs)
            return self._lend_output(wrapped(*args, **kwargs), client)

        return wrapper

    async def _native_async(self, wrapped, client, args, kwargs):
        self._note_native_call(client, kwargs)
        return self._lend_output(await wrapped(*args, **kwargs), client)

    def _note_native_call(self, client: Any, kwargs: dict) -> None:
        # A framework call around this one becomes a step: the SDK's span is the generation.
        try:
            provider, _, _ = endpoint_of(client)
            call = self.delegating.start(InferenceRequest(provider=provider, model=None))
            if call is not None:
                call.end()
        except Exception:
            logger.debug("posthog-instrument: anthropic call context not noted", exc_info=True)

    def _lend_output(self, result: Any, client: Any) -> Any:
        """A raw ``create(stream=True)`` stream: the SDK's span gets its output from us."""
        try:
            if not is_stream(result) or is_raw_response(result):
                return result
            traces = client._open_telemetry.get("traces") or {}
            if traces.get("content_mode") != "content":
                return result
            tracing = sys.modules.get("anthropic.lib._tracing")
            share = getattr(tracing, "share_message_snapshot", None)
            if share is None:
                return result
            accumulator = MessageStreamAccumulator(capture=True)
            share(result, accumulator.snapshot)
            observer = InferenceCall(NonRecordingSpan(INVALID_SPAN_CONTEXT), capture_content=False)
            return observe_stream(result, observer, accumulator)
        except Exception:
            logger.debug("posthog-instrument: anthropic stream not observed", exc_info=True)
            return result

    def _native_span_start(self, wrapped, instance, args, kwargs):
        attributes = wrapped(*args, **kwargs)
        try:
            body = _body_argument(args, kwargs)
            if body is None:
                return attributes
            return {**(attributes or {}), **native_span_additions(body)}
        except Exception:
            logger.debug("posthog-instrument: anthropic span attributes not added", exc_info=True)
            return attributes
