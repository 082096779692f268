"""The span processor that ships AI spans to PostHog without ever making the app wait.

On the application's thread ``on_end`` does only this: keep AI spans, append them to a
bounded queue, and wake the export thread when a batch is full. Everything else (privacy,
PostHog dialect, encoding, HTTP, retries) happens on one background thread. When PostHog
is slow or down, spans beyond the queue's bound are dropped and counted, never waited for.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Optional, Union

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import SpanContext

from .. import identity as identities
from ..config import Settings, say
from ..genai import Layer, self_tracing
from ..genai.one_generation import (
    SCOPE_NAME,
    is_model_call,
    model_call_recorded_in,
    model_call_starts,
    name_enclosing_framework,
)
from ..genai.inference_call import translate_pending
from ..genai.plain_span import FinishedSpan, PlainSpan
from ..genai.remote_parent import is_remote_ai_parent
from ..lifecycle import process_signals_blocked, watch_signals
from ..recent import RecentKeys
from .dialect import describe, for_posthog, is_ai_span
from .exporter import MAX_SPANS_PER_REQUEST, split_into_requests

if TYPE_CHECKING:
    from ..genai import InferenceCall

# What waits for the export thread: a finished span, or a direct call whose span it builds;
# the identity snapshot taken at its start; the parent PostHog's copy names (None: a root).
Queued = tuple[Union[ReadableSpan, "InferenceCall"], Optional[identities.Identity], Optional[SpanContext]]

logger = logging.getLogger("posthog_autoinstrument")

# Export threads keep running normal exports for this long per batch before giving up on it.
_BATCH_DEADLINE_SECONDS = 60.0
# Bound on identity snapshots held for spans that started but have not ended, and on the span
# ids remembered (RecentKeys: at least this many of the latest, at most twice as many).
_MAX_SPANS_IN_FLIGHT = 10_000

_live_processors: "weakref.WeakSet[PostHogSpanProcessor]" = weakref.WeakSet()


class PostHogSpanProcessor(SpanProcessor):
    def __init__(self, sender, settings: Settings):
        self._sender = sender
        self._settings = settings
        self._max_queue = settings.max_queue_size
        self.flush_timeout = settings.flush_timeout
        self._init_state()
        self._shutdown = False
        self._prepared = False
        self.exported = 0
        self.dropped = 0
        self.failed = 0
        _live_processors.add(self)

    def _init_state(self) -> None:
        self._queue: collections.deque[Queued] = collections.deque()
        # Identity snapshots of spans in flight, taken on the app's thread when they start.
        self._identities: dict = {}
        # Recent AI span ids: a span whose parent is not among them is exported as a root, or
        # under its nearest AI ancestor (below).
        self._ai_span_ids = RecentKeys(_MAX_SPANS_IN_FLIGHT)
        # Spans of the app or of other instrumentations that started inside an AI span (directly
        # or through others like them): their id, and the nearest AI span above them. PostHog
        # never receives such a span, so an AI span inside it names that ancestor as its parent
        # there: the tree PostHog shows skips what it was not sent instead of breaking apart.
        self._ai_ancestors = RecentKeys(_MAX_SPANS_IN_FLIGHT)
        # Spans of other instrumentations that started inside a model call recorded already
        # (see genai.one_generation.model_call_recorded_in): a model call among them is not exported.
        self._inside_recorded = RecentKeys(_MAX_SPANS_IN_FLIGHT)
        # Re-entrant: a signal handler (SIGTERM flush) runs on the main thread between bytecodes,
        # possibly while that same thread holds this lock (in on_end, in shutdown). Flushers wait
        # on it too (``force_flush``): waiting releases every level of a re-entrant hold, so the
        # export thread can work while a handler waits inside such a block.
        self._wake = threading.Condition(threading.RLock())
        self._idle = threading.Event()
        self._idle.set()
        self._flush_requested = False
        self._thread: Optional[threading.Thread] = None
        self._pid = os.getpid()
        self._drop_reported = False
        self._loss_reported = False
        self._in_flight = 0

    # -- application thread ------------------------------------------------------------
    def on_start(self, span, parent_context=None) -> None:
        inside = _inside_recorded_call(span, parent_context)
        if inside:  # (whether it is a model call is known at its end, when all attributes are)
            self._inside_recorded.remember(span.context.span_id)
        if is_ai_span(span) or _every_span_ai(span):
            self._remember_ai_span(span.context.span_id)
            if not inside:
                _note_foreign_model_call(span, parent_context)
        elif self._ai_span_ids:
            ancestor = self._ai_ancestor(span.parent)
            if ancestor is not None:
                self._ai_ancestors.remember(span.context.span_id, ancestor)
        try:
            identity = identities.capture()
        except Exception:
            return
        if identity is not None and len(self._identities) < _MAX_SPANS_IN_FLIGHT:
            self._identities[span.context.span_id] = identity

    def on_direct_start(self, span_id: int, parent_context=None):
        """``on_start`` for a model call recorded without an SDK span (see genai.recording.DirectRecording):
        returns the identity snapshot, which the call carries to ``on_direct_end``."""
        self._remember_ai_span(span_id)
        try:
            return identities.capture(parent_context)
        except Exception:
            return None

    def on_direct_end(self, call, span_id: int, parent, identity) -> None:
        """``on_end`` for a direct call: the export thread builds its span (``call.build_span()``)."""
        if not self._shutdown:
            self._enqueue(call, span_id, parent, identity, remembered=True)

    def on_end(self, span: ReadableSpan) -> None:
        identity = self._identities.pop(span.context.span_id, None) if self._identities else None
        inside = self._inside_recorded.pop(span.context.span_id, False) if self._inside_recorded else False
        if self._shutdown or not is_ai_span(span):
            return
        if inside and is_model_call(span.attributes):
            return  # another view of a call recorded already: one call, one generation
        self._enqueue(span, span.context.span_id, span.parent, identity)

    def _enqueue(self, span, span_id: int, parent, identity, remembered: bool = False) -> None:
        """Queue an ended AI span, or a direct call (whose span is built on the export thread).
        ``remembered``: its id is among the AI span ids already (a direct call's, from its start)."""
        if self._pid != os.getpid():
            # A fork the at-fork hook did not see (uWSGI forks in C): start afresh.
            self._init_state()
        queue = self._queue
        if len(queue) >= self._max_queue:
            self.dropped += 1
            if not self._drop_reported:
                self._drop_reported = True
                say(
                    "PostHog export is falling behind; dropping LLM events beyond "
                    f"POSTHOG_MAX_QUEUE_SIZE={self._max_queue} (counted, reported again at exit)."
                )
            return
        if not remembered:
            self._remember_ai_span(span_id)
        parent_for_posthog = self._ai_ancestor(parent)
        if not self._prepared:
            # No adapter of ours saw an LLM library imported (spans from a library that traces
            # itself): load what exporting needs here, on the app's thread (see exporter.import_httpx).
            self.prepare()
        queue.append((span, identity, parent_for_posthog))
        if self._idle.is_set():  # clear() takes a lock: only when it changes something
            self._idle.clear()
        if self._thread is None:
            self._start_thread()
        if len(queue) >= MAX_SPANS_PER_REQUEST:
            with self._wake:
                self._wake.notify_all()  # all: a flusher may be waiting on it too

    def _ai_ancestor(self, parent: Optional[SpanContext]) -> Optional[SpanContext]:
        """The nearest AI span at or above ``parent``: ``parent`` itself when PostHog receives it
        (an AI span here, or in another process that exports it: see
        genai.remote_parent.is_remote_ai_parent, one trace across an MCP call); else the AI
        span above the spans between; None when there is none (the span becomes a root)."""
        if parent is None:
            return None
        if parent.span_id in self._ai_span_ids or is_remote_ai_parent(parent):
            return parent
        return self._ai_ancestors.get(parent.span_id)

    def _remember_ai_span(self, span_id: int) -> None:
        self._ai_span_ids.remember(span_id)

    def _start_thread(self) -> None:
        with self._wake:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="posthog-autoinstrument-export", daemon=True)
            with process_signals_blocked():
                self._thread.start()
        watch_signals()

    # -- export thread -----------------------------------------------------------------
    def _run(self) -> None:
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        # Our own HTTP requests must never become spans, whoever instruments httpx.
        with suppress_instrumentation():
            first = True  # the first event goes out at once: a new user sees it arrive
            while True:
                with self._wake:
                    # Then: full requests as soon as there are 100 spans, the rest when the
                    # interval is up, on a flush or at exit; never whatever trickled in during
                    # the last request, or a busy app gets one request per span and the export
                    # falls behind.
                    interval_up, first = first, False
                    if (
                        not interval_up
                        and len(self._queue) < MAX_SPANS_PER_REQUEST
                        and not self._shutdown
                        and not self._flush_requested
                    ):
                        interval_up = not self._wake.wait(self._settings.schedule_delay)
                    stopping = self._shutdown
                    drain = stopping or self._flush_requested
                    due = len(self._queue) if interval_up else 0
                self._export_pending(time.monotonic() + _BATCH_DEADLINE_SECONDS, drain, due)
                if stopping and not self._queue:
                    return

    def _export_pending(self, deadline: float, drain: bool = True, due: int = 0) -> None:
        """Send full requests; also the ``due`` spans that were queued when the interval was
        up (not what arrives meanwhile); or, to ``drain`` (flush, exit), everything."""
        queue = self._queue
        while queue and (drain or due > 0 or len(queue) >= MAX_SPANS_PER_REQUEST):
            batch: list[Queued] = []
            while queue and len(batch) < MAX_SPANS_PER_REQUEST:
                batch.append(queue.popleft())
            due -= len(batch)
            self._export_batch(batch, deadline)
        if drain:
            self._flush_requested = False
        if not queue:
            with self._wake:
                self._idle.set()
                self._wake.notify_all()  # flushers waiting for idle

    def _export_batch(self, batch: list[Queued], deadline: float) -> None:
        self._in_flight = len(batch)  # counted as lost if exit comes before they are delivered
        settings = self._settings
        # One stage at a time over the whole batch, not one span at a time through all of them:
        # each stage's code and data then stay in the CPU's caches from one span to the next.
        try:
            translate_pending([queued for queued, _, _ in batch if not isinstance(queued, ReadableSpan)])
        except Exception:  # each call's build_span then runs what is left of its own
            logger.debug("posthog-instrument: could not translate the batch", exc_info=True)
        built: list[tuple[FinishedSpan, Optional[identities.Identity], Optional[SpanContext]]] = []
        for queued, identity, parent in batch:
            try:
                # A direct call's span is built only now (see on_direct_end).
                built.append((queued if isinstance(queued, ReadableSpan) else queued.build_span(), identity, parent))
            except Exception:
                self._not_converted(queued)
        converted: list[PlainSpan] = []
        for span, identity, parent in built:
            try:
                copy = for_posthog(span, settings, identity, parent)
                if copy is None:
                    self._in_flight -= 1
                    continue
                converted.append(copy)
            except Exception:
                self._not_converted(span)
        if settings.debug:
            for copy in converted:
                logger.debug("posthog-instrument: exporting %s", describe(copy))
        try:
            requests = split_into_requests(converted)
        except Exception:
            self.failed += len(converted)
            logger.debug("posthog-instrument: could not encode spans", exc_info=True)
            self._in_flight = 0
            return
        self._in_flight = sum(count for count, _ in requests)
        for count, body in requests:
            try:
                delivery = self._sender.send(body, lambda: min(deadline, self._deadline()), self._past_exit_deadline)
            except Exception:
                logger.debug("posthog-instrument: export failed", exc_info=True)
                delivery = None
            self._in_flight -= count
            if delivery is not None and delivery.ok:
                self.exported += count
            else:
                self.failed += count

    def _not_converted(self, span) -> None:
        # A span we cannot make safe is not sent (it might carry what privacy removes).
        self.failed += 1
        logger.debug("posthog-instrument: could not convert span %r", getattr(span, "name", span), exc_info=True)

    def _past_exit_deadline(self) -> bool:
        return self._shutdown and time.monotonic() >= self._deadline()

    def _deadline(self) -> float:
        return getattr(self, "_exit_deadline", float("inf"))

    def prepare(self) -> None:
        self._prepared = True
        prepare = getattr(self._sender, "prepare", None)
        if prepare is not None:
            try:
                prepare()
            except Exception:
                logger.debug("posthog-instrument: could not prepare export", exc_info=True)

    # -- flush and shutdown ------------------------------------------------------------
    def has_pending(self) -> bool:
        return bool(self._queue) or not self._idle.is_set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        if self._thread is None or not self._thread.is_alive():
            return not self._queue
        with self._wake:
            self._flush_requested = True
            self._wake.notify_all()
            # On the condition, not the event: a SIGTERM handler may run this while its thread
            # holds ``_wake`` (interrupted in shutdown), and only the condition's wait lets go of it.
            return self._wake.wait_for(self._idle.is_set, timeout_millis / 1000.0)

    def report_undelivered(self) -> None:
        """Say, once, how many events never reached PostHog: the process is ending (exit, or a
        fatal signal) and these are lost."""
        # Spans still queued, in a request that did not finish in time, failed, or dropped.
        lost = len(self._queue) + self._in_flight + self.failed + self.dropped
        if lost and not self._loss_reported:
            self._loss_reported = True
            say(
                f"{lost} LLM event(s) could not be delivered to {getattr(self._sender, 'destination', 'PostHog')} "
                f"({self.exported} delivered)."
            )

    def shutdown(self) -> None:
        if self._shutdown:
            return
        timeout = self._settings.flush_timeout
        # Exports in flight give up at this point, so exit is never delayed beyond the bound.
        self._exit_deadline = time.monotonic() + timeout
        self._shutdown = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            with self._wake:
                self._wake.notify_all()
            thread.join(timeout)
        self.report_undelivered()
        try:
            self._sender.close()
        except Exception:
            pass


def _inside_recorded_call(span, parent_context) -> bool:
    """Whether another instrumentation's span starts inside a model call that is recorded
    already: ours at the provider level (logfire's and OpenInference's spans of the same HTTP
    request), or one that a recorder the app chose records (an SDK's native span of a call
    made through PostHog's own wrapper). Decided on the app's thread, where the context is."""
    try:
        scope = span.instrumentation_scope
        return scope is not None and scope.name != SCOPE_NAME and model_call_recorded_in(parent_context)
    except Exception:
        return False


def _every_span_ai(span) -> bool:
    """A span of an SDK whose spans are all AI spans, their attributes set after the start (see
    ``genai.self_tracing``): remembered as one, so that the spans inside keep it as parent."""
    scope = span.instrumentation_scope
    return scope is not None and self_tracing.every_span_ai(scope.name)


def _note_foreign_model_call(span, parent_context) -> None:
    """A library that traces itself (an SDK's native span) starts a model request: the core's
    one-generation rule applies to it as to our own calls (``Recorder.start``), and it names
    the framework whose model call made it, as ours do."""
    try:
        scope = span.instrumentation_scope
        if scope is None or scope.name == SCOPE_NAME:
            return  # ours: Recorder.start applied the rule already
        if is_model_call(span.attributes):
            model_call_starts(Layer.PROVIDER, parent_context)
            name_enclosing_framework(span, parent_context)
    except Exception:
        logger.debug("posthog-instrument: could not check a native model call", exc_info=True)


def _reset_after_fork() -> None:
    # The child inherits the parent's queue and a dead thread; the parent still owns those spans.
    for processor in list(_live_processors):
        processor._init_state()
        processor.exported = processor.dropped = processor.failed = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
