"""End to end: every release the README claims for the OpenAI and Anthropic SDKs is recorded.

Their internals moved within the claimed ranges (openai 1.63 made ``resources.chat.completions``
a package, anthropic did the same with ``resources.messages``), and a class looked for in the
wrong place is silently not patched. These tests make the calls every claimed release has and
expect one span per call, and ``doctor`` and ``--debug`` to agree that nothing is missing. The
main environment runs them on the newest releases; .ci/run's oldest-releases environment on
openai 1.40 and anthropic 0.40, then on the newest openai 1.x.
"""

from __future__ import annotations

import json
from importlib.metadata import version

import pytest

from tests.conftest import APPS, LAUNCHER, clean_env, run
from tests.servers.anthropic_server import FakeAnthropic

APP = str(APPS / "sdk_releases_app.py")


@pytest.fixture(scope="module")
def fake_anthropic():
    with FakeAnthropic() as server:
        yield server


def run_app(library: str, posthog, instrumented: bool = True, **env: str):
    env = clean_env(
        POSTHOG_API_KEY="phc_test_project_token",
        POSTHOG_HOST=posthog.host,
        POSTHOG_EXPORT_INTERVAL="0.05",
        OPENAI_API_KEY="sk-test",
        ANTHROPIC_API_KEY="sk-ant-test",
        **env,
    )
    env = {k: v for k, v in env.items() if not k.startswith("ANTHROPIC_OPEN_TELEMETRY")}
    command = [LAUNCHER, "--debug", "python", APP, library] if instrumented else ["python", APP, library]
    result = run(command, env)
    assert result.returncode == 0, result.stderr
    return result


def doctor_row(library: str) -> dict:
    result = run([LAUNCHER, "doctor", "--json", "--no-network"], clean_env(POSTHOG_API_KEY="phc_test_project_token"))
    (row,) = [row for row in json.loads(result.stdout)["libraries"] if row["library"] == library]
    return row


def assert_nothing_missing(library: str, stderr: str) -> None:
    assert "will not be recorded" not in stderr, stderr
    row = doctor_row(library)
    assert row["version"] == version(library)
    assert row["status"] == "will be instrumented when the app imports it", row


def test_openai_chat_stream_async_and_embeddings_are_each_one_span(fake_openai, posthog):
    result = run_app("openai", posthog, OPENAI_BASE_URL=fake_openai.base_url)
    assert result.stdout == run_app("openai", posthog, instrumented=False, OPENAI_BASE_URL=fake_openai.base_url).stdout
    spans = sorted(
        posthog.spans,
        key=lambda s: (s["attributes"]["gen_ai.operation.name"], bool(s["attributes"].get("gen_ai.request.stream"))),
    )
    assert [
        (s["attributes"]["gen_ai.operation.name"], bool(s["attributes"].get("gen_ai.request.stream"))) for s in spans
    ] == [("chat", False), ("chat", False), ("chat", True), ("embeddings", False)]
    for span in spans:
        assert span["attributes"]["gen_ai.usage.input_tokens"] > 0, span
    for span in spans[:3]:
        assert span["attributes"]["gen_ai.usage.output_tokens"] > 0, span
    assert_nothing_missing("openai", result.stderr)


def test_anthropic_create_stream_and_async_are_each_one_span(fake_anthropic, posthog):
    result = run_app("anthropic", posthog, ANTHROPIC_BASE_URL=fake_anthropic.base_url)
    assert result.stdout == (
        "anthropic create: Hello from fake Claude\nanthropic stream: Hello from fake Claude\n"
        "anthropic async create: Hello from fake Claude\n"
    )
    spans = posthog.spans
    assert len(spans) == 3, [s["name"] for s in spans]
    for span in spans:
        attrs = span["attributes"]
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.usage.output_tokens"] == 7, attrs
    assert_nothing_missing("anthropic", result.stderr)
