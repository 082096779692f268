"""The ``posthog`` SDK: feature-flag variants the app evaluates become event properties, and
calls the app makes through PostHog's own LLM wrappers stay theirs.

When the app asks PostHog for a flag (``posthog.get_feature_flag("prompt-v2", user_id)``),
the variant is remembered in the current context for that person, and the AI events that
follow for the same person carry ``$feature/prompt-v2``, so prompt and model experiments can
be broken down by variant. (PostHog's own SDK context, ``posthog.new_context()`` and friends,
needs no patching: it is read directly, see ``identity.py``.)

An app that calls a model through PostHog's wrappers (``posthog.ai.openai.OpenAI``,
``AsyncOpenAI``, ``AzureOpenAI``, ``posthog.ai.anthropic.Anthropic`` and its Bedrock and Vertex
clients, ``posthog.ai.gemini.Client``) chose how that call is recorded: the wrapper captures
its ``$ai_generation`` (or ``$ai_embedding``) itself, with the distinct id and properties the
app passed. The wrapper's methods run with the core's ``RECORDED_ELSEWHERE`` marker attached,
so our provider adapters beneath record nothing and an SDK's own span of the request (the
anthropic SDK traces itself) is not sent to PostHog. Calls the wrappers pass through without
recording (``with_raw_response``, other resources) are recorded by us as usual.
"""

from __future__ import annotations

import logging
import types
from typing import Any

import wrapt

from ..genai.one_generation import RECORDED_ELSEWHERE
from ..identity import record_feature_flag
from .base import LLMInstrumentor, Target

logger = logging.getLogger("posthog_autoinstrument")


def _distinct_id(args, kwargs):
    if len(args) > 1:
        return args[1]
    return kwargs.get("distinct_id")


def flag_evaluated(wrapped, instance, args, kwargs):
    result = wrapped(*args, **kwargs)
    try:
        key = args[0] if args else kwargs.get("key")
        record_feature_flag(_distinct_id(args, kwargs), key, result)
    except Exception:
        pass
    return result


def snapshot_flag_read(wrapped, instance, args, kwargs):
    """``posthog.evaluate_flags(user).get_flag("prompt-v2")``: the SDK's recommended path."""
    result = wrapped(*args, **kwargs)
    try:
        key = args[0] if args else kwargs.get("key")
        record_feature_flag(getattr(instance, "_distinct_id", None), key, result)
    except Exception:
        pass
    return result


def recorded_by_wrapper(wrapped, instance, args, kwargs):
    """A wrapper method that makes its request before it returns (a stream's too)."""
    token = RECORDED_ELSEWHERE.attach()
    try:
        return _deferred_request_marked(wrapped(*args, **kwargs))
    finally:
        RECORDED_ELSEWHERE.detach(token)


def recorded_by_async_wrapper(wrapped, instance, args, kwargs):
    async def marked():
        token = RECORDED_ELSEWHERE.attach()
        try:
            return _deferred_request_marked(await wrapped(*args, **kwargs))
        finally:
            RECORDED_ELSEWHERE.detach(token)

    return marked()


class _MarkedGenerator(wrapt.ObjectProxy):
    """A wrapper's stream generator (Gemini's), whose SDK request starts at its first step."""

    def __iter__(self):
        return self

    def __next__(self):
        token = RECORDED_ELSEWHERE.attach()
        try:
            return self.__wrapped__.__next__()
        finally:
            RECORDED_ELSEWHERE.detach(token)


class _MarkedAsyncGenerator(wrapt.ObjectProxy):
    def __aiter__(self):
        return self

    async def __anext__(self):
        token = RECORDED_ELSEWHERE.attach()
        try:
            return await self.__wrapped__.__anext__()
        finally:
            RECORDED_ELSEWHERE.detach(token)


# The anthropic stream managers' request, which their ``with`` block makes (the wrapper's
# ``messages.stream(...)`` returns the manager before any request, with this request replaced
# by its own recording one).
_DEFERRED_REQUESTS = ("_MessageStreamManager__api_request", "_AsyncMessageStreamManager__api_request")


def _deferred_request_marked(result: Any) -> Any:
    """The wrapper's result, with the request it has yet to make marked where it will be made."""
    if isinstance(result, types.GeneratorType):
        return _MarkedGenerator(result)
    if isinstance(result, types.AsyncGeneratorType):
        return _MarkedAsyncGenerator(result)
    try:
        state = getattr(result, "__dict__", None)
        if not state:
            return result
        for name in _DEFERRED_REQUESTS:
            request = state.get(name)
            if callable(request):
                setattr(result, name, _marked_call(request))
            elif hasattr(request, "__await__"):
                setattr(result, name, _marked_await(request))
    except Exception:
        logger.debug("posthog-instrument: could not mark a PostHog wrapper's stream", exc_info=True)
    return result


def _marked_call(request):
    def marked():
        token = RECORDED_ELSEWHERE.attach()
        try:
            return request()
        finally:
            RECORDED_ELSEWHERE.detach(token)

    return marked


async def _marked_await(request):
    token = RECORDED_ELSEWHERE.attach()
    try:
        return await request
    finally:
        RECORDED_ELSEWHERE.detach(token)


def _wrapper_targets() -> list:
    """The recording methods of PostHog's LLM wrappers (posthog/ai/{openai,anthropic,gemini})."""
    targets = []
    for suffix, marker in (("", recorded_by_wrapper), ("_async", recorded_by_async_wrapper)):
        module = f"posthog.ai.openai.openai{suffix}"
        for qualname in (
            "WrappedResponses.create",
            "WrappedResponses.parse",
            "WrappedCompletions.create",
            "WrappedCompletions.parse",
            "WrappedEmbeddings.create",
            "WrappedBetaCompletions.parse",
        ):
            targets.append(Target(module, qualname, wrapper=marker))
        prefix = "Async" if suffix else ""
        module = f"posthog.ai.anthropic.anthropic{suffix}"
        targets.append(Target(module, f"{prefix}WrappedMessages.create", wrapper=marker))
        # Returns its stream manager at once (async too); the request is marked where it is made.
        targets.append(Target(module, f"{prefix}WrappedMessages.stream", wrapper=recorded_by_wrapper))
        module = f"posthog.ai.gemini.gemini{suffix}"
        for method in ("generate_content", "generate_content_stream", "embed_content"):
            targets.append(Target(module, f"{prefix}Models.{method}", wrapper=marker))
    return targets


class PostHogSDKInstrumentor(LLMInstrumentor):
    requirements = ("posthog >= 3.0",)

    def targets(self) -> list:
        return [
            Target("posthog.client", "Client.get_feature_flag", wrapper=flag_evaluated),
            Target("posthog.client", "Client.feature_enabled", wrapper=flag_evaluated),
            Target("posthog.feature_flag_evaluations", "FeatureFlagEvaluations.get_flag", wrapper=snapshot_flag_read),
            Target("posthog.feature_flag_evaluations", "FeatureFlagEvaluations.is_enabled", wrapper=snapshot_flag_read),
            *_wrapper_targets(),
        ]
