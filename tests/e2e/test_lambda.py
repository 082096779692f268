"""AWS Lambda: the real runtime interface client (awslambdaric) runs an unmodified function
against a loopback Runtime API, started through our AWS_LAMBDA_EXEC_WRAPPER as Lambda starts
it (the wrapper gets the runtime's command as its arguments).

Lambda freezes the process once an invocation's response is posted, so what matters is the
order: the Runtime API stand-in notes how many events PostHog's stand-in had received when
each response (or error) arrived, and each invocation's events must already be there. The
export interval is set to a minute, so without a flush per invocation the events of every
invocation but (at best) the first would still be queued.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import posthog_autoinstrument
from tests.conftest import APPS, LAUNCHER, AppRun, clean_env
from tests.servers.lambda_runtime import FakeLambdaRuntime

pytest.importorskip("awslambdaric")

WRAPPER = Path(posthog_autoinstrument.__file__).parent / "aws-lambda-wrapper"
TASK_ROOT = APPS / "lambda_task"  # plays /var/task


class RuntimeProcess:
    def __init__(self, process, stdout, stderr):
        self.process, self._stdout, self._stderr = process, stdout, stderr

    def output(self) -> AppRun:
        self._stdout.seek(0)
        self._stderr.seek(0)
        return AppRun(self.process.poll(), self._stdout.read(), self._stderr.read())


@contextlib.contextmanager
def lambda_function(runtime, handler: str, posthog, fake_openai, launch: str = "wrapper", **env_overrides):
    """Run ``lambda_function.<handler>`` under awslambdaric, polling ``runtime``; killed at the
    end (the runtime client waits for its next invocation forever)."""
    env = clean_env(
        AWS_LAMBDA_RUNTIME_API=runtime.api_address,
        _HANDLER=f"lambda_function.{handler}",
        LAMBDA_TASK_ROOT=str(TASK_ROOT),
        OPENAI_BASE_URL=fake_openai.base_url,
        OPENAI_API_KEY="sk-test-secret-key",
        POSTHOG_API_KEY="phc_test_project_token",
        POSTHOG_HOST=posthog.host,
        POSTHOG_EXPORT_INTERVAL="60",
    )
    env.update(env_overrides)
    command = [sys.executable, "-m", "awslambdaric", f"lambda_function.{handler}"]
    if launch == "wrapper":
        command = [str(WRAPPER), *command]  # what Lambda runs with AWS_LAMBDA_EXEC_WRAPPER set
    elif launch == "launcher":
        command = [LAUNCHER, *command]  # a container image's entry point
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            command, env=env, cwd=TASK_ROOT, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, text=True
        )
        try:
            yield RuntimeProcess(process, stdout, stderr)
        finally:
            process.kill()
            process.wait()


@pytest.fixture
def runtime(posthog):
    with FakeLambdaRuntime(observe=lambda: len(posthog.spans)) as server:
        yield server


def invoke(runtime, process, event, timeout_seconds: float = 60.0):
    """One invocation, waited for; a runtime that died says why."""
    request_id = runtime.invoke(event, timeout_seconds)
    try:
        return request_id, runtime.wait_for_outcome(request_id)
    except AssertionError as exc:
        output = process.output()
        raise AssertionError(
            f"{exc}\nexit: {output.returncode}\nstdout:\n{output.stdout}\nstderr:\n{output.stderr}"
        ) from exc


@pytest.mark.parametrize("launch", ["wrapper", "launcher"])
def test_each_invocation_is_delivered_before_its_response(runtime, posthog, fake_openai, launch):
    with lambda_function(runtime, "sync_handler", posthog, fake_openai, launch=launch) as process:
        for number in range(1, 4):
            request_id, outcome = invoke(runtime, process, {"prompt": f"question {number}"})
            assert outcome.kind == "response"
            assert outcome.body == {"reply": fake_openai.reply_text, "request_id": request_id}
            assert outcome.observed == number, f"invocation {number}: {outcome.observed} event(s) before its response"
        assert process.output().stderr.count("posthog-instrument") == 0, process.output().stderr
    prompts = [span["attributes"]["$ai_input"] for span in posthog.spans]
    assert [p[-1]["content"] for p in prompts] == ["question 1", "question 2", "question 3"]


def test_async_handler(runtime, posthog, fake_openai):
    with lambda_function(runtime, "async_handler", posthog, fake_openai) as process:
        for number in range(1, 3):
            request_id, outcome = invoke(runtime, process, {"prompt": f"async {number}"})
            assert outcome.kind == "response", outcome.body
            assert outcome.body == {"reply": fake_openai.reply_text, "request_id": request_id}
            assert outcome.observed == number
    assert all(span["attributes"]["$ai_http_status"] == 200 for span in posthog.spans)


def test_streamed_completion(runtime, posthog, fake_openai):
    with lambda_function(runtime, "streaming_handler", posthog, fake_openai) as process:
        for number in range(1, 3):
            _, outcome = invoke(runtime, process, {"prompt": f"stream {number} chunks=4"})
            assert outcome.kind == "response", outcome.body
            assert outcome.observed == number
            span = posthog.spans[-1]
            assert span["attributes"]["$ai_stream"] is True
            assert span["attributes"]["$ai_output_choices"][0]["content"] == [
                {"type": "text", "text": outcome.body["reply"]}
            ]


def test_a_handler_that_raises(runtime, posthog, fake_openai):
    """The error reaches the Runtime API as it would without us, after the failed call's event
    and the one before it."""
    rate_limited = {"prompt": "first", "fail": "rate_limit"}
    rejected = {"prompt": "second", "order": 7}
    with lambda_function(runtime, "failing_handler", posthog, fake_openai) as process:
        _, first = invoke(runtime, process, rate_limited)
        _, second = invoke(runtime, process, rejected)
    assert first.kind == second.kind == "error"
    assert first.observed == 2  # the successful call and the rate-limited one
    assert second.observed == 3
    assert [span["attributes"]["$ai_http_status"] for span in posthog.spans] == [200, 429, 200]
    assert posthog.spans[1]["attributes"]["error.type"] == "openai.RateLimitError"

    plain = FakeLambdaRuntime()
    with plain, lambda_function(plain, "failing_handler", posthog, fake_openai, launch="none") as process:
        _, plain_first = invoke(plain, process, rate_limited)
        _, plain_second = invoke(plain, process, rejected)
    for key in ("errorType", "errorMessage", "stackTrace"):
        assert second.body[key] == plain_second.body[key]
    for key in ("errorType", "errorMessage"):
        assert first.body[key] == plain_first.body[key]
    # The SDK call's frames include our wrapper's, as in any instrumented program; the
    # handler's frame and the SDK's raise are the same.
    assert first.body["stackTrace"][0] == plain_first.body["stackTrace"][0]
    assert first.body["stackTrace"][-1] == plain_first.body["stackTrace"][-1]
    assert first.body["errorType"] == "RateLimitError"
    assert second.body["errorType"] == "OrderRejected"
    assert len(posthog.spans) == 3  # the run without us sent nothing


def test_a_hanging_posthog_does_not_hold_the_response(runtime, posthog, fake_openai):
    posthog.plan = ["hang"]
    with lambda_function(runtime, "sync_handler", posthog, fake_openai, POSTHOG_FLUSH_TIMEOUT="0.5") as process:
        request_id, outcome = invoke(runtime, process, {"prompt": "anyone there?"})
        assert outcome.kind == "response"
        assert outcome.body == {"reply": fake_openai.reply_text, "request_id": request_id}
        assert outcome.observed == 0
        stderr = process.output().stderr
    assert stderr.count("posthog-instrument:") == 1, stderr
    assert "were not delivered to PostHog within 0.5 s" in stderr


def test_the_flush_never_runs_past_the_invocations_deadline(runtime, posthog, fake_openai):
    """An invocation with almost no time left: its response is posted without waiting for a
    PostHog that never answers, although POSTHOG_FLUSH_TIMEOUT would allow a minute."""
    posthog.plan = ["hang"]
    with lambda_function(runtime, "sync_handler", posthog, fake_openai, POSTHOG_FLUSH_TIMEOUT="60") as process:
        _, outcome = invoke(runtime, process, {"prompt": "in a hurry"}, timeout_seconds=0.1)
        assert outcome.kind == "response"
        assert outcome.observed == 0
        assert "were not delivered to PostHog within 0.0 s" in process.output().stderr


@pytest.mark.parametrize("user_pythonpath", [None, "/opt/user/lib"])
def test_the_wrapper_puts_the_bootstrap_and_the_package_first(user_pythonpath):
    env = clean_env(LAMBDA_TASK_ROOT=str(TASK_ROOT), POSTHOG_AUTOINSTRUMENT_DISABLED="true")
    if user_pythonpath:
        env["PYTHONPATH"] = user_pythonpath
    shown = subprocess.run(
        [str(WRAPPER), sys.executable, "-c", "import os; print(os.environ['PYTHONPATH'])"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    entries = shown.stdout.strip().split(":")
    package = Path(posthog_autoinstrument.__file__).resolve().parent
    assert entries[:2] == [str(package / "bootstrap"), str(package.parent)]
    if user_pythonpath:  # theirs is kept, and the runtime then adds its directories itself
        assert entries[2:] == [user_pythonpath]
    else:  # what the runtime adds only when PYTHONPATH is unset
        assert entries[2] == str(TASK_ROOT)
        assert entries[-1] == "/opt/python"
