"""PostHog's span processor on the process's TracerProvider.

By the time this runs, the user's own OpenTelemetry set-up (their distro and configurator, run
by OpenTelemetry's loader: see ``startup``) has installed whatever provider it installs; we add
our processor to it, so their exporters keep every span and PostHog additionally receives the
AI spans. Two more cases:

- ``OTEL_*`` export settings but no configurator installed to read them: we apply them with the
  SDK's standard configuration (``opentelemetry-instrument`` alone would ignore them);
- no provider at all: we install ``StartupTracerProvider``, which an application that installs
  its own provider later replaces, as it would have without us.

Nothing here raises: a configuration error never aborts start-up.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref

from opentelemetry import trace
from opentelemetry.sdk.trace import Tracer, TracerProvider

from . import config, lifecycle, otel_internals
from .export import PostHogSpanProcessor
from .export.exporter import PostHogSender, PrintingSender, original_stderr

logger = logging.getLogger("posthog_autoinstrument")

_USER_OTEL_SETUP = ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER")


def build_processor(settings: config.Settings, at_process_start: bool = False):
    """``at_process_start``: the process is starting (under ``posthog-instrument``), so its
    standard error is still the one it was given: a dry run keeps printing there even after
    the app (pytest's capture, a Jupyter kernel) redirects it."""
    if settings.dry_run:
        stream = original_stderr() if at_process_start and not settings.dry_run_file else None
        return PostHogSpanProcessor(PrintingSender(stream, settings.dry_run_file), settings)
    if settings.endpoint:
        return PostHogSpanProcessor(sender_for(settings), settings)
    return None


def sender_for(settings: config.Settings, timeout: float = None) -> PostHogSender:
    """The sender of the PostHog-ready stream: to PostHog, or to ``POSTHOG_OTLP_ENDPOINT``."""
    destination = settings.otlp_endpoint or "PostHog"
    return PostHogSender(
        settings.endpoint, settings.api_key, settings.export_timeout if timeout is None else timeout, destination
    )


def user_configured_otel(env=os.environ) -> bool:
    """Whether ``env`` sets up an OpenTelemetry export (``none`` is no export)."""
    if env.get("OTEL_CONFIG_FILE"):
        return True
    return any(env.get(name, "").strip().lower() not in ("", "none") for name in _USER_OTEL_SETUP)


def install(settings: config.Settings, at_process_start: bool = True) -> None:
    """``at_process_start``: called at start-up, after OpenTelemetry's loader had its chance
    to run the user's configurator; otherwise from ``start()`` in a running program."""
    if settings.disabled:
        return
    try:
        from . import fast_start

        if (
            not isinstance(trace.get_tracer_provider(), TracerProvider)
            and user_configured_otel()
            and not (at_process_start and fast_start.configurator_would_run())
        ):
            _standard_configuration()
        processor = build_processor(settings, at_process_start)
        if processor is None:
            return
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            from opentelemetry.sdk.resources import Resource

            provider = StartupTracerProvider(resource=Resource.create())
            trace.set_tracer_provider(provider)
        provider.add_span_processor(processor)
        lifecycle.install(processor, handle_sigterm=settings.handle_sigterm)
    except Exception:
        logger.debug("posthog-instrument: could not install the PostHog exporter", exc_info=True)


def _standard_configuration() -> None:
    try:
        from opentelemetry.instrumentation.version import __version__

        configurator = otel_internals.sdk_configurator()
        if configurator is None:
            raise RuntimeError("this OpenTelemetry SDK has no configurator we know")
        configurator().configure(auto_instrumentation_version=__version__)
    except Exception as exc:
        config.say(f"your OpenTelemetry settings could not be applied ({exc}); LLM events still go to PostHog.")


class StartupTracerProvider(TracerProvider):
    """The TracerProvider we install when nothing else did.

    An application that installs its own later (``trace.set_tracer_provider``; ``lifecycle``
    lets it) replaces this one as it would have without us, and the tracers this one handed out
    (to our adapters, and to libraries that trace themselves) are re-pointed at the
    application's: from then on their spans carry its resource (service name) and reach its
    processors, PostHog's among them.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._handed_out: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tracer: get_tracer's arguments
        self._handed_out_lock = threading.Lock()
        self._successor = None

    def get_tracer(self, *args, **kwargs):
        successor = self._successor
        if successor is not None:
            return successor.get_tracer(*args, **kwargs)
        tracer = super().get_tracer(*args, **kwargs)
        if type(tracer) is Tracer:
            with self._handed_out_lock:
                self._handed_out[tracer] = (args, kwargs)
        return tracer

    def adopt(self, successor: TracerProvider) -> None:
        """``successor`` replaces this provider: every tracer this one handed out follows it."""
        self._successor = successor
        with self._handed_out_lock:
            handed_out = list(self._handed_out.items())
            self._handed_out.clear()
        for tracer, (args, kwargs) in handed_out:
            try:
                # The same SDK class, so the same state: the tracer now starts its spans
                # exactly as the successor's does (its resource, sampler and processors).
                otel_internals.follow_tracer(tracer, successor.get_tracer(*args, **kwargs))
            except Exception:
                logger.debug("posthog-instrument: a tracer could not follow the app's provider", exc_info=True)
        otel_internals.forget_cached_tracers(self)
