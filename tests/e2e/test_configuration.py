"""End to end: configuration from the environment.

Bad settings give exactly one clear stderr line naming the variable, and the program runs
exactly as it would without instrumentation. The user's own OpenTelemetry setup keeps
working beside ours, PostHog receives only AI spans, the kill switches really switch
everything off, and a dry run prints events instead of sending them.
"""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import APPS, LAUNCHER, clean_env, run
from tests.servers import FakeOpenAI
from tests.e2e.traces import posthog_input, message_text

APP = str(APPS / "llm_app.py")
APP_ARGS = ["--tag", "config", "--exit", "3"]
REPLY = "'Hello from fake OpenAI'"


def app_env(fake_openai, posthog, **overrides) -> dict:
    """A valid configuration, with ``overrides`` applied; a value of None removes the variable."""
    env = clean_env(
        OPENAI_BASE_URL=fake_openai.base_url,
        OPENAI_API_KEY="sk-test-secret-key",
        POSTHOG_API_KEY="phc_test_project_token",
        POSTHOG_HOST=posthog.host,
        POSTHOG_EXPORT_INTERVAL="0.05",
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@pytest.fixture(scope="module")
def plain_run():
    """The same program, uninstrumented: what every instrumented run must look like to the user."""
    with FakeOpenAI() as server:
        env = clean_env(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-test-secret-key")
        result = run([sys.executable, APP, *APP_ARGS], env)
    assert result.returncode == 3, result.stderr
    assert result.stdout == f"config: calls=1 reply={REPLY} tokens=18\ndone\n"
    assert result.stderr == ""
    return result


def user_prompt(span: dict) -> str:
    return message_text(posthog_input(span)[0])


# ---------------------------------------------------------------------------
# Bad settings: one line, the app unchanged
# ---------------------------------------------------------------------------

BAD_SETTINGS = [
    # id, environment changes, variable the line must name, other words it must contain, still exported
    ("missing key", {"POSTHOG_API_KEY": None}, "POSTHOG_API_KEY", "not set", False),
    ("empty key", {"POSTHOG_API_KEY": ""}, "POSTHOG_API_KEY", "empty", False),
    ("personal key", {"POSTHOG_API_KEY": "phx_personal_key_123"}, "POSTHOG_API_KEY", "phx_", False),
    ("host without scheme", {"POSTHOG_HOST": "us.i.posthog.com"}, "POSTHOG_HOST", "us.i.posthog.com", False),
    ("unknown boolean", {"POSTHOG_AI_STREAM_USAGE": "maybe"}, "POSTHOG_AI_STREAM_USAGE", "maybe", True),
    ("bad number", {"POSTHOG_FLUSH_TIMEOUT": "soon"}, "POSTHOG_FLUSH_TIMEOUT", "soon", True),
]


@pytest.mark.parametrize(
    "changes, variable, words, exported", [case[1:] for case in BAD_SETTINGS], ids=[case[0] for case in BAD_SETTINGS]
)
def test_bad_setting_is_one_clear_line_and_the_app_runs_unchanged(
    fake_openai, posthog, plain_run, changes, variable, words, exported
):
    result = run([LAUNCHER, "python", APP, *APP_ARGS], app_env(fake_openai, posthog, **changes))

    assert result.returncode == plain_run.returncode
    assert result.stdout == plain_run.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith(f"posthog-instrument: {variable}")
    assert words in line
    assert len(fake_openai.requests) == 1  # the app made its call either way
    if exported:
        (span,) = posthog.spans
        assert user_prompt(span) == "hello from config"  # the default (privacy off) was applied
        assert posthog.rejections == []
    else:
        assert posthog.requests == []


def test_bad_setting_is_reported_once_across_child_processes(fake_openai, posthog):
    env = app_env(fake_openai, posthog, POSTHOG_AI_STREAM_USAGE="maybe")
    result = run([LAUNCHER, "python", APP, "--tag", "parent", "--child"], env)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("posthog-instrument: POSTHOG_AI_STREAM_USAGE='maybe' is not a boolean")
    assert sorted(user_prompt(s) for s in posthog.spans) == ["hello from child", "hello from parent"]


def test_project_api_key_alias(fake_openai, posthog):
    env = app_env(fake_openai, posthog, POSTHOG_API_KEY=None, POSTHOG_PROJECT_API_KEY="phc_alias_token")
    result = run([LAUNCHER, "python", APP, "--show-patch"], env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines()[0] == "create=FunctionWrapper"
    (request,) = posthog.requests
    assert request["headers"]["authorization"] == "Bearer phc_alias_token"
    (span,) = posthog.spans
    assert span["name"] == "chat gpt-4o-mini"


# ---------------------------------------------------------------------------
# The user's own OpenTelemetry
# ---------------------------------------------------------------------------


def console_spans(stdout: str) -> tuple:
    """Split stdout into the app's own lines and the ConsoleSpanExporter's JSON objects."""
    decoder = json.JSONDecoder()
    lines, spans, index = [], [], 0
    while index < len(stdout):
        if stdout[index] == "{":
            span, index = decoder.raw_decode(stdout, index)
            spans.append(span)
        else:
            end = stdout.find("\n", index)
            end = len(stdout) if end == -1 else end
            if stdout[index:end].strip():
                lines.append(stdout[index:end])
            index = end + 1
    return lines, spans


def test_user_exporter_keeps_everything_and_posthog_gets_only_the_ai_span(fake_openai, posthog):
    env = app_env(fake_openai, posthog, OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="shop")
    result = run([LAUNCHER, "python", str(APPS / "otel_app.py")], env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""

    lines, exported = console_spans(result.stdout)
    app_span_id = lines[0].removeprefix("app span id ")
    assert lines == [f"app span id {app_span_id}", "reply Hello from fake OpenAI"]

    # The user's console exporter got every span (the installed httpx instrumentation's "POST"
    # of the OpenAI request too, as under opentelemetry-instrument; none for our own export),
    # unchanged by our PostHog dialect.
    by_name = {span["name"]: span for span in exported}
    assert sorted(by_name) == ["POST", "chat gpt-4o-mini", "handle-checkout"]
    assert by_name["POST"]["parent_id"] == by_name["chat gpt-4o-mini"]["context"]["span_id"]
    app_span, llm_console = by_name["handle-checkout"], by_name["chat gpt-4o-mini"]
    assert app_span["context"]["span_id"] == f"0x{app_span_id}"
    assert app_span["attributes"] == {"shop.order_id": "order-42"}
    assert llm_console["parent_id"] == f"0x{app_span_id}"
    assert not [key for key in llm_console["attributes"] if key.startswith("$")]
    assert llm_console["resource"]["attributes"]["service.name"] == "shop"

    # PostHog got only the AI span, in the app's trace. Its parent (the app's span) never reaches
    # PostHog and has no AI span above it, so PostHog's copy is a root rather than a dangling
    # child (export.processor's _ai_ancestor); the user's exporter above keeps the real parent.
    (span,) = posthog.spans
    assert posthog.rejections == []
    assert span["name"] == "chat gpt-4o-mini"
    assert span["parent_span_id"] is None
    assert f"0x{span['trace_id']}" == app_span["context"]["trace_id"]
    assert f"0x{span['span_id']}" == llm_console["context"]["span_id"]
    assert span["attributes"]["$process_person_profile"] is False
    assert span["resource"]["service.name"] == "shop"
    assert user_prompt(span) == "Summarise order 42"


# ---------------------------------------------------------------------------
# Kill switches and dry run
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("switch", ["POSTHOG_AUTOINSTRUMENT_DISABLED", "OTEL_SDK_DISABLED"])
def test_disabled_means_nothing_patched_and_nothing_sent(fake_openai, posthog, switch):
    env = app_env(fake_openai, posthog, **{switch: "true"})
    result = run([LAUNCHER, "python", APP, "--show-patch", "--exit", "3"], env)
    assert result.returncode == 3
    assert result.stdout == f"create=function\nmain: calls=1 reply={REPLY} tokens=18\ndone\n"
    assert result.stderr == ""
    assert len(fake_openai.requests) == 1
    assert posthog.requests == []


def test_dry_run_prints_each_event_and_sends_nothing(fake_openai, posthog):
    env = app_env(fake_openai, posthog, POSTHOG_API_KEY=None)
    result = run([LAUNCHER, "--dry-run", "python", APP, "--calls", "2", "--exit", "3"], env)

    assert result.returncode == 3
    assert result.stdout == f"main: calls=2 reply={REPLY} tokens=36\ndone\n"
    events = [json.loads(line) for line in result.stderr.splitlines()]  # every line is an event
    assert len(events) == 2
    assert len({event["span_id"] for event in events}) == 2
    for event in events:
        assert event["posthog_event"] == "$ai_generation"
        assert event["name"] == "chat gpt-4o-mini"
        attrs = event["attributes"]
        assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
        assert attrs["gen_ai.usage.input_tokens"] == 11
        assert attrs["$ai_input"] == [{"role": "user", "content": "hello from main"}]
        assert attrs["$process_person_profile"] is False  # what PostHog would get, dialect included
    assert posthog.requests == []
