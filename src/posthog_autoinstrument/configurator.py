"""The OpenTelemetry configurator: the SDK as the user configured it, plus our PostHog export.

Chosen by ``OTEL_PYTHON_CONFIGURATOR=posthog``. The standard ``OTEL_*`` variables keep their
meaning: a user who already exports traces (``OTEL_TRACES_EXPORTER``) keeps that pipeline
and PostHog additionally receives the AI spans. A configuration error never aborts start-up.

When the user configured no OpenTelemetry export of their own (the common case), we set up
only a TracerProvider instead of running the SDK's full configurator, which would also import
and start metrics and logs machinery nobody asked for (about a third of our start-up time).
"""

from __future__ import annotations

import logging
import os

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from . import config, lifecycle
from .export import PostHogSpanProcessor
from .export.exporter import PostHogSender, PrintingSender

logger = logging.getLogger("posthog_autoinstrument")

_USER_OTEL_SETUP = ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER")


def build_processor(settings: config.Settings):
    if settings.dry_run:
        return PostHogSpanProcessor(PrintingSender(), settings)
    if settings.endpoint and settings.api_key:
        return PostHogSpanProcessor(PostHogSender(settings.endpoint, settings.api_key, settings.export_timeout), settings)
    return None


def user_configured_otel(env=os.environ) -> bool:
    """Whether the user set up OpenTelemetry export themselves (then the SDK configurator runs)."""
    if env.get("OTEL_CONFIG_FILE"):
        return True
    return any(env.get(name, "").strip().lower() not in ("", "none") for name in _USER_OTEL_SETUP)


class PostHogConfigurator:
    """Entry point ``opentelemetry_configurator: posthog`` (``configure(**kwargs)`` is the contract)."""

    def configure(self, **kwargs) -> None:
        try:
            settings = config.settings()
        except Exception:
            logger.debug("posthog-instrument: settings unreadable", exc_info=True)
            return
        if settings.disabled:
            return
        if user_configured_otel():
            try:
                from opentelemetry.sdk._configuration import _OTelSDKConfigurator

                _OTelSDKConfigurator().configure(**kwargs)
            except Exception as exc:
                config.say(f"your OpenTelemetry settings could not be applied ({exc}); LLM events still go to PostHog.")
        try:
            processor = build_processor(settings)
            if processor is None:
                return
            provider = trace.get_tracer_provider()
            if not isinstance(provider, TracerProvider):
                from opentelemetry.sdk.resources import Resource

                provider = TracerProvider(resource=Resource.create())
                trace.set_tracer_provider(provider)
            provider.add_span_processor(processor)
            lifecycle.install(processor, handle_sigterm=settings.handle_sigterm)
        except Exception:
            logger.debug("posthog-instrument: could not install the PostHog exporter", exc_info=True)
