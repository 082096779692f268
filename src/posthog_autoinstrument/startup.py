"""Start-up inside the application's process (called by the bootstrap ``sitecustomize``)."""

from __future__ import annotations

import os

DISTRO = "posthog"


def initialize(bootstrap_dir: str) -> None:
    """Run OpenTelemetry auto-instrumentation with our distro and configurator pinned
    (through our own lighter loader when it gives the same result: see ``fast_start``).

    ``OTEL_PYTHON_DISTRO`` / ``OTEL_PYTHON_CONFIGURATOR`` are pinned so another installed distro
    cannot win by accident. Our bootstrap directory stays on PYTHONPATH so that child Python
    processes (workers, reloaders, subprocesses) are instrumented too; it is hidden only while
    initialising, so that a subprocess started during initialisation does not recurse.
    """
    os.environ.setdefault("OTEL_PYTHON_DISTRO", DISTRO)
    os.environ.setdefault("OTEL_PYTHON_CONFIGURATOR", DISTRO)
    original = os.environ.get("PYTHONPATH")
    if original is not None:
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in original.split(os.pathsep) if os.path.abspath(p or os.curdir) != bootstrap_dir
        )
    try:
        from . import fast_start

        if fast_start.usable():
            fast_start.run()
        else:
            from opentelemetry.instrumentation.auto_instrumentation import initialize as otel_initialize

            otel_initialize()
    finally:
        if original is not None:
            os.environ["PYTHONPATH"] = original
