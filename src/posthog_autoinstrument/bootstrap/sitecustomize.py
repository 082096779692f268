"""Imported by Python at start-up in every process launched by ``posthog-instrument``.

The launcher puts this directory first on PYTHONPATH. Here we set up the user's
OpenTelemetry and PostHog's part (``startup.initialize``) and then run the ``sitecustomize``
ours shadows: the application's own, or ``opentelemetry-instrument``'s when we run inside it,
which is skipped once we have set OpenTelemetry up (it would do it a second time). Nothing here
may raise: the application must start exactly as it would without us.
"""

_OTEL_BOOTSTRAP = ("opentelemetry", "instrumentation", "auto_instrumentation")  # opentelemetry-instrument's


def _instrument() -> bool:
    """Whether OpenTelemetry was set up here."""
    import os
    import sys

    if os.path.basename(sys.argv[0] if sys.argv else "") == "posthog-instrument":
        return False  # our own launcher (`posthog-instrument posthog-instrument ...`): it only execs
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        import posthog_autoinstrument  # noqa: F401
    except ImportError:
        print(
            f"posthog-instrument: this Python ({sys.executable}) does not have posthog-autoinstrument "
            "installed, so the program runs uninstrumented. Install it in the same environment as the "
            "program (pip install posthog-autoinstrument).",
            file=sys.stderr,
            flush=True,
        )
        return False
    try:
        from posthog_autoinstrument.startup import initialize

        return initialize(here)
    except Exception as exc:  # pragma: no cover - defensive: start-up must never fail
        print(
            f"posthog-instrument: instrumentation failed to start ({exc}); the program runs uninstrumented.",
            file=sys.stderr,
            flush=True,
        )
        return False


def _chain_user_sitecustomize(otel_set_up: bool) -> None:
    """Run the ``sitecustomize`` this module shadows, if there is one (the ddtrace technique)."""
    import importlib
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    ours = sys.modules.pop("sitecustomize", None)
    saved_path = list(sys.path)
    otel_bootstrap = os.path.join(*_OTEL_BOOTSTRAP)

    def skipped(entry: str) -> bool:
        path = os.path.abspath(entry or os.curdir)
        # Ours; and once OpenTelemetry is set up, opentelemetry-instrument's, which would set it up again.
        return path == here or (otel_set_up and path.endswith(otel_bootstrap))

    sys.path[:] = [p for p in sys.path if not skipped(p)]
    try:
        importlib.import_module("sitecustomize")
    except ImportError as exc:
        if getattr(exc, "name", None) != "sitecustomize":
            raise
        if ours is not None:
            sys.modules["sitecustomize"] = ours
    finally:
        sys.path[:] = saved_path


_chain_user_sitecustomize(_instrument())
