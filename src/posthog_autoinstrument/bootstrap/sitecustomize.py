"""Imported by Python at start-up in every process launched by ``posthog-instrument``.

The launcher puts this directory first on PYTHONPATH. Here we run OpenTelemetry's
auto-instrumentation (our distro, configurator and adapters) and then the application's
own ``sitecustomize``, which ours shadows. Nothing here may raise: the application must
start exactly as it would without us.
"""


def _instrument() -> None:
    import os
    import sys

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
        return
    try:
        from posthog_autoinstrument.startup import initialize

        initialize(here)
    except Exception as exc:  # pragma: no cover - defensive: start-up must never fail
        print(f"posthog-instrument: instrumentation failed to start ({exc}); the program runs uninstrumented.",
              file=sys.stderr, flush=True)


def _chain_user_sitecustomize() -> None:
    """Run the ``sitecustomize`` this module shadows, if there is one (the ddtrace technique)."""
    import importlib
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    ours = sys.modules.pop("sitecustomize", None)
    saved_path = list(sys.path)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    try:
        importlib.import_module("sitecustomize")
    except ImportError as exc:
        if getattr(exc, "name", None) != "sitecustomize":
            raise
        if ours is not None:
            sys.modules["sitecustomize"] = ours
    finally:
        sys.path[:] = saved_path


_instrument()
_chain_user_sitecustomize()
