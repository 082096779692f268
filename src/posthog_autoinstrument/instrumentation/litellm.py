"""LiteLLM adapter: ``completion``, ``acompletion``, ``embedding``, ``aembedding`` and the ``Router``.

Layering. LiteLLM is a framework: it reaches a model either through a provider SDK that has
its own adapter here (the ``openai`` SDK's resource methods: Azure chat, OpenAI and Azure
embeddings) or over HTTP itself (its httpx handlers: Ollama, Anthropic and most others, and in
recent versions OpenAI chat through the openai client's low-level ``post``). Its calls are
recorded at ``Layer.FRAMEWORK``: when an instrumented SDK records the request inside, the core
makes that span the generation and this one a step without tokens; otherwise this span is the
generation. Either way one call is one ``$ai_generation``.

Names. The package attributes ``litellm.completion`` (and the other three) are patched when
the ``litellm`` package finishes importing: before the application can bind them with ``from
litellm import completion``, and they are what the Router looks up on the package at call
time. (Recent versions define them in ``litellm.chat_completions.dispatch`` / ``embeddings.
dispatch`` and older ones in ``litellm.main``; the package attribute is the public name in
both.) ``litellm.main.completion`` itself is deliberately left alone: ``acompletion`` runs it
internally (``completion(..., acompletion=True)``), and that half of an async call must not
become a second call. A name an application bound before instrumentation started cannot be
reached; under ``posthog-instrument`` instrumentation always starts first.

Router. ``Router.completion`` & co. are recorded too. A Router call runs one litellm call per
attempt (retries, fallbacks), each recorded; the Router's span is their parent, so it becomes a
step and the attempts share one trace. A Router call that fails before any attempt (or is
answered from its cache) stays a generation of its own.

Provider and model are the underlying provider's (``custom_llm_provider``, mapped to the
conventions' names) and the model without LiteLLM's ``provider/`` prefix.

Streams. LiteLLM returns a ``CustomStreamWrapper`` (iterable both ways); it is proxied so the
span ends exactly once. Output is assembled from the chunks the application sees. Usage is the
provider's own report, read from the provider chunks the wrapper keeps (``chunks``), never
LiteLLM's token estimate; nothing is added to the request, so a stream whose provider reports
no usage (an OpenAI-compatible server not asked for it) records none.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any, Optional

from ..formats import openai_chat
from ..formats.endpoints import host_and_port
from ..formats.litellm import provider_name, reported_stream_usage, strip_prefix
from ..formats.litellm import usage as litellm_usage
from ..formats.openai_chat import ordered_choices
from ..genai import InferenceCall, InferenceRequest, Layer, StreamAccumulator, Usage
from ..genai import messages as m
from ..genai import semconv
from ..genai.streams import AsyncStreamProxy, SyncStreamProxy
from .base import CallHandler, LLMInstrumentor, Target, get, is_stream, number, optional_field

# Only when nothing names the provider (a Router call that failed before picking a deployment).
_UNKNOWN_PROVIDER = "litellm"

_provider_names: tuple = (None, frozenset())


def _litellm() -> Any:
    return sys.modules.get("litellm")


def _known_providers() -> frozenset:
    """LiteLLM's provider names (``litellm.provider_list``), rebuilt only if the list changes."""
    global _provider_names
    listed = getattr(_litellm(), "provider_list", None)
    cached_list, names = _provider_names
    if listed is not cached_list or len(names) != len(listed or ()):
        names = frozenset(str(getattr(p, "value", p)) for p in listed or ())
        _provider_names = (listed, names)
    return names


def split_model(model: Any, explicit_provider: Any = None) -> tuple:
    """(LiteLLM provider or None, model without LiteLLM's ``provider/`` prefix).

    Cheap on purpose: an explicit ``custom_llm_provider``, the model's prefix, or the model's
    entry in LiteLLM's bundled cost map. ``get_llm_provider`` is not called: it prints to the
    application's stdout when it cannot tell. The response names the provider in any case.
    """
    if not isinstance(model, str):
        return (explicit_provider if isinstance(explicit_provider, str) else None), None
    if isinstance(explicit_provider, str) and explicit_provider:
        prefix = explicit_provider + "/"
        return explicit_provider, model[len(prefix) :] if model.startswith(prefix) else model
    prefix, slash, rest = model.partition("/")
    if slash and rest and prefix in _known_providers():
        return prefix, rest
    cost_map = getattr(_litellm(), "model_cost", None)
    entry = cost_map.get(model) if isinstance(cost_map, dict) else None
    provider = entry.get("litellm_provider") if isinstance(entry, dict) else None
    return (provider if isinstance(provider, str) else None), model


def _hidden(result: Any) -> dict:
    hidden = getattr(result, "_hidden_params", None)
    return hidden if isinstance(hidden, dict) else {}


def _positional(args: tuple, kwargs: dict, index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


def _mocked(kwargs: dict) -> bool:
    """LiteLLM answers ``mock_response`` itself, with made-up token counts that are no usage."""
    return kwargs.get("mock_response") is not None or kwargs.get("mock_tool_calls") is not None


# -- request translation -------------------------------------------------------------------


def _chat_request(args: tuple, kwargs: dict) -> InferenceRequest:
    model = _positional(args, kwargs, 0, "model")
    litellm_provider, bare_model = split_model(model, kwargs.get("custom_llm_provider"))
    address, port = host_and_port(kwargs.get("api_base") or kwargs.get("base_url"))
    request = InferenceRequest(
        provider=provider_name(litellm_provider) or _UNKNOWN_PROVIDER,
        model=bare_model,
        operation=semconv.Operation.CHAT,
        server_address=address,
        server_port=port,
        stream=kwargs.get("stream") is True,
        top_k=number(kwargs.get("top_k")),
        layer=Layer.FRAMEWORK,
        attributes={semconv.END_USER_ID: kwargs.get("safety_identifier") or kwargs.get("user")},
    )
    return openai_chat.request_parameters(request, kwargs)


def _record_chat_input(call: InferenceCall, args: tuple, kwargs: dict) -> None:
    messages = _positional(args, kwargs, 1, "messages")
    functions = kwargs.get("functions")
    call.set_input(
        messages=(
            [openai_chat.input_message(message) for message in messages]
            if isinstance(messages, (list, tuple))
            else None
        ),
        tool_definitions=openai_chat.request_tool_definitions(kwargs.get("tools"), functions),
    )


# -- response translation ------------------------------------------------------------------


def _provider_attributes(result: Any) -> dict:
    """The provider the response names. (Not its ``api_base``: LiteLLM reports its default there
    when the provider SDK took the endpoint from the environment, e.g. OPENAI_BASE_URL.)"""
    return {semconv.PROVIDER_NAME: provider_name(_hidden(result).get("custom_llm_provider"))}


def _output(message: Any, reason: Optional[str]) -> dict:
    output = openai_chat.output_message(message, reason)
    # Providers reached over LiteLLM's own HTTP send "" beside tool calls; that is no text part.
    parts = [p for p in output["parts"] if p.get("type") != "text" or p.get("content")]
    reasoning = optional_field(message, "reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        parts.insert(0, m.reasoning(reasoning))
    output["parts"] = parts
    return output


def _record_model_response(call: InferenceCall, response: Any, with_usage: bool = True) -> None:
    hidden = _hidden(response)
    choices = get(response, "choices") or ()
    reasons = [openai_chat.finish_reason(get(choice, "finish_reason")) for choice in choices]
    attributes = _provider_attributes(response)
    attributes[semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = get(response, "system_fingerprint")
    call.set_response(
        model=strip_prefix(get(response, "model"), hidden.get("custom_llm_provider")),
        response_id=get(response, "id"),
        finish_reasons=[r for r in reasons if r],
        usage=litellm_usage(get(response, "usage")) if with_usage else None,
        attributes=attributes,
    )
    if call.capture_content:
        call.set_output([_output(get(choice, "message"), reason) for choice, reason in zip(choices, reasons)])


def _reasoning_content(delta: Any) -> Any:
    return get(delta, "reasoning_content")


class ChatStreamAccumulator(StreamAccumulator):
    """Assembles LiteLLM's OpenAI-shaped stream chunks; usage from the provider's own report."""

    __slots__ = (
        "wrapper",
        "capture",
        "with_usage",
        "response_id",
        "model",
        "fingerprint",
        "usage",
        "choices",
        "hidden",
    )

    def __init__(self, wrapper: Any, capture: bool, with_usage: bool = True):
        self.wrapper = wrapper
        self.capture = capture
        self.with_usage = with_usage
        self.response_id = None
        self.model = None
        self.fingerprint = None
        self.usage = None
        self.choices: dict = {}
        self.hidden: dict = {}

    def on_chunk(self, chunk: Any) -> bool:
        if self.response_id is None:
            self.response_id = get(chunk, "id")
            self.model = get(chunk, "model")
            self.fingerprint = get(chunk, "system_fingerprint")
            self.hidden = _hidden(chunk)
        usage = getattr(chunk, "usage", None)  # present only when the application asked for it
        if usage is not None:
            self.usage = usage
        openai_chat.add_chunk_choices(self.choices, get(chunk, "choices"), self.capture, _reasoning_content)
        return False

    def finish(self, call: InferenceCall) -> None:
        ordered = ordered_choices(self.choices)
        reasons = [openai_chat.finish_reason(state.finish_reason) for state in ordered]
        litellm_provider = getattr(self.wrapper, "custom_llm_provider", None) or self.hidden.get("custom_llm_provider")
        # The wrapper keeps the provider's chunks, usage included, whether or not the app asked
        # to see usage; a Router's stream wrapper keeps none, the usage chunk the app saw then.
        usage = reported_stream_usage(getattr(self.wrapper, "chunks", None)) if self.with_usage else None
        if usage is None and self.usage is not None and self.with_usage:
            usage = litellm_usage(self.usage)
        attributes = {
            semconv.PROVIDER_NAME: provider_name(litellm_provider),
            semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT: self.fingerprint,
        }
        call.set_response(
            model=strip_prefix(self.model, litellm_provider),
            response_id=self.response_id,
            finish_reasons=[r for r in reasons if r],
            usage=usage,
            attributes=attributes,
        )
        if self.capture:
            call.set_output([m.output_message(state.parts(), reason) for state, reason in zip(ordered, reasons)])


# -- handlers ------------------------------------------------------------------------------


class _Chat(CallHandler):
    """``litellm.completion`` / ``acompletion``; ``asynchronous`` picks how streams are read."""

    def __init__(self, asynchronous: bool):
        self.asynchronous = asynchronous

    def request(self, instance, args, kwargs):
        return _chat_request(args, kwargs), None

    def record_input(self, call, instance, args, kwargs):
        _record_chat_input(call, args, kwargs)

    def result(self, call, result, kwargs):
        if is_stream(result):
            # CustomStreamWrapper implements both protocols; the app reads it the way it called.
            wants_async = self.asynchronous or kwargs.get("acompletion") is True
            kind = type(result)
            proxy = (
                AsyncStreamProxy
                if hasattr(kind, "__anext__") and (wants_async or not hasattr(kind, "__next__"))
                else SyncStreamProxy
            )
            return proxy(result, call, ChatStreamAccumulator(result, call.capture_content, not _mocked(kwargs)))
        if inspect.isawaitable(result):
            # ``completion(..., acompletion=True)`` hands back the async call itself.
            return _completed_later(call, result, lambda done: self.result(call, done, dict(kwargs, acompletion=True)))
        _record_model_response(call, result, with_usage=not _mocked(kwargs))
        call.end()
        return result


class _Embedding(CallHandler):
    def request(self, instance, args, kwargs):
        model = _positional(args, kwargs, 0, "model")
        litellm_provider, bare_model = split_model(model, kwargs.get("custom_llm_provider"))
        address, port = host_and_port(kwargs.get("api_base") or kwargs.get("base_url"))
        encoding = kwargs.get("encoding_format")
        return InferenceRequest(
            provider=provider_name(litellm_provider) or _UNKNOWN_PROVIDER,
            model=bare_model,
            operation=semconv.Operation.EMBEDDINGS,
            server_address=address,
            server_port=port,
            encoding_formats=[encoding] if isinstance(encoding, str) else None,
            layer=Layer.FRAMEWORK,
            attributes={semconv.END_USER_ID: kwargs.get("user")},
        ), None

    def record_input(self, call, instance, args, kwargs):
        value = _positional(args, kwargs, 1, "input")
        if isinstance(value, str):
            texts = [value]
        else:  # token arrays are no text
            texts = [v for v in value if isinstance(v, str)] if isinstance(value, (list, tuple)) else []
        call.set_input(messages=[m.message("user", [m.text(t)]) for t in texts])

    def result(self, call, result, kwargs):
        if inspect.isawaitable(result):
            return _completed_later(call, result, lambda done: self.result(call, done, kwargs))
        data = get(result, "data") or ()
        first = get(data[0], "embedding") if data else None
        usage = get(result, "usage")
        attributes = _provider_attributes(result)
        attributes[semconv.EMBEDDINGS_DIMENSION_COUNT] = len(first) if isinstance(first, list) else None
        call.set_response(
            model=strip_prefix(get(result, "model"), _hidden(result).get("custom_llm_provider")),
            usage=Usage(input_tokens=get(usage, "prompt_tokens"))
            if usage is not None and not _mocked(kwargs)
            else None,
            attributes=attributes,
        )
        call.end()
        return result


async def _completed_later(call: InferenceCall, awaitable: Any, on_result: Any) -> Any:
    """Await a result the call returned unawaited, inside the call's context."""
    token = call.attach()
    try:
        result = await awaitable
    except BaseException as exc:
        call.fail(exc)
        raise
    finally:
        call.detach(token)
    try:
        return on_result(result)
    except Exception:
        call.end()
        return result


class LiteLLMInstrumentor(LLMInstrumentor):
    requirements = ("litellm >= 1.40.0, < 2",)
    framework_calls_direct = True  # (its handlers use nothing but the InferenceCall)

    def targets(self) -> list:
        chat, achat = _Chat(asynchronous=False), _Chat(asynchronous=True)
        embedding = _Embedding()
        targets = [
            Target("litellm", "completion", chat),
            Target("litellm", "acompletion", achat, is_async=True),
            Target("litellm", "embedding", embedding),
            Target("litellm", "aembedding", embedding, is_async=True),
        ]
        # The Router's endpoints are methods of ``Router`` itself in older versions, and of the
        # core it delegates to (``RustCore``) in newer ones; the missing pair is skipped. Its
        # model argument is a model group, so the provider comes from the response.
        for module, owner in (("litellm.router", "Router"), ("litellm.router_rust.core", "RustCore")):
            targets += [
                Target(module, f"{owner}.completion", chat),
                Target(module, f"{owner}.acompletion", achat, is_async=True),
                Target(module, f"{owner}.embedding", embedding),
                Target(module, f"{owner}.aembedding", embedding, is_async=True),
            ]
        return targets
