"""The OpenTelemetry distro: environment defaults, and instrumentors loaded so they can't hurt.

Chosen by ``OTEL_PYTHON_DISTRO=posthog`` (pinned by the ``posthog-instrument`` launcher).
It subclasses the base distro of ``opentelemetry-instrumentation`` rather than depending on
``opentelemetry-distro``, whose gRPC default makes start-up fail when only HTTP exporters are
installed and silently disables every instrumentor.
"""

from __future__ import annotations

import logging

from opentelemetry.instrumentation.distro import BaseDistro

from . import config
from .config import has_destination  # noqa: F401  (kept importable from here)

logger = logging.getLogger("posthog_autoinstrument")


class PostHogDistro(BaseDistro):
    def _configure(self, **kwargs) -> None:
        try:
            settings = config.settings()
            if settings.debug:
                config.log_to_stderr()
        except Exception:  # never let start-up fail
            logger.debug("posthog-instrument: distro configuration failed", exc_info=True)

    def load_instrumentor(self, entry_point, **kwargs) -> None:
        """Load one instrumentor; a broken or out-of-range one is skipped, never fatal.

        The upstream loader skips each instrumentor's own version check for bundled
        instrumentors, and re-raises unexpected errors, which would abort every instrumentor
        after it. We check versions and contain failures per instrumentor.
        """
        try:
            settings = config.settings()
            if settings.disabled or not config.has_destination(settings):
                logger.debug("posthog-instrument: %s not loaded (disabled or nothing to export to)", entry_point.name)
                return
            kwargs.pop("skip_dep_check", None)
            instrumentor = entry_point.load()()
            instrumentor.instrument(raise_exception_on_conflict=True, **kwargs)
        except Exception as exc:
            logger.debug("posthog-instrument: skipping %s: %s", entry_point.name, exc)
