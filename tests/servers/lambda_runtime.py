"""A loopback stand-in for the AWS Lambda Runtime API, which a runtime client polls for work.

The runtime (``awslambdaric``) is started with ``AWS_LAMBDA_RUNTIME_API=<api_address>``. It asks
``GET /2018-06-01/runtime/invocation/next`` for an invocation, which this server answers once
one was queued with ``invoke`` (until then the request waits, as Lambda's does between
invocations: the process stays idle), and reports the outcome with
``POST /2018-06-01/runtime/invocation/<id>/response`` or ``.../<id>/error`` (both answered 202).
A failure to load the handler is posted to ``/2018-06-01/runtime/init/error``.

At the moment each outcome arrives, the server calls ``observe()`` (given by the test: for
example the number of events PostHog's stand-in had received by then) and keeps its answer
with the outcome, so a test can tell what had happened before the response was returned.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ._http import BaseHandler, LoopbackServer

PREFIX = "/2018-06-01/runtime"
_OUTCOME = re.compile(rf"^{PREFIX}/invocation/(?P<id>[^/]+)/(?P<kind>response|error)$")
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:test-function"


@dataclass
class Outcome:
    kind: str  # "response" or "error"
    body: Any  # the posted JSON (or text, if it is not JSON)
    headers: dict
    observed: Any  # what ``observe()`` returned as the outcome arrived


@dataclass
class Invocation:
    request_id: str
    event: Any
    timeout_seconds: float
    outcome: Optional[Outcome] = None
    delivered: bool = False  # handed to the runtime by /next


@dataclass
class _State:
    queued: deque = field(default_factory=deque)
    by_id: dict = field(default_factory=dict)
    init_errors: list = field(default_factory=list)


class FakeLambdaRuntime(LoopbackServer):
    def __init__(self, observe: Callable[[], Any] = lambda: None) -> None:
        super().__init__()
        self.handler_class = _RuntimeAPIHandler
        self.observe = observe
        self._cond = threading.Condition()
        self._state = _State()

    @property
    def api_address(self) -> str:
        """``127.0.0.1:PORT``: the value of ``AWS_LAMBDA_RUNTIME_API``."""
        return f"127.0.0.1:{self.port}"

    def invoke(self, event: Any, timeout_seconds: float = 60.0) -> str:
        """Queue an invocation; returns its request id."""
        invocation = Invocation(str(uuid.uuid4()), event, timeout_seconds)
        with self._cond:
            self._state.queued.append(invocation)
            self._state.by_id[invocation.request_id] = invocation
            self._cond.notify_all()
        return invocation.request_id

    def wait_for_outcome(self, request_id: str, timeout: float = 30.0) -> Outcome:
        deadline = time.monotonic() + timeout
        with self._cond:
            invocation = self._state.by_id[request_id]
            while invocation.outcome is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._state.init_errors:
                    raise AssertionError(
                        f"FakeLambdaRuntime: no outcome for {request_id} after {timeout}s "
                        f"(delivered: {invocation.delivered}; init errors: {self._state.init_errors})"
                    )
                self._cond.wait(min(remaining, 0.1))
            return invocation.outcome

    @property
    def init_errors(self) -> list:
        with self._cond:
            return list(self._state.init_errors)

    # -- used by the handler ---------------------------------------------------------------

    def _next_invocation(self) -> Optional[Invocation]:
        """The next queued invocation; waits for one, or returns None once stopping."""
        with self._cond:
            while not self._state.queued:
                if self.stopping.is_set():
                    return None
                self._cond.wait(0.1)
            invocation = self._state.queued.popleft()
            invocation.delivered = True
            return invocation

    def _record_outcome(self, request_id: str, outcome: Outcome) -> bool:
        with self._cond:
            invocation = self._state.by_id.get(request_id)
            if invocation is None or invocation.outcome is not None:
                return False
            invocation.outcome = outcome
            self._cond.notify_all()
            return True

    def _record_init_error(self, body: Any) -> None:
        with self._cond:
            self._state.init_errors.append(body)
            self._cond.notify_all()


class _RuntimeAPIHandler(BaseHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        path, _ = self.split_path()
        if path != f"{PREFIX}/invocation/next":
            self.send_json(404, {"errorMessage": f"unknown path {path}"})
            return
        invocation = self.owner._next_invocation()
        if invocation is None:
            self.close_connection = True
            return  # stopping: the runtime's request ends without an answer
        deadline_ms = int((time.time() + invocation.timeout_seconds) * 1000)
        self.send_body(
            200,
            json.dumps(invocation.event).encode(),
            headers={
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                "Lambda-Runtime-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            },
        )

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        path, _ = self.split_path()
        raw = self.read_body()
        observed = self.owner.observe()  # first: what had happened when the outcome arrived
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        if path == f"{PREFIX}/init/error":
            self.owner._record_init_error(body)
            self.send_json(202, {"status": "OK"})
            return
        match = _OUTCOME.match(path)
        if match is None:
            self.send_json(404, {"errorMessage": f"unknown path {path}"})
            return
        outcome = Outcome(match["kind"], body, self.lowered_headers(), observed)
        if not self.owner._record_outcome(match["id"], outcome):
            self.send_json(
                400,
                {
                    "errorMessage": "unknown request id, or its outcome was already posted",
                    "errorType": "InvalidRequestID",
                },
            )
            return
        self.send_json(202, {"status": "OK"})
