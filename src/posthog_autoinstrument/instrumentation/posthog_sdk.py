"""The ``posthog`` SDK: feature-flag variants the app evaluates become event properties.

When the app asks PostHog for a flag (``posthog.get_feature_flag("prompt-v2", user_id)``),
the variant is remembered in the current context for that person, and the AI events that
follow for the same person carry ``$feature/prompt-v2``, so prompt and model experiments can
be broken down by variant. (PostHog's own SDK context, ``posthog.new_context()`` and friends,
needs no patching: it is read directly, see ``context.py``.)
"""

from __future__ import annotations

from ..identity import record_feature_flag
from .base import LLMInstrumentor, Target


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


class PostHogSDKInstrumentor(LLMInstrumentor):
    requirements = ("posthog >= 3.0",)

    def targets(self) -> list:
        return [
            Target("posthog.client", "Client.get_feature_flag", wrapper=flag_evaluated),
            Target("posthog.client", "Client.feature_enabled", wrapper=flag_evaluated),
            Target("posthog.feature_flag_evaluations", "FeatureFlagEvaluations.get_flag", wrapper=snapshot_flag_read),
            Target("posthog.feature_flag_evaluations", "FeatureFlagEvaluations.is_enabled", wrapper=snapshot_flag_read),
        ]
