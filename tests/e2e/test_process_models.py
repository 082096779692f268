"""End to end: every way a Python app runs its work in several processes still delivers its spans.

Each scenario runs an unmodified app under ``posthog-instrument`` (gunicorn with sync and uvicorn
workers, with and without ``--preload``; uvicorn with ``--workers`` and ``--reload``; Django's
autoreloading ``runserver``; a Celery prefork worker; ``multiprocessing`` with fork, spawn and
forkserver), makes LLM calls in the worker processes, stops it the way it is stopped in real
life, and asserts on what the PostHog stand-in received: every call exactly once, made by the
process that served it.

Scenarios run with ``POSTHOG_EXPORT_INTERVAL=60``. A process exports its first span at once (that
starts its export thread), so each worker makes one "startup" call when it starts and the test
waits for those; every later call then stays queued, and arrives only if the process that made it
flushes on its way out (a gunicorn worker stopped by its master, a uvicorn or Django worker
replaced by its reloader, a Celery child at warm shutdown, a ``multiprocessing`` child ending in
``os._exit``). Signals sent to a plain ``python app.py`` (``docker stop``, Ctrl+C) must flush too,
leave the exit status exactly as it is without instrumentation, and the app's own signal handlers
keep precedence. (Plain ``subprocess`` children are covered by ``test_launcher.py``.)

Scenarios are slow mostly because each process imports the OpenAI SDK, so the ones the selected
tests need are started together, once per module, each with its own PostHog stand-in.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import httpx
import pytest

from tests.conftest import APPS, LAUNCHER, clean_env
from tests.servers import FakeOpenAI, FakePostHog
from tests.e2e.traces import posthog_input, message_text

pytestmark = pytest.mark.process_models

REPLY = "Hello from fake OpenAI"
LONG_INTERVAL = "60"  # nothing is exported while the app runs: only flushing on exit delivers
STARTUP_TIMEOUT = 90.0
STOP_TIMEOUT = 45.0


# ---------------------------------------------------------------------------
# Running one scenario
# ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Outcome:
    """What one scenario produced: the app's exit, its output, and what PostHog received."""

    returncode: Optional[int]
    output: str
    spans: list
    rejections: list
    responses: list = field(default_factory=list)  # JSON bodies the app answered
    extra: dict = field(default_factory=dict)

    def prompts(self) -> list:
        return sorted(prompt_of(span) for span in self.spans)

    def tail(self) -> str:
        return self.output[-8000:]


def prompt_of(span: dict) -> str:
    return message_text(posthog_input(span)[-1])


class App:
    """An instrumented process (and its children) with output captured to a file."""

    def __init__(self, name: str, command: list, env: dict, cwd: str, instrumented: bool = True):
        self.name = name
        self.out = tempfile.TemporaryFile("w+")
        if instrumented:
            command = [LAUNCHER, *command]
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdout=self.out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.started = time.monotonic()

    def output(self) -> str:
        self.out.seek(0)
        return self.out.read()

    def wait_for_output(self, text: str, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(
            f"{self.name}: {text!r} not printed (exit {self.process.poll()}):\n{self.output()[-3000:]}"
        )

    def wait_listening(self, port: int, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.process.returncode}:\n{self.output()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"{self.name} did not listen on {port} within {timeout}s:\n{self.output()[-3000:]}")

    def signal(self, signum: int, group: bool = False) -> float:
        """Send a signal to the process (or, like a terminal's Ctrl+C, its whole group)."""
        if group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)
        return time.monotonic()

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not exit within {timeout}s:\n{self.output()[-3000:]}") from None

    def close(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # the app and anything it left behind
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        self.out.close()


def app_env(openai_url: str, posthog: FakePostHog, **overrides: str) -> dict:
    env = clean_env(
        OPENAI_BASE_URL=openai_url,
        OPENAI_API_KEY="sk-test-secret-key",
        POSTHOG_API_KEY="phc_test_project_token",
        POSTHOG_HOST=posthog.host,
        POSTHOG_EXPORT_INTERVAL=LONG_INTERVAL,
        POSTHOG_FLUSH_TIMEOUT="10",  # generous: the machine may be busy; the bound is tested elsewhere
    )
    env.update(overrides)
    return env


def ask(port: int, tag: str) -> dict:
    response = httpx.get(
        f"http://127.0.0.1:{port}/chat",
        params={"tag": tag},
        headers={"X-POSTHOG-DISTINCT-ID": f"user-{tag}"},
        timeout=60,
    )
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


def ask_concurrently(port: int, tags: list) -> list:
    with ThreadPoolExecutor(len(tags)) as pool:
        return list(pool.map(lambda tag: ask(port, tag), tags))


def serving_pid(port: int) -> Optional[int]:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/pid", timeout=5).json()["pid"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def touch(path: Path) -> None:
    """Change a source file the way an editor saving it does (new mtime)."""
    future = time.time() + 5
    os.utime(path, (future, future))


def wait_for_new_worker(port: int, old_pid: int, timeout: float = STARTUP_TIMEOUT) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = serving_pid(port)
        if pid is not None and pid != old_pid:
            return pid
        time.sleep(0.2)
    raise AssertionError(f"no new worker replaced pid {old_pid} within {timeout}s")


def copy_app(files: list) -> str:
    """A private copy of the app files, for servers that watch (and are made to reload) them."""
    directory = tempfile.mkdtemp(prefix="pm-app-")
    for name in files:
        shutil.copy(APPS / name, directory)
    return directory


class Scenario:
    """A scenario runs on its own thread with its own PostHog stand-in; returns an Outcome."""

    def __init__(self, openai_url: str):
        self.openai_url = openai_url
        self.posthog = FakePostHog().start()
        self.apps: list = []

    def start(self, name: str, command: list, cwd: str = str(APPS), instrumented: bool = True, **env: str) -> App:
        app = App(name, command, app_env(self.openai_url, self.posthog, **env), cwd, instrumented)
        self.apps.append(app)
        return app

    def outcome(self, app: App, returncode: Optional[int], **kwargs) -> Outcome:
        return Outcome(returncode, app.output(), self.posthog.spans, self.posthog.rejections, **kwargs)

    def close(self) -> None:
        for app in self.apps:
            app.close()
        self.posthog.stop()


# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------


def web_server(
    command: list,
    tags: list,
    starting: int,
    stop: int = signal.SIGTERM,
    group: bool = False,
    cwd: Optional[Callable] = None,
    reload_file: Optional[str] = None,
) -> Callable:
    """Start a server, ask it ``tags`` (then reload it and ask again), stop it, see what arrived.

    Each worker makes one "startup" call as it starts (``starting`` of them in all), which also
    starts its export thread; the test waits for those, so every call made for a request after
    that is still queued when the server is stopped, and arrives only if the worker flushes.
    """

    def scenario(s: Scenario) -> Outcome:
        port = free_port()
        directory = cwd() if cwd else str(APPS)
        app = s.start(command[0], [part.format(port=port) for part in command], cwd=directory)
        app.wait_listening(port)
        s.posthog.wait_for_spans(starting, timeout=STARTUP_TIMEOUT)
        time.sleep(0.3)
        responses = ask_concurrently(port, tags)
        extra = {"server_pid": app.process.pid}
        if reload_file:
            extra["before_reload"] = serving_pid(port)
            touch(Path(directory) / reload_file)
            extra["after_reload"] = wait_for_new_worker(port, extra["before_reload"])
            # The replaced worker flushed its queued spans as it was stopped; the new one said hello.
            try:
                s.posthog.wait_for_spans(starting + len(tags) + 1, timeout=15)
            except AssertionError:
                pass
            extra["prompts_after_reload"] = sorted(prompt_of(span) for span in s.posthog.spans)
            responses += ask_concurrently(port, [f"{tag}-reloaded" for tag in tags])
        time.sleep(0.3)
        extra["prompts_before_stop"] = sorted(prompt_of(span) for span in s.posthog.spans)
        app.signal(stop, group=group)
        return s.outcome(app, app.wait(), responses=responses, extra=extra)

    return scenario


def celery_worker(s: Scenario) -> Outcome:
    data = tempfile.mkdtemp(prefix="pm-celery-")
    worker = s.start(
        "celery",
        [
            "celery",
            "-A",
            "pm_celery_app",
            "worker",
            "--pool=prefork",
            "--concurrency=2",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        PM_CELERY_DIR=data,
        PYTHONPATH=str(APPS),
    )
    worker.wait_for_output("ready.")
    s.posthog.wait_for_spans(2, timeout=STARTUP_TIMEOUT)  # each prefork child's startup call
    time.sleep(0.3)
    producer = s.start(
        "producer",
        [sys.executable, "pm_celery_app.py", "send", "celery-1", "celery-2", "celery-3"],
        instrumented=False,
        PM_CELERY_DIR=data,
    )
    producer_code = producer.wait(90)
    time.sleep(0.3)
    prompts_before_stop = sorted(prompt_of(span) for span in s.posthog.spans)
    worker.signal(signal.SIGTERM)  # warm shutdown, as `docker stop` or systemd does
    outcome = s.outcome(
        worker,
        worker.wait(),
        extra={
            "producer": (producer_code, producer.output()),
            "worker_pid": worker.process.pid,
            "prompts_before_stop": prompts_before_stop,
        },
    )
    shutil.rmtree(data, ignore_errors=True)
    return outcome


def multiprocessing_app(method: str) -> Callable:
    def scenario(s: Scenario) -> Outcome:
        app = s.start(method, ["python", "pm_multiprocessing_app.py", method])
        return s.outcome(app, app.wait(120))

    return scenario


def pool_terminated(method: str) -> Callable:
    def scenario(s: Scenario) -> Outcome:
        app = s.start(method, ["python", "pm_pool_terminate_app.py", method])
        return s.outcome(app, app.wait(150))

    return scenario


def sigterm_to_blocked_main_thread(target: str) -> Callable:
    """SIGTERM sent to the process while its main thread is blocked in a lock, the way the kernel
    delivers it when it picks another thread (``target``: one of ours, or the app's own): ``kill()``
    of another thread's id is still a signal to the whole process, offered to that thread first."""

    def scenario(s: Scenario) -> Outcome:
        return _sigterm_to_blocked_main_thread(s, target)

    return scenario


def _sigterm_to_blocked_main_thread(s: Scenario, target: str) -> Outcome:
    app = s.start("blocked", ["python", "pm_pool_terminate_app.py", "blocked"])
    app.wait_for_output("warm")
    s.posthog.wait_for_spans(1, timeout=30)
    time.sleep(0.3)
    app.process.stdin.write("go\n")
    app.process.stdin.flush()
    app.wait_for_output("threads")
    time.sleep(0.3)  # the main thread is blocked in its lock by now
    line = next(line for line in app.output().splitlines() if line.startswith("threads "))
    main, helper, *ours = [int(tid) for tid in line.split()[1:]]
    spans_before_signal = len(s.posthog.spans)
    os.kill(helper if target == "app" else ours[0], signal.SIGTERM)
    try:
        code = app.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        code = None  # never woke up to run its handler: neither flushed nor died
    return s.outcome(app, code, extra={"ours": ours, "spans_before_signal": spans_before_signal})


def signalled(handler: str, signum: int, group: bool = False, hang: bool = False, **env: str) -> Callable:
    """``pm_signal_app.py`` plainly and instrumented, side by side, signalled once "ready".

    The instrumented app's first span is exported at once (it starts the export thread); the
    test waits for it before letting the app make its second call, which then stays queued
    until the signal arrives.
    """

    def scenario(s: Scenario) -> Outcome:
        command = ["python", "pm_signal_app.py", "--handler", handler]
        plain = s.start("plain", [sys.executable, *command[1:]], instrumented=False)
        app = s.start("instrumented", command, **env)
        for each in (plain, app):
            each.wait_for_output("warm")
        if hang:
            s.posthog.wait_for_requests(1, timeout=30)  # the export of the first span is stuck
        else:
            s.posthog.wait_for_spans(1, timeout=30)
        time.sleep(0.3)
        for each in (plain, app):
            each.process.stdin.write("go\n")
            each.process.stdin.flush()
        for each in (plain, app):
            each.wait_for_output("ready")
        time.sleep(0.3)
        spans_before_signal = len(s.posthog.spans)
        plain.signal(signum, group)
        sent = app.signal(signum, group)
        code = app.wait()
        exit_delay = time.monotonic() - sent
        plain_code = plain.wait()
        return s.outcome(
            app,
            code,
            extra={
                "plain": (plain_code, plain.output()),
                "exit_delay": exit_delay,
                "requests": s.posthog.requests,
                "spans_before_signal": spans_before_signal,
            },
        )

    return scenario


def ignored_sigterm(s: Scenario) -> Outcome:
    app = s.start("ignore", ["python", "pm_signal_app.py", "--handler", "ignore"])
    app.wait_for_output("warm")
    s.posthog.wait_for_spans(1, timeout=30)
    time.sleep(0.3)
    app.process.stdin.write("go\n")
    app.process.stdin.flush()
    app.wait_for_output("ready")
    app.signal(signal.SIGTERM)
    time.sleep(1.0)
    still_running = app.process.poll() is None
    spans_while_running = len(s.posthog.spans)
    app.process.stdin.close()  # the app's own way of ending
    return s.outcome(
        app, app.wait(), extra={"still_running": still_running, "spans_while_running": spans_while_running}
    )


GUNICORN = ["gunicorn", "--bind", "127.0.0.1:{port}", "--workers", "2", "--graceful-timeout", "20", "--timeout", "120"]
GUNICORN_SYNC = [*GUNICORN, "--config", "pm_gunicorn_conf.py"]
GUNICORN_UVICORN = [*GUNICORN, "--worker-class", "uvicorn.workers.UvicornWorker"]
UVICORN = ["uvicorn", "pm_asgi_app:app", "--host", "127.0.0.1", "--port", "{port}", "--no-access-log"]

SCENARIOS: dict = {
    "gunicorn sync": web_server([*GUNICORN_SYNC, "pm_wsgi_app:application"], ["gs-1", "gs-2", "gs-3"], 2),
    "gunicorn sync --preload": web_server(
        [*GUNICORN_SYNC, "--preload", "pm_wsgi_app:application"], ["gsp-1", "gsp-2", "gsp-3"], 2
    ),
    "gunicorn uvicorn-worker": web_server([*GUNICORN_UVICORN, "pm_asgi_app:app"], ["gu-1", "gu-2", "gu-3"], 2),
    "gunicorn uvicorn-worker --preload": web_server(
        [*GUNICORN_UVICORN, "--preload", "pm_asgi_app:app"], ["gup-1", "gup-2", "gup-3"], 2
    ),
    "uvicorn --workers": web_server([*UVICORN, "--workers", "2"], ["uw-1", "uw-2", "uw-3"], 2),
    "uvicorn --reload": web_server(
        [*UVICORN, "--reload"],
        ["ur-1"],
        1,
        stop=signal.SIGINT,
        group=True,
        cwd=lambda: copy_app(["pm_asgi_app.py"]),
        reload_file="pm_asgi_app.py",
    ),
    # The reloader process loads the file too, so it says hello as well as each server child.
    "django runserver": web_server(
        ["python", "pm_django_app.py", "runserver", "127.0.0.1:{port}"],
        ["dj-1"],
        2,
        stop=signal.SIGINT,
        group=True,
        cwd=lambda: copy_app(["pm_django_app.py"]),
        reload_file="pm_django_app.py",
    ),
    "celery prefork": celery_worker,
    "multiprocessing fork": multiprocessing_app("fork"),
    "multiprocessing spawn": multiprocessing_app("spawn"),
    "multiprocessing forkserver": multiprocessing_app("forkserver"),
    "pool terminate fork": pool_terminated("fork"),
    "pool terminate spawn": pool_terminated("spawn"),
    "pool terminate forkserver": pool_terminated("forkserver"),
    "SIGTERM blocked main thread, to ours": sigterm_to_blocked_main_thread("ours"),
    "SIGTERM blocked main thread, to the app's": sigterm_to_blocked_main_thread("app"),
    "SIGTERM default": signalled("default", signal.SIGTERM),
    "SIGINT default": signalled("default", signal.SIGINT, group=True),
    "SIGTERM app handler": signalled("exit7", signal.SIGTERM),
    "SIGTERM ignored": ignored_sigterm,
    "SIGTERM PostHog hangs": signalled("default", signal.SIGTERM, hang=True, POSTHOG_FLUSH_TIMEOUT="2"),
}


def _selected_scenarios(session, module_file: str) -> list:
    names = []
    for item in session.items:
        if str(getattr(item, "path", "")) != module_file:
            continue
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("scenario") if callspec else None
        if name is None:
            name = SCENARIO_OF_TEST.get(item.originalname)
        if name and name not in names:
            names.append(name)
    return names


@pytest.fixture(scope="module")
def outcomes(request):
    """Run every scenario the selected tests need, concurrently; ``outcomes(name)`` waits for one."""
    hang_plan = {"SIGTERM PostHog hangs": ["hang"]}
    with FakeOpenAI() as openai_server:
        names = _selected_scenarios(request.session, str(request.module.__file__))
        scenarios: dict = {}
        futures: dict = {}
        pool = ThreadPoolExecutor(max(1, len(names)))
        try:
            for name in names:
                scenarios[name] = Scenario(openai_server.base_url)
                scenarios[name].posthog.plan = hang_plan.get(name, [])
                futures[name] = pool.submit(SCENARIOS[name], scenarios[name])
                time.sleep(0.3)  # stagger start-ups a little

            def get(name: str) -> Outcome:
                future: Future = futures[name]
                return future.result(timeout=300)

            yield get
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for scenario in scenarios.values():
                scenario.close()


# ---------------------------------------------------------------------------
# Pre-fork and multi-process web servers
# ---------------------------------------------------------------------------


def calls_by_prompt(outcome: Outcome) -> dict:
    by_prompt: dict = {}
    for span in outcome.spans:
        by_prompt.setdefault(prompt_of(span), []).append(span)
    return by_prompt


def assert_each_call_once_from_its_worker(outcome: Outcome, tags: list, server_pid: int) -> None:
    """Every request's call arrived once, named after the worker that served it, with its person."""
    assert outcome.rejections == []
    by_prompt = calls_by_prompt(outcome)
    duplicated = [prompt for prompt, spans in by_prompt.items() if len(spans) > 1]
    assert duplicated == [], "exported more than once"
    requests = {p: spans[0] for p, spans in by_prompt.items() if not p.startswith("startup ")}
    assert sorted(p.split(" pid=")[0] for p in requests) == sorted(tags), (sorted(by_prompt), outcome.tail())
    served_by = {int(p.split(" pid=")[1]) for p in requests}
    assert served_by == {r["pid"] for r in outcome.responses}
    assert server_pid not in served_by  # the workers made the calls, not the master or reloader
    for prompt, span in requests.items():
        tag = prompt.split(" pid=")[0]
        assert span["name"] == "chat gpt-4o-mini"
        assert span["attributes"]["gen_ai.usage.input_tokens"] == 11
        assert span["attributes"]["posthog.distinct_id"] == f"user-{tag}"  # the request's person, in the worker


def only_startup_calls(prompts: list) -> bool:
    return bool(prompts) and all(prompt.startswith("startup ") for prompt in prompts)


def startup_pids(outcome: Outcome) -> set:
    return {int(p.split(" pid=")[1]) for p in calls_by_prompt(outcome) if p.startswith("startup ")}


GUNICORN_CASES = [
    ("gunicorn sync", ["gs-1", "gs-2", "gs-3"]),
    ("gunicorn sync --preload", ["gsp-1", "gsp-2", "gsp-3"]),
    ("gunicorn uvicorn-worker", ["gu-1", "gu-2", "gu-3"]),
    ("gunicorn uvicorn-worker --preload", ["gup-1", "gup-2", "gup-3"]),
]


@pytest.mark.parametrize("scenario, tags", GUNICORN_CASES)
def test_gunicorn_workers_are_instrumented(outcomes, scenario, tags):
    outcome = outcomes(scenario)
    assert outcome.returncode == 0, outcome.tail()  # SIGTERM is gunicorn's clean stop, as without us
    assert [r["reply"] for r in outcome.responses] == [REPLY] * len(tags)
    assert outcome.rejections == []
    assert all(len(spans) == 1 for spans in calls_by_prompt(outcome).values())
    workers = startup_pids(outcome)
    assert len(workers) == 2, outcome.tail()  # both forked workers made and exported their startup call
    assert outcome.extra["server_pid"] not in workers
    assert "Traceback" not in outcome.output, outcome.tail()
    assert "posthog-instrument" not in outcome.output, outcome.tail()


# Found by this test: gunicorn's UvicornWorker resets SIGTERM to SIG_DFL and uvicorn re-raises the
# signal after its graceful shutdown, so the worker died of it without running atexit and its queued
# spans were lost. Fixed in 24c423b (lifecycle.py flushes in signal.raise_signal before a fatal signal).
@pytest.mark.parametrize("scenario, tags", GUNICORN_CASES)
def test_gunicorn_workers_flush_queued_spans_when_the_master_stops_them(outcomes, scenario, tags):
    outcome = outcomes(scenario)
    # Before the stop, only the workers' startup calls had been exported: the request calls were
    # still queued, and arrive only because the workers flushed them on their way out.
    assert only_startup_calls(outcome.extra["prompts_before_stop"]), outcome.tail()
    assert_each_call_once_from_its_worker(outcome, tags, outcome.extra["server_pid"])


def test_uvicorn_workers_flush_when_the_supervisor_stops_them(outcomes):
    outcome = outcomes("uvicorn --workers")
    tags = ["uw-1", "uw-2", "uw-3"]
    assert [r["reply"] for r in outcome.responses] == [REPLY] * len(tags)
    assert_each_call_once_from_its_worker(outcome, tags, outcome.extra["server_pid"])
    assert len(startup_pids(outcome)) == 2  # both spawned workers are instrumented
    assert only_startup_calls(outcome.extra["prompts_before_stop"])  # the request calls were still queued
    assert "Traceback" not in outcome.output, outcome.tail()
    assert "posthog-instrument" not in outcome.output, outcome.tail()


@pytest.mark.parametrize("scenario, tag", [("uvicorn --reload", "ur-1"), ("django runserver", "dj-1")])
def test_autoreloaded_workers_flush_when_replaced_and_when_stopped(outcomes, scenario, tag):
    outcome = outcomes(scenario)
    extra = outcome.extra
    assert extra["before_reload"] != extra["after_reload"]
    # Nothing is exported on a timer here: the first worker's request call arrived because that
    # worker flushed as the reloader replaced it (and the new worker made its startup call).
    arrived = extra["prompts_after_reload"]
    assert f"{tag} pid={extra['before_reload']}" in arrived, (arrived, outcome.tail())
    assert f"startup pid={extra['after_reload']}" in arrived
    assert_each_call_once_from_its_worker(outcome, [tag, f"{tag}-reloaded"], extra["server_pid"])
    assert {r["pid"] for r in outcome.responses} == {extra["before_reload"], extra["after_reload"]}
    assert {extra["before_reload"], extra["after_reload"]} <= startup_pids(outcome)
    assert "Traceback" not in outcome.output, outcome.tail()


# ---------------------------------------------------------------------------
# Celery prefork workers
# ---------------------------------------------------------------------------


def test_celery_prefork_children_flush_on_warm_shutdown(outcomes):
    outcome = outcomes("celery prefork")
    producer_code, producer_output = outcome.extra["producer"]
    assert producer_code == 0, producer_output + outcome.tail()
    assert producer_output == f"{REPLY}\n" * 3
    assert outcome.returncode == 0, outcome.tail()
    assert outcome.rejections == []
    by_prompt = calls_by_prompt(outcome)
    assert all(len(spans) == 1 for spans in by_prompt.values())
    tasks = sorted(p for p in by_prompt if not p.startswith("startup "))
    assert [p.split(" pid=")[0] for p in tasks] == ["celery-1", "celery-2", "celery-3"], outcome.tail()
    children = startup_pids(outcome)
    assert len(children) >= 2 and outcome.extra["worker_pid"] not in children
    assert {int(p.split(" pid=")[1]) for p in tasks} <= children  # the tasks ran in the prefork children
    assert only_startup_calls(outcome.extra["prompts_before_stop"])  # task calls stayed queued until shutdown
    assert "posthog-instrument" not in outcome.output, outcome.tail()


# ---------------------------------------------------------------------------
# multiprocessing
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["multiprocessing fork", "multiprocessing spawn", "multiprocessing forkserver"])
def test_multiprocessing_children_flush_however_they_end(outcomes, scenario):
    method = scenario.split()[1]
    outcome = outcomes(scenario)
    assert outcome.returncode == 0, outcome.tail()
    # Exactly what the app prints without instrumentation.
    assert outcome.output == (f"returns exitcode=0\nexits_hard exitcode=0\npool [{REPLY!r}]\ndone\n"), outcome.tail()
    assert outcome.rejections == []
    # The parent's calls once each (a fork child does not send the parent's queue again); a child
    # returning normally, a child ending in os._exit, and a pool worker the pool terminates.
    assert sorted(prompt_of(s) for s in outcome.spans) == sorted(
        [f"{method} parent 1", f"{method} parent 2", f"{method} process", f"{method} os._exit", f"{method} pool"]
    )


# Found by these tests: pool workers lost their queued calls, silently, about every second run
# (and sometimes never ended, so the pool waited forever). Our export thread could take the
# SIGTERM, leaving the worker's main thread blocked on the pool's queue lock, so the handler
# never ran; and a worker already exiting (it had got the pool's sentinel) could be terminated
# inside our shutdown, whose lock its SIGTERM handler then held while waiting for the export.
@pytest.mark.parametrize("scenario", ["pool terminate fork", "pool terminate spawn", "pool terminate forkserver"])
def test_pool_workers_terminated_idle_or_busy_deliver_every_call(outcomes, scenario):
    method = scenario.split()[-1]
    outcome = outcomes(scenario)
    assert outcome.returncode == 0, outcome.tail()
    idle = [f"{method} idle {n}" for n in range(4)]
    busy = [f"{method} busy {n}" for n in range(2)]
    # Exactly what the app prints without instrumentation: nothing lost, so nothing reported.
    assert outcome.output == f"idle {idle!r}\nbusy {busy!r}\ndone\n", outcome.tail()
    assert outcome.rejections == []
    # Two workers per pool say hello (exported at once); every task's call was still queued
    # when terminate() sent SIGTERM to its worker, waiting for more work or inside its task.
    assert sorted(prompt_of(s).split(" pid=")[0] for s in outcome.spans) == sorted(
        [f"{method} startup"] * 4 + idle + busy
    )


# The kernel hands a process's signal to any thread not blocking it. Taken by our thread (before:
# the process never ended), or by one of the app's while the main thread waits (before: the same),
# SIGTERM still makes the process flush and die of it, as it dies of it without us.
@pytest.mark.parametrize(
    "scenario", ["SIGTERM blocked main thread, to ours", "SIGTERM blocked main thread, to the app's"]
)
def test_sigterm_reaches_a_main_thread_blocked_in_a_lock(outcomes, scenario):
    outcome = outcomes(scenario)
    assert outcome.returncode == -signal.SIGTERM, outcome.tail()  # as without instrumentation
    assert len(outcome.extra["ours"]) == 2  # our export thread and our signal watch
    assert outcome.extra["spans_before_signal"] == 1
    assert sorted(prompt_of(s) for s in outcome.spans) == ["blocked pending", "blocked warm"]
    assert "posthog-instrument" not in outcome.output, outcome.tail()


# ---------------------------------------------------------------------------
# Signals to a plain `python app.py`
# ---------------------------------------------------------------------------


def test_sigterm_flushes_then_dies_of_sigterm_like_without_instrumentation(outcomes):
    outcome = outcomes("SIGTERM default")
    plain_code, plain_output = outcome.extra["plain"]
    assert plain_code == -signal.SIGTERM
    assert outcome.returncode == plain_code, outcome.tail()
    assert outcome.output == plain_output == f"warm\nready {REPLY}\n"
    assert outcome.extra["spans_before_signal"] == 1
    assert sorted(prompt_of(s) for s in outcome.spans) == ["signal default pending", "signal default warm"]
    assert outcome.rejections == []


def test_sigint_flushes_and_exits_like_without_instrumentation(outcomes):
    outcome = outcomes("SIGINT default")
    plain_code, plain_output = outcome.extra["plain"]
    assert plain_code == -signal.SIGINT  # an unhandled KeyboardInterrupt ends the process by SIGINT
    assert outcome.returncode == plain_code, outcome.tail()
    assert "KeyboardInterrupt" in plain_output and "KeyboardInterrupt" in outcome.output
    assert outcome.output.splitlines()[:2] == plain_output.splitlines()[:2] == ["warm", f"ready {REPLY}"]
    assert "posthog-instrument" not in outcome.output
    assert outcome.extra["spans_before_signal"] == 1
    assert sorted(prompt_of(s) for s in outcome.spans) == ["signal default pending", "signal default warm"]


def test_app_sigterm_handler_takes_precedence_and_spans_still_arrive(outcomes):
    outcome = outcomes("SIGTERM app handler")
    plain_code, plain_output = outcome.extra["plain"]
    assert plain_code == 7
    assert outcome.returncode == 7, outcome.tail()
    assert outcome.output == plain_output == f"warm\nready {REPLY}\napp handler got signal {int(signal.SIGTERM)}\n"
    assert outcome.extra["spans_before_signal"] == 1
    # sys.exit in the app's handler runs atexit, where the SDK's shutdown flushes.
    assert sorted(prompt_of(s) for s in outcome.spans) == ["signal exit7 pending", "signal exit7 warm"]


def test_app_that_ignores_sigterm_keeps_running(outcomes):
    outcome = outcomes("SIGTERM ignored")
    assert outcome.extra["still_running"], outcome.tail()
    assert outcome.extra["spans_while_running"] == 1  # SIGTERM did nothing, flushing included
    assert outcome.returncode == 0
    assert outcome.output == f"warm\nready {REPLY}\nstdin closed\n"
    assert sorted(prompt_of(s) for s in outcome.spans) == ["signal ignore pending", "signal ignore warm"]


def test_sigterm_with_posthog_hanging_exits_within_the_flush_timeout(outcomes):
    outcome = outcomes("SIGTERM PostHog hangs")
    assert outcome.returncode == -signal.SIGTERM, outcome.tail()
    # The stuck call and the queued one are lost, and said so (the app's output is otherwise its own).
    assert (
        outcome.output == f"warm\nready {REPLY}\n"
        "posthog-instrument: 2 LLM event(s) could not be delivered to PostHog (0 delivered).\n"
    )
    (request,) = outcome.extra["requests"]  # the export is stuck on PostHog ...
    assert request["status"] is None and request["fault"] == "hang"
    # ... so the SIGTERM flush waits POSTHOG_FLUSH_TIMEOUT=2 seconds, no more, then the process dies.
    assert 1.5 <= outcome.extra["exit_delay"] < 2 + 3.0, outcome.extra["exit_delay"]


SCENARIO_OF_TEST = {  # tests that are not parametrized by scenario
    "test_uvicorn_workers_flush_when_the_supervisor_stops_them": "uvicorn --workers",
    "test_celery_prefork_children_flush_on_warm_shutdown": "celery prefork",
    "test_sigterm_flushes_then_dies_of_sigterm_like_without_instrumentation": "SIGTERM default",
    "test_sigint_flushes_and_exits_like_without_instrumentation": "SIGINT default",
    "test_app_sigterm_handler_takes_precedence_and_spans_still_arrive": "SIGTERM app handler",
    "test_app_that_ignores_sigterm_keeps_running": "SIGTERM ignored",
    "test_sigterm_with_posthog_hanging_exits_within_the_flush_timeout": "SIGTERM PostHog hangs",
}


# ---------------------------------------------------------------------------
# A signal arriving at the wrong moment
# ---------------------------------------------------------------------------


# Found by this test: the export lock was not re-entrant, so a SIGTERM handled while the app's thread
# held it (in on_end) deadlocked the flush and the process never exited. Fixed in 1a85a98 (RLock).
def test_sigterm_while_the_app_thread_holds_the_export_lock_still_exits():
    # Run in a process of its own: a deadlocked lock would otherwise also hang this one at exit.
    script = textwrap.dedent("""
        import os, sys, threading, time
        from opentelemetry.sdk.trace import TracerProvider
        from posthog_autoinstrument import config, lifecycle
        from posthog_autoinstrument.export.exporter import Delivery
        from posthog_autoinstrument.export.processor import PostHogSpanProcessor

        class SlowSender:
            def prepare(self):
                pass

            def send(self, body, *args, **kwargs):
                time.sleep(1.0)
                return Delivery(True, 200)

            def close(self):
                pass

        settings = config.load({"POSTHOG_API_KEY": "phc_test", "POSTHOG_FLUSH_TIMEOUT": "0.5"})
        processor = PostHogSpanProcessor(SlowSender(), settings)
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(processor)
        provider.get_tracer("t").start_span("chat m", attributes={"gen_ai.operation.name": "chat"}).end()
        assert processor.has_pending()  # its export is under way
        lifecycle._processor = processor

        def signal_arrives_inside_on_end():
            # The main thread when SIGTERM's Python handler (lifecycle._on_sigterm) runs in the
            # middle of on_end's `with self._wake:` block; only the handler's flush runs here, on a
            # thread of its own so that the test can time out.
            with processor._wake:
                lifecycle._flush_bounded()

        handler = threading.Thread(target=signal_arrives_inside_on_end, daemon=True)
        started = time.monotonic()
        handler.start()
        handler.join(5)
        print("deadlocked" if handler.is_alive() else f"flushed in {time.monotonic() - started:.1f}s", flush=True)
        os._exit(0)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=clean_env())
    assert result.stdout.startswith("flushed in "), result.stdout + result.stderr
    assert float(result.stdout.split()[2].rstrip("s")) < 0.5 + 2.0


# Found by test_pool_workers_terminated_idle_or_busy_deliver_every_call: a pool worker that got
# the pool's sentinel was exiting (atexit, our shutdown) when terminate() sent SIGTERM; its handler
# ran while shutdown held the export lock, waited for the export thread, which needed that lock
# to wake up: the flush timed out and the queued calls were lost.
def test_sigterm_handled_while_the_export_lock_is_held_still_delivers():
    from opentelemetry.sdk.trace import TracerProvider

    from posthog_autoinstrument import config, lifecycle
    from posthog_autoinstrument.export.exporter import Delivery
    from posthog_autoinstrument.export.processor import PostHogSpanProcessor

    class Sender:
        def __init__(self):
            self.bodies = []

        def prepare(self):
            pass

        def send(self, body, *args, **kwargs):
            self.bodies.append(body)
            return Delivery(True, 200)

        def close(self):
            pass

    sender = Sender()
    settings = config.load(
        {"POSTHOG_API_KEY": "phc_test", "POSTHOG_FLUSH_TIMEOUT": "3", "POSTHOG_EXPORT_INTERVAL": "60"}
    )
    processor = PostHogSpanProcessor(sender, settings)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    tracer.start_span("chat first", attributes={"gen_ai.operation.name": "chat"}).end()  # exported at once
    deadline = time.monotonic() + 10
    while not sender.bodies and time.monotonic() < deadline:
        time.sleep(0.01)
    tracer.start_span("chat queued", attributes={"gen_ai.operation.name": "chat"}).end()
    saved, lifecycle._processor = lifecycle._processor, processor
    try:

        def signal_arrives_inside_shutdown():
            # The main thread when SIGTERM's handler runs inside shutdown's `with self._wake:`.
            with processor._wake:
                lifecycle._flush_bounded()

        handler = threading.Thread(target=signal_arrives_inside_shutdown, daemon=True)
        handler.start()
        handler.join(10)
        delivered_by_the_handler = processor.exported  # before shutdown, which would flush too
    finally:
        lifecycle._processor = saved
        processor.shutdown()
    assert delivered_by_the_handler == 2
