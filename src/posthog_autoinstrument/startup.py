"""Start-up inside the application's process (called by the bootstrap ``sitecustomize``).

Once per process, in this order:

1. the user's own OpenTelemetry set-up, exactly as ``opentelemetry-instrument`` runs it:
   OpenTelemetry's loader with the distro, configurator and instrumentations installed, their
   defaults included. ``fast_start`` skips that loader (the costly part of start-up) when it
   would set up nothing that exports anything;
2. PostHog's part (``join``): our span processor on the process's TracerProvider (one of ours
   when nothing else installed one), and our adapters, each loaded when the application
   imports its library.

This package registers nothing where OpenTelemetry's loader looks except one hook, which does
nothing unless ``posthog-instrument`` started the process: installing it changes nothing for a
program started any other way, ``opentelemetry-instrument`` included.
"""

from __future__ import annotations

import os

BOOTSTRAP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bootstrap")

_started = False  # OpenTelemetry was set up in this process by ``initialize``
_joined = False  # PostHog's part is in place


def initialize(bootstrap_dir: str = BOOTSTRAP_DIR) -> bool:
    """Set up OpenTelemetry and PostHog's part; return whether OpenTelemetry was set up here.

    When it was, ``opentelemetry-instrument``'s own sitecustomize (on PYTHONPATH when
    ``posthog-instrument`` runs inside it) must not run: it would set everything up twice.
    With our kill switch on, nothing at all happens here (and that sitecustomize may run).

    Our bootstrap directory stays on PYTHONPATH so that child Python processes (workers,
    reloaders, subprocesses) are instrumented too; it is hidden only while initialising, so
    that a subprocess started during initialisation does not recurse.
    """
    global _started
    if _started:
        return True
    from . import config

    if config.settings().disabled:
        return False
    _started = True
    original = os.environ.get("PYTHONPATH")
    if original is not None:
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in original.split(os.pathsep) if os.path.abspath(p or os.curdir) != bootstrap_dir
        )
    try:
        from . import fast_start

        defaults = fast_start.loader_not_needed()
        if defaults is not None:
            for name, value in defaults.items():
                os.environ.setdefault(name, value)
        else:
            from opentelemetry.instrumentation.auto_instrumentation import initialize as otel_initialize

            otel_initialize()  # logs and swallows the user's set-up errors, as opentelemetry-instrument does
        join()
    finally:
        if original is not None:
            os.environ["PYTHONPATH"] = original
    return True


def join(at_process_start: bool = True) -> None:
    """PostHog's part, once: the span processor on the provider, and our adapters."""
    global _joined
    if _joined:
        return
    _joined = True
    from . import config, configurator, fast_start

    settings = config.settings()
    if settings.debug:
        config.log_to_stderr()
    configurator.install(settings, at_process_start)
    fast_start.watch_imports(settings)


def start_in_process(overrides: dict) -> bool:
    """``posthog_autoinstrument.start()``: PostHog's part in a program already running (a
    notebook kernel, a program started by something we cannot prefix). Return whether it is
    (now or already) in place.

    The same ``join`` as at start-up, so a second call, or a call in a process
    ``posthog-instrument`` started, adds nothing: one processor, one event per call. Libraries
    the program imported already are patched at once (``watch_imports`` fires their triggers,
    and the adapters' post-import hooks run for loaded modules); calls already running finish
    unrecorded. OpenTelemetry's loader (the ``opentelemetry-instrument`` part) is not run: the
    program has set up its own OpenTelemetry, if any, by now.

    ``overrides`` are environment variables, set as the launcher's flags set them (child
    processes inherit them). A call that found nothing to export to (no key) joins nothing,
    so a later call with a key still can.
    """
    from . import config

    if _joined:
        if any(os.environ.get(name) != value for name, value in overrides.items()):
            config.say("start() was already called in this process; its new arguments are ignored.")
        return True
    os.environ.update(overrides)
    config.reset()
    os.environ.pop(config._WARNED_MARKER, None)  # this call's configuration problems are said, as at start-up
    settings = config.settings()
    if settings.disabled or not config.has_destination(settings):
        return False
    join(at_process_start=False)
    return True


def after_opentelemetry_instrument() -> None:
    """Entry point ``opentelemetry_post_instrument``, run by OpenTelemetry's loader.

    It matters only for ``posthog-instrument opentelemetry-instrument CMD``: the inner launcher
    puts its sitecustomize before ours, so the loader runs instead of ``initialize``, and
    PostHog joins here. In any process ``posthog-instrument`` did not start (our bootstrap is
    not on PYTHONPATH) it does nothing.
    """
    try:
        if _started or not launched_by_posthog_instrument():
            return
        from . import config

        if not config.settings().disabled:
            join()
    except Exception:  # the loader re-raises a hook's exception and stops: never ours
        pass


def launched_by_posthog_instrument(env=os.environ) -> bool:
    return any(p and os.path.abspath(p) == BOOTSTRAP_DIR for p in env.get("PYTHONPATH", "").split(os.pathsep))
