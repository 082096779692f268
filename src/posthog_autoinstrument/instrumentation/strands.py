"""Strands Agents: already tracing, completed at export, not patched.

Strands traces every agent run with OpenTelemetry into the global tracer provider, always: an
``invoke_agent <name>`` span per run, ``execute_event_loop_cycle`` per cycle of its event loop,
``chat`` per model request, ``execute_tool <name>`` per tool call. Under ``posthog-instrument``
the global provider carries our span processor (the app's own provider too, when the app
installs one, ``StrandsTelemetry`` included), so there is nothing to switch on and this adapter
patches nothing: importing it registers, with ``genai/self_tracing.py``, how the export
pipeline reads those spans (``formats/strands.py``). PostHog then gets one trace per run: the
run and its cycles and tools as steps, one generation per model call.

* **Content is in span events,** which PostHog ignores: the pipeline writes it into the
  conventions' attributes before privacy applies (so privacy mode, ``POSTHOG_AI_RECORD_INPUTS``
  and ``_OUTPUTS`` remove it as they do for every span) and leaves those events out of the
  PostHog copy. Both of Strands' styles are read: the conventions' older per-message events
  (its default) and ``gen_ai_latest_experimental``'s (``OTEL_SEMCONV_STABILITY_OPT_IN``).
* **Attributes come after the start.** Strands sets a span's attributes after starting it; its
  spans are registered as AI spans from their start (``every_span_ai``) so that the spans
  inside them keep them as their parent.
* **One model call, one generation.** Strands' ``chat`` span is the framework's view of a model
  request. With a model whose SDK we instrument (``OpenAIModel`` over ``openai``,
  ``AnthropicModel``, ``BedrockModel`` over ``botocore``, ``LiteLLMModel``, ...), our provider
  span starts inside it and is the generation: it is the richer of the two (the request as sent,
  with tool definitions and parameters, the served model, response id, cache and reasoning
  tokens, stop reason, time to first token, base URL, HTTP status), while Strands' span has the
  requested model, its token totals and the messages. The core's rule
  (``genai.one_generation.model_call_starts``) marks Strands' span delegated, so it is exported
  as a step without tokens; the generation names the framework (``$ai_framework=strands``).
  With ``AnthropicModel`` the anthropic SDK's own span is that generation when it traces itself
  into our pipeline (see ``instrumentation/anthropic.py``); it names the framework all the same.
  With a model we do not instrument (a custom ``Model``), Strands'
  span stays the generation, with Strands' token counts and no provider (Strands names only
  itself).
* **The app's own telemetry is untouched:** its exporters get Strands' spans, events included,
  as Strands made them; only PostHog's copy is rewritten.
* **Start-up cost.** Nothing is imported until the app imports ``strands`` itself.

Not covered: Strands' metrics (they go to the app's meter provider); bidirectional streaming
agents (``strands.experimental.bidi``) are exported as Strands records them, not tested.
"""

from __future__ import annotations

import logging
from typing import Any

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from .. import lifecycle
from ..formats import strands as strands_format
from ..genai import self_tracing

logger = logging.getLogger("posthog_autoinstrument")

# Strands records spans only once imported, which imports this adapter first: registering here
# means the export thread never imports adapter code.
self_tracing.register(
    strands_format.SCOPE,
    strands_format.complete_span,
    read_events=strands_format.read_events,
    every_span_ai=True,
    framework=strands_format.FRAMEWORK,
)


class StrandsInstrumentor(BaseInstrumentor):
    """Entry point ``posthog_strands``."""

    def instrumentation_dependencies(self):
        return ("strands-agents >= 1.0, < 2",)

    def targets(self) -> list:
        """Nothing is patched (the adapters' common interface, which tests enumerate)."""
        return []

    def _instrument(self, **kwargs) -> None:
        self._active = True
        wrapt.register_post_import_hook(self._on_import, "strands")

    def _uninstrument(self, **kwargs) -> None:
        self._active = False

    def _on_import(self, module: Any) -> None:
        if getattr(self, "_active", False):
            lifecycle.prepare_export()
