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
from urllib.parse import urlsplit

from ..genai import InferenceCall, InferenceRequest, Layer, StreamAccumulator, Usage
from ..genai import messages as m
from ..genai import semconv
from ..genai.semconv import Provider
from ..genai.streams import AsyncStreamProxy, SyncStreamProxy
from .base import CallHandler, LLMInstrumentor, Target, get, is_stream, number
# LiteLLM speaks the OpenAI chat format in both directions.
from .openai import _chat_message, _chat_output, _finish_reason, _output_type, _tool_definitions

# LiteLLM's provider names -> the conventions' well-known values. Others are kept as LiteLLM
# spells them (they name the provider, just not in the conventions' list).
_PROVIDERS = {
    "openai": Provider.OPENAI,
    "text-completion-openai": Provider.OPENAI,
    "azure": Provider.AZURE_OPENAI,
    "azure_text": Provider.AZURE_OPENAI,
    "azure_ai": Provider.AZURE_AI_INFERENCE,
    "anthropic": Provider.ANTHROPIC,
    "anthropic_text": Provider.ANTHROPIC,
    "bedrock": Provider.AWS_BEDROCK,
    "vertex_ai": Provider.GCP_VERTEX_AI,
    "vertex_ai_beta": Provider.GCP_VERTEX_AI,
    "gemini": Provider.GCP_GEMINI,
    "groq": Provider.GROQ,
    "deepseek": Provider.DEEPSEEK,
    "mistral": Provider.MISTRAL_AI,
    "codestral": Provider.MISTRAL_AI,
    "text-completion-codestral": Provider.MISTRAL_AI,
    "xai": Provider.XAI,
    "perplexity": Provider.PERPLEXITY,
    "cohere": Provider.COHERE,
    "cohere_chat": Provider.COHERE,
    "openrouter": Provider.OPENROUTER,
    "ollama": Provider.OLLAMA,
    "ollama_chat": Provider.OLLAMA,
    "together_ai": Provider.TOGETHER,
    "watsonx": Provider.IBM_WATSONX_AI,
    "watsonx_text": Provider.IBM_WATSONX_AI,
}
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


def provider_name(litellm_provider: Any) -> Optional[str]:
    if not isinstance(litellm_provider, str) or not litellm_provider:
        return None
    return _PROVIDERS.get(litellm_provider, litellm_provider)


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
        return explicit_provider, model[len(prefix):] if model.startswith(prefix) else model
    prefix, slash, rest = model.partition("/")
    if slash and rest and prefix in _known_providers():
        return prefix, rest
    cost_map = getattr(_litellm(), "model_cost", None)
    entry = cost_map.get(model) if isinstance(cost_map, dict) else None
    provider = entry.get("litellm_provider") if isinstance(entry, dict) else None
    return (provider if isinstance(provider, str) else None), model


def _strip_prefix(model: Any, litellm_provider: Optional[str]) -> Optional[str]:
    if not isinstance(model, str) or not model:
        return None
    if litellm_provider and model.startswith(litellm_provider + "/"):
        return model[len(litellm_provider) + 1:]
    return model


def _address(url: Any) -> tuple:
    if not isinstance(url, str) or "//" not in url:
        return None, None
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None, None
    return (parts.hostname, port) if parts.hostname else (None, None)


def _hidden(result: Any) -> dict:
    hidden = getattr(result, "_hidden_params", None)
    return hidden if isinstance(hidden, dict) else {}


def _positional(args: tuple, kwargs: dict, index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


def _mocked(kwargs: dict) -> bool:
    """LiteLLM answers ``mock_response`` itself, with made-up token counts that are no usage."""
    return kwargs.get("mock_response") is not None or kwargs.get("mock_tool_calls") is not None


# -- usage ---------------------------------------------------------------------------------


def _usage(usage: Any) -> Optional[Usage]:
    """LiteLLM's OpenAI-shaped usage; its ``prompt_tokens`` already include cache tokens."""
    if usage is None:
        return None
    prompt_details = get(usage, "prompt_tokens_details")
    completion_details = get(usage, "completion_tokens_details")
    cache_read = get(prompt_details, "cached_tokens") if prompt_details is not None else None
    cache_creation = get(prompt_details, "cache_creation_tokens") if prompt_details is not None else None
    return Usage(
        input_tokens=get(usage, "prompt_tokens"),
        output_tokens=get(usage, "completion_tokens"),
        cache_read_input_tokens=cache_read if cache_read is not None else get(usage, "cache_read_input_tokens"),
        cache_creation_input_tokens=(cache_creation if cache_creation is not None
                                     else get(usage, "cache_creation_input_tokens")),
        reasoning_tokens=get(completion_details, "reasoning_tokens") if completion_details is not None else None,
    )


def _reported_stream_usage(chunks: Any) -> Optional[Usage]:
    """The provider's usage from the chunks LiteLLM kept, merged as LiteLLM merges them: the
    latest report of each count wins (input and output may come in different events)."""
    merged: dict = {}
    for chunk in chunks if isinstance(chunks, list) else ():
        usage = get(chunk, "usage")
        if usage is None:
            continue
        for key in ("prompt_tokens", "completion_tokens"):
            value = get(usage, key)
            if value is not None:
                merged[key] = value
        for key in ("prompt_tokens_details", "completion_tokens_details",
                    "cache_read_input_tokens", "cache_creation_input_tokens"):
            value = get(usage, key)
            if value is not None:
                merged[key] = value
    return _usage(merged) if merged else None


# -- request translation -------------------------------------------------------------------


def _chat_request(args: tuple, kwargs: dict) -> InferenceRequest:
    model = _positional(args, kwargs, 0, "model")
    litellm_provider, bare_model = split_model(model, kwargs.get("custom_llm_provider"))
    address, port = _address(kwargs.get("api_base") or kwargs.get("base_url"))
    max_tokens = kwargs.get("max_completion_tokens") or kwargs.get("max_tokens")
    return InferenceRequest(
        provider=provider_name(litellm_provider) or _UNKNOWN_PROVIDER,
        model=bare_model,
        operation=semconv.Operation.CHAT,
        server_address=address,
        server_port=port,
        stream=kwargs.get("stream") is True,
        temperature=number(kwargs.get("temperature")),
        top_p=number(kwargs.get("top_p")),
        top_k=number(kwargs.get("top_k")),
        max_tokens=number(max_tokens),
        stop_sequences=kwargs.get("stop") or None,
        seed=number(kwargs.get("seed")),
        choice_count=number(kwargs.get("n")),
        frequency_penalty=number(kwargs.get("frequency_penalty")),
        presence_penalty=number(kwargs.get("presence_penalty")),
        reasoning_level=kwargs.get("reasoning_effort") if isinstance(kwargs.get("reasoning_effort"), str) else None,
        output_type=_output_type(kwargs.get("response_format")),
        layer=Layer.FRAMEWORK,
        attributes={semconv.END_USER_ID: kwargs.get("safety_identifier") or kwargs.get("user")},
    )


def _record_chat_input(call: InferenceCall, args: tuple, kwargs: dict) -> None:
    messages = _positional(args, kwargs, 1, "messages")
    functions = kwargs.get("functions")
    call.set_input(
        messages=[_chat_message(message) for message in messages] if isinstance(messages, (list, tuple)) else None,
        tool_definitions=_tool_definitions(kwargs.get("tools")) or _tool_definitions(
            [{"type": "function", "function": f} for f in functions or ()]),
    )


# -- response translation ------------------------------------------------------------------


def _provider_attributes(result: Any) -> dict:
    """The provider the response names. (Not its ``api_base``: LiteLLM reports its default there
    when the provider SDK took the endpoint from the environment, e.g. OPENAI_BASE_URL.)"""
    return {semconv.PROVIDER_NAME: provider_name(_hidden(result).get("custom_llm_provider"))}


def _output(message: Any, reason: Optional[str]) -> dict:
    output = _chat_output(message, reason)
    # Providers reached over LiteLLM's own HTTP send "" beside tool calls; that is no text part.
    parts = [p for p in output["parts"] if p.get("type") != "text" or p.get("content")]
    reasoning = get(message, "reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        parts.insert(0, m.reasoning(reasoning))
    output["parts"] = parts
    return output


def _record_model_response(call: InferenceCall, response: Any, with_usage: bool = True) -> None:
    hidden = _hidden(response)
    choices = get(response, "choices") or ()
    reasons = [_finish_reason(get(choice, "finish_reason")) for choice in choices]
    attributes = _provider_attributes(response)
    attributes[semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = get(response, "system_fingerprint")
    call.set_response(
        model=_strip_prefix(get(response, "model"), hidden.get("custom_llm_provider")),
        response_id=get(response, "id"),
        finish_reasons=[r for r in reasons if r],
        usage=_usage(get(response, "usage")) if with_usage else None,
        attributes=attributes,
    )
    if call.capture_content:
        call.set_output([_output(get(choice, "message"), reason) for choice, reason in zip(choices, reasons)])


class _ChoiceState:
    __slots__ = ("text", "reasoning", "tool_calls", "finish_reason")

    def __init__(self):
        self.text: list = []
        self.reasoning: list = []
        self.tool_calls: dict = {}
        self.finish_reason: Optional[str] = None


class ChatStreamAccumulator(StreamAccumulator):
    """Assembles LiteLLM's OpenAI-shaped stream chunks; usage from the provider's own report."""

    __slots__ = ("wrapper", "capture", "with_usage", "response_id", "model", "fingerprint", "usage", "choices",
                 "hidden")

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
        for choice in get(chunk, "choices") or ():
            index = get(choice, "index") or 0
            state = self.choices.get(index)
            if state is None:
                state = self.choices[index] = _ChoiceState()
            reason = get(choice, "finish_reason")
            if reason:
                state.finish_reason = reason
            delta = get(choice, "delta")
            if not self.capture or delta is None:
                continue
            content = get(delta, "content")
            if content:
                state.text.append(content)
            reasoning = get(delta, "reasoning_content")
            if reasoning:
                state.reasoning.append(reasoning)
            for position, fragment in enumerate(get(delta, "tool_calls") or ()):
                index_ = get(fragment, "index")
                key = index_ if isinstance(index_, int) else position
                entry = state.tool_calls.get(key)
                if entry is None:
                    entry = state.tool_calls[key] = [None, None, []]
                if get(fragment, "id"):
                    entry[0] = get(fragment, "id")
                function = get(fragment, "function")
                if function is not None:
                    if get(function, "name"):
                        entry[1] = get(function, "name")
                    arguments = get(function, "arguments")
                    if isinstance(arguments, str) and arguments:
                        entry[2].append(arguments)
                    elif isinstance(arguments, dict):
                        entry[2] = [arguments]
        return False

    def finish(self, call: InferenceCall) -> None:
        ordered = [self.choices[i] for i in sorted(self.choices)]
        reasons = [_finish_reason(state.finish_reason) for state in ordered]
        litellm_provider = getattr(self.wrapper, "custom_llm_provider", None) or self.hidden.get("custom_llm_provider")
        # The wrapper keeps the provider's chunks, usage included, whether or not the app asked
        # to see usage; a Router's stream wrapper keeps none, the usage chunk the app saw then.
        usage = _reported_stream_usage(getattr(self.wrapper, "chunks", None)) if self.with_usage else None
        if usage is None and self.usage is not None and self.with_usage:
            usage = _usage(self.usage)
        attributes = {
            semconv.PROVIDER_NAME: provider_name(litellm_provider),
            semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT: self.fingerprint,
        }
        call.set_response(
            model=_strip_prefix(self.model, litellm_provider),
            response_id=self.response_id,
            finish_reasons=[r for r in reasons if r],
            usage=usage,
            attributes=attributes,
        )
        if self.capture:
            outputs = []
            for state, reason in zip(ordered, reasons):
                parts = [m.reasoning("".join(state.reasoning))] if state.reasoning else []
                if state.text:
                    parts.append(m.text("".join(state.text)))
                for index in sorted(state.tool_calls):
                    call_id, name, arguments = state.tool_calls[index]
                    joined = arguments[0] if len(arguments) == 1 and isinstance(arguments[0], dict) else "".join(arguments)
                    parts.append(m.tool_call(call_id, name, joined))
                outputs.append(m.output_message(parts, reason))
            call.set_output(outputs)


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
            proxy = AsyncStreamProxy if hasattr(kind, "__anext__") and (wants_async or not hasattr(
                kind, "__next__")) else SyncStreamProxy
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
        address, port = _address(kwargs.get("api_base") or kwargs.get("base_url"))
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
            model=_strip_prefix(get(result, "model"), _hidden(result).get("custom_llm_provider")),
            usage=Usage(input_tokens=get(usage, "prompt_tokens")) if usage is not None and not _mocked(kwargs) else None,
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
