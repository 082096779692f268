"""AWS Lambda: each invocation's events are delivered before its response is returned.

Lambda freezes the process as soon as the runtime hands an invocation's response (or error)
to the Runtime API, and may never thaw it: events still queued then would arrive late, with
a later invocation, or never. The Python runtime's client, ``awslambdaric`` (the managed
runtimes' and the container base images'), posts every response through
``post_invocation_result`` and every error through ``post_invocation_error`` of its
runtime client class; we flush just before each. The handler and what it returns or raises
are untouched.

The flush waits at most POSTHOG_FLUSH_TIMEOUT, and never past the invocation's deadline
(less a margin for posting the response): a slow or dead PostHog costs the invocation that
long at most, and never turns it into a timeout. Events not delivered by then stay queued:
the export carries on when the process is next thawed and they are delivered with a later
invocation's flush, or lost if Lambda shuts the environment down first.
"""

from __future__ import annotations

import logging
import threading
import time

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from .. import config, lifecycle

logger = logging.getLogger("posthog_autoinstrument")

RUNTIME_CLIENT_MODULE = "awslambdaric.lambda_runtime_client"
# The class that posts responses: the base class in awslambdaric 3 and later, the client
# itself before.
RUNTIME_CLIENT_CLASSES = ("BaseLambdaRuntimeClient", "LambdaRuntimeClient")
POSTS = ("post_invocation_result", "post_invocation_error")
NEXT = "wait_next_invocation"
# Left of the invocation's time for posting its response after our flush.
DEADLINE_MARGIN_SECONDS = 0.2

_invocation = threading.local()  # deadline (epoch seconds) of the invocation this thread serves
_timeout_reported = False


class AWSLambdaInstrumentor(BaseInstrumentor):
    """Loaded when the program imports ``awslambdaric`` (see entry_points.txt)."""

    def instrumentation_dependencies(self):
        # No distribution check: the managed runtimes ship awslambdaric without its metadata.
        # What we hook is checked on the module itself (``hook_runtime_client``).
        return ()

    def _instrument(self, **kwargs) -> None:
        import wrapt

        wrapt.register_post_import_hook(hook_runtime_client, RUNTIME_CLIENT_MODULE)

    def _uninstrument(self, **kwargs) -> None:
        pass  # the runtime client lives as long as the process


def hook_runtime_client(module) -> None:
    """Flush before each response or error the runtime client posts. A client whose internals
    changed is left alone, with one line saying what that means."""
    try:
        import wrapt

        hooked = False
        for class_name in RUNTIME_CLIENT_CLASSES:
            cls = getattr(module, class_name, None)
            if cls is None:
                continue
            for name in POSTS:
                if callable(cls.__dict__.get(name)):
                    wrapt.wrap_function_wrapper(cls, name, _flush_then_post)
                    hooked = True
            if callable(cls.__dict__.get(NEXT)):
                wrapt.wrap_function_wrapper(cls, NEXT, _remember_deadline)
        if hooked:
            logger.debug("posthog-instrument: AWS Lambda: events are delivered before each invocation's response")
            return
    except Exception:
        logger.debug("posthog-instrument: could not hook the Lambda runtime client", exc_info=True)
    config.say(
        f"this Lambda runtime client ({_version()}) has no {' or '.join(POSTS)} to hook, so events are "
        "not delivered after each invocation, only when the process ends; they may arrive late or be lost."
    )


def _version() -> str:
    try:
        import awslambdaric

        return f"awslambdaric {getattr(awslambdaric, '__version__', 'of unknown version')}"
    except Exception:
        return "awslambdaric of unknown version"


def _remember_deadline(wrapped, instance, args, kwargs):
    request = wrapped(*args, **kwargs)
    try:
        _invocation.deadline = int(request.deadline_time_in_ms) / 1000.0
    except Exception:
        _invocation.deadline = None
    return request


def _flush_then_post(wrapped, instance, args, kwargs):
    deliver_pending()
    return wrapped(*args, **kwargs)


def deliver_pending() -> None:
    """Deliver the events queued so far, within POSTHOG_FLUSH_TIMEOUT and the invocation's
    deadline. Never raises."""
    global _timeout_reported
    try:
        processor = lifecycle.current_processor()
        if processor is None or not processor.has_pending():
            return
        timeout = processor.flush_timeout
        deadline = getattr(_invocation, "deadline", None)
        if deadline is not None:
            timeout = min(timeout, deadline - time.time() - DEADLINE_MARGIN_SECONDS)
        delivered = timeout > 0 and processor.force_flush(int(timeout * 1000))
        if not delivered and not _timeout_reported:
            _timeout_reported = True
            config.say(
                "events of this invocation were not delivered to PostHog within "
                f"{timeout if timeout > 0 else 0:.1f} s (POSTHOG_FLUSH_TIMEOUT, or the invocation's time "
                "left); the response is returned now, and they are sent with a later invocation "
                "(or lost, if Lambda ends this environment first)."
            )
    except Exception:
        logger.debug("posthog-instrument: flush before the Lambda response failed", exc_info=True)
