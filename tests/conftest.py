"""Shared fixtures: loopback provider and PostHog stand-ins, and a runner for unmodified apps."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import FakeOpenAI, FakePostHog

APPS = Path(__file__).parent / "e2e" / "apps"
BIN = Path(sys.executable).parent
LAUNCHER = str(BIN / "posthog-instrument")


@pytest.fixture
def fake_openai():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def posthog():
    with FakePostHog() as server:
        yield server


def clean_env(**overrides: str) -> dict:
    """The test process's environment minus anything that configures us or OpenTelemetry."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POSTHOG_", "OTEL_", "_POSTHOG", "OPENAI_", "PYTHONPATH"))
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    # No OpenTelemetry export of the user's own. Explicit, because the test extra installs
    # opentelemetry-distro, whose defaults (OTLP export to localhost) would otherwise apply.
    env.update(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    env.update({k: v for k, v in overrides.items() if v is not None})
    return env


@dataclass
class AppRun:
    returncode: int
    stdout: str
    stderr: str


class BackgroundApp:
    """A command started in the background, its output in temporary files, killed (if still
    running) when ``stack`` closes: for fixtures that run several apps at once."""

    def __init__(self, stack, command: list, env: dict):
        import tempfile

        self.stdout = stack.enter_context(tempfile.TemporaryFile("w+"))
        self.stderr = stack.enter_context(tempfile.TemporaryFile("w+"))
        self.process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=self.stdout, stderr=self.stderr, text=True
        )
        stack.callback(self._kill)

    def _kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def result(self, timeout: float = 180) -> AppRun:
        returncode = self.process.wait(timeout=timeout)
        self.stdout.seek(0)
        self.stderr.seek(0)
        return AppRun(returncode, self.stdout.read(), self.stderr.read())


def run(command: list, env: dict, timeout: float = 60, cwd: str | None = None) -> AppRun:
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd
    )
    return AppRun(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def run_app(fake_openai, posthog):
    """Run ``tests/e2e/apps/<app>.py <args>`` under posthog-instrument (or plainly, to compare)."""

    def runner(app: str, *args: str, instrumented: bool = True, **env_overrides: str) -> AppRun:
        env = clean_env(
            OPENAI_BASE_URL=fake_openai.base_url,
            OPENAI_API_KEY="sk-test-secret-key",
            POSTHOG_API_KEY="phc_test_project_token",
            POSTHOG_HOST=posthog.host,
            POSTHOG_EXPORT_INTERVAL="0.05",
        )
        env.update(env_overrides)
        script = [sys.executable if not instrumented else "python", str(APPS / f"{app}.py"), *args]
        command = [LAUNCHER, *script] if instrumented else script
        return run(command, env)

    return runner
