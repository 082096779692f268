"""End to end: delivering spans to PostHog when PostHog misbehaves.

Transient failures (503, 429 with Retry-After, dropped connections) are retried until the
span arrives; final rejections (400, 401) are not retried and are reported in one line; an
unreachable or hanging PostHog never changes the app's output or exit code and delays its
exit by at most POSTHOG_FLUSH_TIMEOUT; large volumes go out in requests PostHog accepts; and
a stuck exporter drops spans beyond the queue bound instead of slowing the app.
"""

from __future__ import annotations

import re
import socket
import sys
import time

import pytest

from tests.conftest import APPS, LAUNCHER, clean_env, run
from tests.servers import FakeOpenAI, FakePostHog
from tests.e2e.traces import posthog_input, message_text

APP = str(APPS / "llm_app.py")
REPLY = "'Hello from fake OpenAI'"
ONE_CALL_STDOUT = f"main: calls=1 reply={REPLY} tokens=18\ndone\n"
FLUSH_TIMEOUT = 1.0
# Scheduling noise allowed on top of the flush timeout. Far below the 10 s export timeout and
# the 30 s Retry-After that an unbounded exit would wait for.
EXIT_SLACK = 1.0
SLACK = 1.5


def app_env(openai_url: str, posthog_host: str, **overrides: str) -> dict:
    env = clean_env(
        OPENAI_BASE_URL=openai_url,
        OPENAI_API_KEY="sk-test-secret-key",
        POSTHOG_API_KEY="phc_test_project_token",
        POSTHOG_HOST=posthog_host,
        POSTHOG_EXPORT_INTERVAL="0.05",
    )
    env.update(overrides)
    return env


class TimedRun:
    """An app run with its wall time, and (with ``--finish-time``) how long exit took."""

    def __init__(self, command: list, env: dict):
        started = time.monotonic()
        result = run(command, env)
        ended_at = time.time()
        self.elapsed = time.monotonic() - started
        self.returncode, self.stdout, self.stderr = result.returncode, result.stdout, result.stderr
        finished = re.search(r"^finished at ([0-9.]+)$", result.stderr, re.M)
        self.exit_delay = ended_at - float(finished.group(1)) if finished else None
        self.spans: list = []


def record_arrival_times(server: FakePostHog) -> None:
    """Stamp each request with the monotonic time it arrived (the stand-in does not)."""
    add_request = server._add_request

    def stamped(record: dict) -> None:
        record["arrived"] = time.monotonic()
        add_request(record)

    server._add_request = stamped


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def user_prompts(posthog) -> list:
    return [message_text(posthog_input(s)[0]) for s in posthog.spans]


# ---------------------------------------------------------------------------
# Retries
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plan, statuses",
    [
        (["503", "503", "200"], [503, 503, 200]),
        (["close", "200"], [None, 200]),  # connection dropped without a response
    ],
)
def test_transient_failures_are_retried_until_the_span_arrives(fake_openai, posthog, plan, statuses):
    posthog.plan = plan
    # A generous flush timeout: this test is about retrying, not about the exit bound.
    result = run([LAUNCHER, "python", APP], app_env(fake_openai.base_url, posthog.host, POSTHOG_FLUSH_TIMEOUT="10"))
    assert result.returncode == 0
    assert result.stdout == ONE_CALL_STDOUT
    assert result.stderr == ""  # recovered: nothing to report
    assert [r["status"] for r in posthog.requests] == statuses
    assert len({r["raw"] for r in posthog.requests}) == 1  # the same body each time
    assert user_prompts(posthog) == ["hello from main"]
    assert posthog.rejections == []


def test_retry_after_is_honoured(fake_openai, posthog):
    record_arrival_times(posthog)
    posthog.plan = ["429:retry-after=1", "200"]
    result = run([LAUNCHER, "python", APP], app_env(fake_openai.base_url, posthog.host, POSTHOG_FLUSH_TIMEOUT="10"))
    assert result.returncode == 0
    assert result.stdout == ONE_CALL_STDOUT
    assert result.stderr == ""
    first, second = posthog.requests
    assert (first["status"], second["status"]) == (429, 200)
    # Without Retry-After the first backoff is 0.5 s (+-10%); with it, 1 s.
    assert second["arrived"] - first["arrived"] >= 0.95
    assert user_prompts(posthog) == ["hello from main"]


@pytest.mark.parametrize(
    "status, says",
    [
        (400, "injected 400"),
        (401, "POSTHOG_API_KEY"),
    ],
)
def test_final_rejection_is_not_retried_and_reported_once(fake_openai, posthog, status, says):
    posthog.plan = [str(status)]
    result = run([LAUNCHER, "python", APP, "--exit", "2"], app_env(fake_openai.base_url, posthog.host))
    assert result.returncode == 2
    assert result.stdout == ONE_CALL_STDOUT
    assert len(posthog.requests) == 1, posthog.requests  # tried once
    (request,) = posthog.requests
    assert request["status"] == status
    assert posthog.spans == []
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith(f"posthog-instrument: PostHog did not accept LLM events ({status}")
    assert says in lines[0]
    assert lines[1] == "posthog-instrument: 1 LLM event(s) could not be delivered to PostHog (0 delivered)."


# ---------------------------------------------------------------------------
# PostHog down or stuck at exit
# ---------------------------------------------------------------------------

OUTAGES = {
    "hang": lambda posthog: (posthog.host, ["hang"]),
    "connection refused": lambda posthog: (f"http://127.0.0.1:{unused_port()}", []),
    "retry-after beyond the flush timeout": lambda posthog: (posthog.host, ["429:retry-after=30"]),
}


@pytest.fixture(scope="module")
def outage_runs():
    """The app plainly, instrumented with a healthy PostHog, and once per outage; shared below."""
    # --linger: the app works on after its call, so the export is under way when it exits.
    command = [APP, "--exit", "3", "--linger", "0.5", "--finish-time"]
    runs = {}
    with FakeOpenAI() as openai_server:
        plain_env = clean_env(OPENAI_BASE_URL=openai_server.base_url, OPENAI_API_KEY="sk-test-secret-key")
        runs["plain"] = TimedRun([sys.executable, *command], plain_env)
        for name, setup in [("healthy", lambda posthog: (posthog.host, [])), *OUTAGES.items()]:
            with FakePostHog() as posthog:
                host, posthog.plan = setup(posthog)
                env = app_env(openai_server.base_url, host, POSTHOG_FLUSH_TIMEOUT=str(FLUSH_TIMEOUT))
                runs[name] = TimedRun([LAUNCHER, "python", *command], env)
                runs[name].spans = posthog.spans
    return runs


@pytest.mark.parametrize("outage", list(OUTAGES))
def test_outage_does_not_change_the_app_or_delay_its_exit(outage_runs, outage):
    plain, healthy, broken = outage_runs["plain"], outage_runs["healthy"], outage_runs[outage]
    assert plain.returncode == healthy.returncode == broken.returncode == 3
    assert plain.stdout == healthy.stdout == broken.stdout == ONE_CALL_STDOUT
    assert len(healthy.spans) == 1 and broken.spans == []
    # From the end of the app's main() to process exit: the flush timeout bounds the wait,
    # not the 10 s export timeout nor the 30 s Retry-After.
    assert broken.exit_delay < healthy.exit_delay + FLUSH_TIMEOUT + EXIT_SLACK, (broken.exit_delay, healthy.exit_delay)
    if outage == "hang":  # it did wait for the stuck export, so the check above bites
        assert broken.exit_delay > FLUSH_TIMEOUT * 0.9
    # (A refused connection or a Retry-After past the bound gives up as soon as the next retry
    # could not finish in time: exit is then quicker than the bound, which is the point.)
    # And the whole run, against the plain run. Loose, because start-up time swings with the load
    # of a shared machine; an exit waiting for the export timeout would still be well past it.
    assert broken.elapsed < 3 * plain.elapsed + FLUSH_TIMEOUT + SLACK, (broken.elapsed, plain.elapsed)


@pytest.mark.parametrize("outage", list(OUTAGES))
def test_outage_at_exit_is_reported(outage_runs, outage):
    stderr = outage_runs[outage].stderr
    assert (
        "posthog-instrument: 1 LLM event(s) could not be delivered to PostHog (0 delivered)." in stderr.splitlines()
    ), stderr


# ---------------------------------------------------------------------------
# Volume and back-pressure
# ---------------------------------------------------------------------------


def test_many_calls_are_delivered_in_requests_of_at_most_100_spans(fake_openai, posthog):
    # PostHog is slow to answer the first request, so the other spans pile up behind it and
    # must be split at PostHog's limit of 100 spans per request.
    posthog.plan = ["slow:3000"]
    env = app_env(fake_openai.base_url, posthog.host, POSTHOG_FLUSH_TIMEOUT="10")
    result = run([LAUNCHER, "python", APP, "--calls", "150", "--threads", "10"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"main: calls=150 reply={REPLY} tokens=2700\ndone\n"
    assert result.stderr == ""
    assert posthog.rejections == []  # the stand-in refuses more than 100 spans per request
    counts = [r["span_count"] for r in posthog.requests]
    assert all(r["status"] == 200 for r in posthog.requests)
    assert sum(counts) == 150
    assert max(counts) == 100, counts
    spans = posthog.spans
    assert len({s["span_id"] for s in spans}) == 150
    assert {s["name"] for s in spans} == {"chat gpt-4o-mini"}
    assert sum(s["attributes"]["gen_ai.usage.output_tokens"] for s in spans) == 150 * 7


CALLS_TOOK = re.compile(r"^calls took ([0-9.]+) s$", re.M)
UNDELIVERED = re.compile(
    r"^posthog-instrument: (\d+) LLM event\(s\) could not be delivered to PostHog "
    r"\((\d+) delivered\)\.$",
    re.M,
)


@pytest.fixture(scope="module")
def queue_runs():
    """50 calls with a healthy PostHog, and with a hanging one and POSTHOG_MAX_QUEUE_SIZE=5."""
    command = [LAUNCHER, "python", APP, "--calls", "50", "--threads", "5", "--timing", "--finish-time"]
    runs = {}
    with FakeOpenAI() as openai_server:
        for name, plan, extra in [("healthy", [], {}), ("hung", ["hang"], {"POSTHOG_MAX_QUEUE_SIZE": "5"})]:
            with FakePostHog() as posthog:
                posthog.plan = plan
                env = app_env(openai_server.base_url, posthog.host, POSTHOG_FLUSH_TIMEOUT=str(FLUSH_TIMEOUT), **extra)
                runs[name] = TimedRun(command, env)
                runs[name].spans = posthog.spans
    return runs


def test_stuck_export_drops_beyond_the_queue_bound_without_slowing_the_app(queue_runs):
    healthy, hung = queue_runs["healthy"], queue_runs["hung"]
    assert healthy.returncode == hung.returncode == 0
    assert healthy.stdout == hung.stdout == f"main: calls=50 reply={REPLY} tokens=900\ndone\n"
    assert len(healthy.spans) == 50 and hung.spans == []

    # The app's own work is not slowed by the stuck export (generous: timings on a shared machine).
    healthy_calls = float(CALLS_TOOK.search(healthy.stderr).group(1))
    hung_calls = float(CALLS_TOOK.search(hung.stderr).group(1))
    assert hung_calls < 2 * healthy_calls + 0.5, (hung_calls, healthy_calls)
    # ... and its exit waits at most the flush timeout for it.
    assert hung.exit_delay < healthy.exit_delay + FLUSH_TIMEOUT + EXIT_SLACK, (hung.exit_delay, healthy.exit_delay)

    healthy_report = [line for line in healthy.stderr.splitlines() if line.startswith("posthog-instrument")]
    assert healthy_report == []
    falling_behind = [line for line in hung.stderr.splitlines() if "falling behind" in line]
    assert falling_behind == [
        "posthog-instrument: PostHog export is falling behind; dropping LLM events beyond "
        "POSTHOG_MAX_QUEUE_SIZE=5 (counted, reported again at exit)."
    ]
    (report,) = UNDELIVERED.findall(hung.stderr)
    lost, delivered = map(int, report)
    assert delivered == 0
    assert 45 <= lost <= 50  # at least everything beyond the 5 queued


def test_exit_report_counts_every_undelivered_event(queue_runs):
    (report,) = UNDELIVERED.findall(queue_runs["hung"].stderr)
    assert report == ("50", "0"), queue_runs["hung"].stderr
