"""An unmodified app run end to end: started against its own loopback OpenAI and PostHog
stand-ins, under the ``posthog-instrument`` launcher or plain, several at once."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass

from tests.conftest import APPS, LAUNCHER, AppRun, BackgroundApp, clean_env
from tests.servers import FakeOpenAI, FakePostHog


@dataclass
class Outcome:
    run: AppRun
    spans: list
    rejections: list
    requests: list


class AppProcess:
    """One run of ``app`` (a file in tests/e2e/apps, given ``args``) against its own stand-ins,
    started without waiting for it. ``base_url_variable`` is where the app reads the OpenAI
    stand-in's address from."""

    def __init__(
        self,
        stack: contextlib.ExitStack,
        app: str,
        instrumented: bool,
        *args: str,
        base_url_variable: str = "OPENAI_BASE_URL",
        **extra_env: str,
    ):
        self.openai = stack.enter_context(FakeOpenAI())
        self.posthog = stack.enter_context(FakePostHog())
        env = clean_env(
            **{base_url_variable: self.openai.base_url},
            OPENAI_API_KEY="sk-test-secret-key",
            POSTHOG_API_KEY="phc_test_project_token",
            POSTHOG_HOST=self.posthog.host,
            POSTHOG_EXPORT_INTERVAL="0.05",
            **extra_env,
        )
        path = str(APPS / app)
        command = [LAUNCHER, "python", path, *args] if instrumented else [sys.executable, path, *args]
        self.app = BackgroundApp(stack, command, env)

    def result(self) -> AppRun:
        return self.app.result()

    def outcome(self) -> Outcome:
        run = self.app.result()  # the app has exited: everything it sent has arrived
        return Outcome(run, self.posthog.spans, self.posthog.rejections, self.openai.requests)


def traced_plain_private(app: str, base_url_variable: str = "OPENAI_BASE_URL", **extra_env: str) -> dict:
    """The app run three ways at once: "traced", "plain" (not instrumented) and "private"
    (traced in privacy mode)."""
    with contextlib.ExitStack() as stack:
        started = {
            "traced": AppProcess(stack, app, True, base_url_variable=base_url_variable, **extra_env),
            "plain": AppProcess(stack, app, False, base_url_variable=base_url_variable, **extra_env),
            "private": AppProcess(
                stack, app, True, base_url_variable=base_url_variable, POSTHOG_PRIVACY_MODE="true", **extra_env
            ),
        }
        return {name: process.outcome() for name, process in started.items()}
