"""Pydantic AI: switched on, not patched.

Pydantic AI traces itself with OpenTelemetry GenAI spans (an ``invoke_agent`` span per agent
run, a ``chat`` span per model request, an ``execute_tool`` span per tool call) once an agent
is instrumented. So this adapter patches nothing: when the application imports ``pydantic_ai``
it calls ``Agent.instrument_all(InstrumentationSettings(...))`` with our tracer provider, and
the export pipeline makes those spans what PostHog needs (``formats/pydantic_ai.py``, registered
with ``genai/self_tracing.py`` when this module is imported).

* **The app's choice wins.** ``instrument_all`` only sets the default for agents that choose
  nothing themselves: an agent built with ``instrument=...`` (``False`` included) or with an
  ``Instrumentation`` capability keeps its own settings, and an app that calls
  ``Agent.instrument_all`` itself (``logfire.instrument_pydantic_ai()`` does) replaces ours,
  since it runs after the import. A default someone set before our hook ran is left alone.
* **Privacy.** ``include_content`` is on only when content capture is (no privacy mode, and
  prompts or outputs recorded), and binary content only with ``POSTHOG_AI_CAPTURE_MEDIA``; the
  pipeline still drops content per span (privacy contexts, inputs-only or outputs-only).
* **Data format.** The newest format version the installed release accepts, from 6 down to 2:
  version 2 introduced the conventions' ``gen_ai.input.messages`` / ``gen_ai.output.messages``
  (parts format) on model-request spans, and version 6 gives tool results the ``tool`` role,
  as the conventions (and our provider adapters) do.
* **One model call, one generation.** Pydantic AI's ``chat`` span is a framework's view of a
  model request. When the model is one we instrument (its OpenAI models call the openai SDK),
  our provider span starts directly under it and the core's rule
  (``genai.one_generation.model_call_starts``) marks it delegated: it is exported as a step without
  tokens, and the generation names the framework (``$ai_framework=pydantic-ai``). With a model
  we do not instrument (``TestModel``, ``FunctionModel``, a provider without an adapter) it
  stays the generation.
* **Start-up cost.** Nothing is imported until the app imports ``pydantic_ai`` itself.

Not covered: agents whose ``instrument`` the app set, by design; Pydantic AI's metrics (they go
to the app's meter provider, as configured by the app); releases before 1.0.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import wrapt
from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from .. import config, lifecycle
from ..formats import pydantic_ai as pydantic_ai_format
from ..genai import self_tracing

logger = logging.getLogger("posthog_autoinstrument")

# Pydantic AI records spans only once imported, which imports this adapter first: registering
# here means the export thread never imports adapter code.
self_tracing.register(
    pydantic_ai_format.SCOPE, pydantic_ai_format.complete_span, framework=pydantic_ai_format.FRAMEWORK
)

# Newest first; see the module docstring.
_FORMAT_VERSIONS = (6, 5, 4, 3, 2)


def content_capture(settings: config.Settings) -> bool:
    """Whether Pydantic AI may record prompts, completions and tool arguments and results."""
    return not settings.privacy_mode and (settings.record_inputs or settings.record_outputs)


def instrumentation_settings(settings_class: Any, tracer_provider: Any, settings: config.Settings) -> Any:
    """``InstrumentationSettings`` for our tracer provider, in the newest format available."""
    options = dict(
        tracer_provider=tracer_provider,
        include_content=content_capture(settings),
        include_binary_content=content_capture(settings) and settings.capture_media,
    )
    last_error: Exception = ValueError("no instrumentation format version accepted")
    for version in _FORMAT_VERSIONS:
        try:
            with warnings.catch_warnings():
                # Older formats are deprecated in newer releases; the app need not hear about it.
                warnings.simplefilter("ignore")
                return settings_class(version=version, **options)
        except (TypeError, ValueError) as exc:
            last_error = exc
    raise last_error


class PydanticAIInstrumentor(BaseInstrumentor):
    """Entry point ``posthog_pydantic_ai``."""

    def instrumentation_dependencies(self):
        return ("pydantic-ai-slim >= 1.0, < 3",)

    def targets(self) -> list:
        """Nothing is patched (the adapters' common interface, which tests enumerate)."""
        return []

    def _instrument(self, **kwargs) -> None:
        self._tracer_provider = kwargs.get("tracer_provider")
        self._active = True
        self._installed = None
        wrapt.register_post_import_hook(self._on_import, "pydantic_ai")

    def _uninstrument(self, **kwargs) -> None:
        self._active = False
        installed, self._installed = self._installed, None
        if installed is None:
            return
        try:
            import pydantic_ai

            agent = pydantic_ai.Agent
            if getattr(agent, "_instrument_default", None) is installed:
                agent.instrument_all(False)
        except Exception:
            logger.debug("posthog-instrument: could not switch pydantic-ai instrumentation off", exc_info=True)

    def _on_import(self, module: Any) -> None:
        if not getattr(self, "_active", False):
            return
        try:
            lifecycle.prepare_export()
            agent = getattr(module, "Agent", None)
            if agent is None or not callable(getattr(agent, "instrument_all", None)):
                logger.debug("posthog-instrument: this pydantic-ai has no Agent.instrument_all; not instrumented")
                return
            if getattr(agent, "_instrument_default", False) is not False:
                logger.debug("posthog-instrument: pydantic-ai instrumentation already chosen; left as it is")
                return
            from pydantic_ai.models.instrumented import InstrumentationSettings

            provider = self._tracer_provider or trace.get_tracer_provider()
            settings = instrumentation_settings(InstrumentationSettings, provider, config.settings())
            agent.instrument_all(settings)
            self._installed = settings
        except Exception:
            logger.debug("posthog-instrument: could not switch pydantic-ai instrumentation on", exc_info=True)
