"""Delivering pending spans however the process ends, without changing how it ends.

- Normal exit: the SDK's ``atexit`` shutdown flushes (bounded by POSTHOG_FLUSH_TIMEOUT).
- ``os._exit`` (how ``multiprocessing`` fork children and some pools end): flush first.
- SIGTERM with the default disposition (``docker stop``, Kubernetes, ``Pool.terminate()``):
  flush, then die of the same signal, so the exit status is what it would have been. An
  application that installs its own handler replaces ours and keeps full control. Our threads
  block the process's signals, so that they reach the main thread, which runs the handler
  (``process_signals_blocked``); if it still misses one, our watch wakes it (``watch_signals``).
- Events that could not be delivered before the process ends are counted in one line.
- An application that installs its own ``TracerProvider``: it receives every span, and PostHog
  still receives the AI spans.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from typing import Iterator, Optional

from opentelemetry.sdk.trace import SpanProcessor

from . import otel_internals

logger = logging.getLogger("posthog_autoinstrument")

_processor = None  # the PostHog span processor of this process
_original_exit = os._exit


def install(processor, handle_sigterm: bool = True) -> None:
    global _processor
    _processor = processor
    if os._exit is _original_exit:
        os._exit = _exit_after_flush
    if handle_sigterm:
        _install_sigterm_handler()
        if not isinstance(signal.raise_signal, _FlushBeforeFatalSignal):
            signal.raise_signal = _FlushBeforeFatalSignal(signal.raise_signal)
    _share_with_application_providers(processor)


def prepare_export() -> None:
    """Called as the app imports an LLM library: load what exporting needs, on the app's
    importing thread (see ``export.exporter.import_httpx`` for why not later, or earlier)."""
    processor = _processor
    if processor is not None:
        try:
            processor.prepare()
        except Exception:
            logger.debug("posthog-instrument: could not prepare export", exc_info=True)


def _flush_bounded() -> None:
    """The process is about to end without ``atexit``: deliver what is pending, within
    POSTHOG_FLUSH_TIMEOUT, and say what could not be."""
    processor = _processor
    if processor is None:
        return
    try:
        if processor.has_pending():
            processor.force_flush(int(processor.flush_timeout * 1000))
        processor.report_undelivered()
    except Exception:
        logger.debug("posthog-instrument: flush before exit failed", exc_info=True)


def _exit_after_flush(status):
    _flush_bounded()
    _original_exit(status)


def _install_sigterm_handler() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return  # the application (or its server) handles SIGTERM itself
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError, AttributeError):
        pass


def _on_sigterm(signum, frame) -> None:
    _sigterm_handled.set()
    _flush_bounded()
    # Die of SIGTERM as the process would have without us: same status for the parent.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


# The main thread may not run our SIGTERM handler for a long time: the signal went to another
# thread (one of the app's), or arrived just before the main thread blocked in a lock, which
# CPython's check for pending handlers does not cover. Without us, SIGTERM would have killed the
# process at once; with our handler, it would wait for a lock no one releases (a terminated pool's
# worker). So while events may be pending, a thread of ours learns of each signal through the
# wakeup fd and, if the handler has not started soon after a SIGTERM, interrupts the main
# thread's wait with SIGURG (ignored by default; ours ignores it too), so that the handler runs.
_NUDGE = getattr(signal, "SIGURG", None)
_NUDGE_AFTER_SECONDS = 0.2
_sigterm_handled = threading.Event()
_watch: Optional[tuple] = None  # (pid, read fd, write fd) of this process's signal watch


def watch_signals() -> None:
    """Start watching for a SIGTERM our handler misses (called as the export thread starts).

    Only from the main thread (``set_wakeup_fd`` allows no other), only with our SIGTERM handler
    installed, and only if no one else (asyncio, trio, ...) uses the wakeup fd: theirs stays.
    """
    global _watch
    if _watch is not None and _watch[0] == os.getpid():
        return
    if _NUDGE is None or threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not _on_sigterm or signal.getsignal(_NUDGE) is not signal.SIG_DFL:
            return
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        if previous != -1:
            signal.set_wakeup_fd(previous, warn_on_full_buffer=False)
            os.close(read_fd)
            os.close(write_fd)
            return
        signal.signal(_NUDGE, _ignore)
    except (ValueError, OSError, AttributeError):
        logger.debug("posthog-instrument: not watching signals", exc_info=True)
        return
    _watch = (os.getpid(), read_fd, write_fd)
    with process_signals_blocked():
        threading.Thread(
            target=_watch_signals, args=(read_fd,), name="posthog-autoinstrument-signals", daemon=True
        ).start()


def _ignore(signum, frame) -> None:
    pass


def _watch_signals(read_fd: int) -> None:
    while True:
        try:
            received = os.read(read_fd, 512)
        except OSError:
            return
        if not received:
            return
        if (
            signal.SIGTERM in received
            and signal.getsignal(signal.SIGTERM) is _on_sigterm
            and not _sigterm_handled.wait(_NUDGE_AFTER_SECONDS)
        ):
            try:
                signal.pthread_kill(threading.main_thread().ident, _NUDGE)
            except (OSError, ValueError):
                return


def _forget_watch_after_fork() -> None:
    """A forked child must not share its parent's wakeup pipe (its signals would wake the
    parent's watch): it drops it, and watches on its own once it exports."""
    global _watch
    if _watch is None:
        return
    _, read_fd, write_fd = _watch
    _watch = None
    _sigterm_handled.clear()
    try:
        previous = signal.set_wakeup_fd(-1)
        if previous != write_fd:
            signal.set_wakeup_fd(previous, warn_on_full_buffer=False)  # not ours any more: theirs stays
        os.close(read_fd)
        os.close(write_fd)
    except (ValueError, OSError):
        pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_watch_after_fork)


# Raised by a thread's own fault, for that thread; everything else comes from outside the process.
_FAULTS = ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGTRAP", "SIGSYS", "SIGABRT")


@contextlib.contextmanager
def process_signals_blocked() -> Iterator[None]:
    """Threads started inside this block never take the signals sent to the process.

    The kernel hands a process's signal to any one of its threads that does not block it, and
    CPython runs Python handlers on the main thread only, when that thread next runs Python
    code. A main thread blocked in a lock (a ``multiprocessing`` pool worker waiting on its
    queue, which ``Pool.terminate()`` never releases) is woken only if the signal goes to it;
    if our export thread took the SIGTERM instead, the worker would neither flush nor die, and
    the pool would wait for it forever. Without us there would be no other thread to take it.
    """
    block = getattr(signal, "pthread_sigmask", None)
    if block is None:  # Windows
        yield
        return
    faults = {getattr(signal, name) for name in _FAULTS if hasattr(signal, name)}
    previous = block(signal.SIG_BLOCK, signal.valid_signals() - faults)
    try:
        yield  # a new thread inherits the mask of the thread that starts it
    finally:
        block(signal.SIG_SETMASK, previous)


class _FlushBeforeFatalSignal:
    """``signal.raise_signal`` that flushes first when the signal will kill the process.

    Servers with graceful shutdown (uvicorn, also as gunicorn's UvicornWorker) catch SIGTERM,
    shut down, restore the default disposition and raise the signal again, so the process dies
    of it without running ``atexit``: the last spans would be lost.
    """

    def __init__(self, original):
        self._original = original

    def __call__(self, signum):
        try:
            if (
                signum != signal.SIGKILL
                and signal.getsignal(signum) is signal.SIG_DFL
                and signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
            ):
                _flush_bounded()
        except Exception:
            pass
        return self._original(signum)


def _share_with_application_providers(processor) -> None:
    """If the app sets its own TracerProvider after ours, both keep receiving what they should."""
    import functools

    from opentelemetry import trace

    wrapped = trace.set_tracer_provider
    if getattr(wrapped, "_posthog_joins_providers", False):
        return

    # A plain function, not a wrapt wrapper: wrapt imports asyncio, which start-up must not pay for.
    @functools.wraps(wrapped)
    def set_tracer_provider(*args, **kwargs):
        provider = args[0] if args else kwargs.get("tracer_provider")
        ours = trace.get_tracer_provider()
        try:
            if provider is not None and provider is not ours and hasattr(provider, "add_span_processor"):
                provider.add_span_processor(processor)  # spans made through the app's provider
                adopt = getattr(ours, "adopt", None)  # configurator.StartupTracerProvider
                if adopt is not None:
                    adopt(provider)  # the tracers ours handed out start their spans in the app's
                    ours.add_span_processor(_ForwardTo(provider, skip=processor))  # spans made through ours
                    # Ours was installed by us, not by the app or its OpenTelemetry set-up: let the
                    # app's provider take its place, as it would have without us (no "Overriding ...
                    # not allowed", and get_tracer_provider() returns what the app set).
                    otel_internals.allow_tracer_provider_override()
        except Exception:
            logger.debug("posthog-instrument: could not join the application's TracerProvider", exc_info=True)
        return wrapped(*args, **kwargs)

    set_tracer_provider._posthog_joins_providers = True
    trace.set_tracer_provider = set_tracer_provider


class _ForwardTo(SpanProcessor):
    """A span processor handing spans to another provider's processors (except ours)."""

    def __init__(self, provider, skip):
        self._provider = provider
        self._skip = skip

    def _targets(self):
        return [p for p in otel_internals.provider_span_processors(self._provider) if p is not self._skip]

    def on_start(self, span, parent_context=None) -> None:
        for target in self._targets():
            target.on_start(span, parent_context=parent_context)

    def on_end(self, span) -> None:
        for target in self._targets():
            target.on_end(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(target.force_flush(timeout_millis) for target in self._targets())


def current_processor() -> Optional[object]:
    return _processor


def posthog_is_the_only_consumer() -> bool:
    """Whether spans made through the global TracerProvider now reach PostHog's processor and
    nothing else: no exporter or processor of the app's own (``OTEL_TRACES_EXPORTER``, a
    configurator, a provider the app installed or extended in code)."""
    processor = _processor
    if processor is None:
        return False
    from opentelemetry import trace

    processors = otel_internals.provider_span_processors(trace.get_tracer_provider())
    return len(processors) == 1 and processors[0] is processor
