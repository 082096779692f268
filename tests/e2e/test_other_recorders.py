"""End to end: one event per model call when the app already records its calls another way.

Each scenario of ``apps/other_recorders_app.py`` runs under ``posthog-instrument`` against the
loopback OpenAI, Anthropic and PostHog stand-ins, and again plainly: the app's output (its own
telemetry included) must not change, and PostHog must get exactly one generation per call.

* PostHog's own wrappers and LangChain handler: the app's choice wins. Their events (on the
  stand-in's ``/batch/``, with the app's distinct id and properties) are the only ones for those
  calls; posthog-instrument records what they pass through or never see.
* logfire, the official OpenTelemetry OpenAI instrumentation, OpenLLMetry, OpenInference: our
  generation is the one PostHog gets (with tokens, streams too); their spans stay in the app's
  own telemetry, and in PostHog's copy are dropped (beneath our call) or a step (around it).
"""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.conftest import APPS, LAUNCHER, clean_env, run
from tests.e2e.traces import event_type
from tests.servers import FakeOpenAI, FakePostHog
from tests.servers.anthropic_server import FakeAnthropic
from tests.servers.gemini_server import FakeGemini

APP = str(APPS / "other_recorders_app.py")


@pytest.fixture(scope="module")
def fakes():
    with FakeOpenAI() as fake_openai, FakeAnthropic() as fake_anthropic, FakeGemini() as fake_gemini:
        yield fake_openai, fake_anthropic, fake_gemini


def run_scenario(fakes, scenario: str):
    """(instrumented run, PostHog stand-in) after checking the plain run printed the same."""
    fake_openai, fake_anthropic, fake_gemini = fakes
    outputs = []
    for instrumented in (True, False):
        with FakePostHog() as posthog:
            env = clean_env(
                OPENAI_BASE_URL=fake_openai.base_url,
                OPENAI_API_KEY="sk-test-secret-key",
                ANTHROPIC_BASE_URL=fake_anthropic.base_url,
                ANTHROPIC_API_KEY="sk-ant-test-key",
                GOOGLE_GEMINI_BASE_URL=fake_gemini.base_url,
                GEMINI_API_KEY="gemini-test-key",
                POSTHOG_API_KEY="phc_test_project_token",
                POSTHOG_HOST=posthog.host,
                POSTHOG_EXPORT_INTERVAL="0.05",
            )
            command = [LAUNCHER, "python", APP, scenario] if instrumented else [sys.executable, APP, scenario]
            result = run(command, env)
            assert result.returncode == 0, result.stderr
            assert posthog.rejections == []
            outputs.append(result.stdout)
            if instrumented:
                found = result, posthog
            else:
                assert posthog.spans == []
    assert outputs[0] == outputs[1]
    return found


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # its parent package is not installed either
        return False


def posthog_event(span: dict) -> str:
    """The event PostHog makes of a span, whichever conventions it follows
    (rust/capture/src/otel/providers.rs: Traceloop, then OpenInference, then the GenAI ones)."""
    attrs = span["attributes"]
    if "llm.request.type" in attrs or any(k.startswith("traceloop.") for k in attrs):
        return {
            "chat": "$ai_generation",
            "completion": "$ai_generation",
            "embedding": "$ai_embedding",
            "embeddings": "$ai_embedding",
        }.get(attrs.get("llm.request.type"), "$ai_span")
    if any(k.startswith("openinference.") for k in attrs):
        return {"LLM": "$ai_generation", "EMBEDDING": "$ai_embedding"}.get(
            attrs.get("openinference.span.kind"), "$ai_span"
        )
    return event_type(span)


def generations(posthog) -> list:
    return [s for s in posthog.spans if posthog_event(s) == "$ai_generation"]


def wrapper_events(posthog) -> list:
    """The events the app's own posthog client sent (its /batch/ requests)."""
    return [
        event
        for request in posthog.sdk_requests
        if request["path"].startswith("/batch")
        for event in (request.get("json") or {}).get("batch", [])
    ]


def assert_tokens(span: dict) -> None:
    attrs = span["attributes"]
    assert attrs["gen_ai.usage.input_tokens"] == 11 and attrs["gen_ai.usage.output_tokens"] == 7, span["name"]


# -- PostHog's own recorders: theirs win -----------------------------------------------------------


def assert_the_wrappers_events(posthog, count: int) -> None:
    events = wrapper_events(posthog)
    assert [e["event"] for e in events] == ["$ai_generation"] * count
    for event in events:
        assert event["distinct_id"] == "wrapper-user"
        assert event["properties"]["plan"] == "pro"


def test_posthog_openai_wrapper_calls_are_its_events_only(fakes):
    result, posthog = run_scenario(fakes, "posthog_openai")
    assert "chat: Hello from fake OpenAI 18" in result.stdout
    assert "stream: Hello from fake OpenAI" in result.stdout
    assert_the_wrappers_events(posthog, 3)  # chat, stream, async chat
    # The one call the wrapper passes through unrecorded (with_raw_response) is ours.
    (ours,) = posthog.spans
    assert event_type(ours) == "$ai_generation" and ours["scope_name"] == "posthog_autoinstrument"
    assert_tokens(ours)


def test_posthog_anthropic_wrapper_calls_are_its_events_only(fakes):
    # The anthropic SDK traces itself: its spans of these calls must not reach PostHog either.
    result, posthog = run_scenario(fakes, "posthog_anthropic")
    assert "stream helper: Hello from fake Claude" in result.stdout
    assert_the_wrappers_events(posthog, 3)  # create, create(stream=True), messages.stream()
    assert posthog.spans == []


def test_posthog_gemini_wrapper_calls_are_its_events_only(fakes):
    result, posthog = run_scenario(fakes, "posthog_gemini")
    assert "generate stream:" in result.stdout
    assert_the_wrappers_events(posthog, 2)  # generate_content, generate_content_stream
    assert posthog.spans == []


def test_posthog_langchain_handler_runs_are_its_events_only(fakes):
    result, posthog = run_scenario(fakes, "posthog_langchain")
    assert "unhandled invoke: Hello from fake OpenAI" in result.stdout
    events = wrapper_events(posthog)
    # invoke and stream: a generation each; the chain run: a trace (the handler's own view).
    assert sorted(e["event"] for e in events) == ["$ai_generation", "$ai_generation", "$ai_trace"]
    assert {e["distinct_id"] for e in events} == {"wrapper-user"}
    ours = generations(posthog)
    # The OpenAI call made directly in the handler's chain (the handler sees no model run there),
    # and the run without the handler: one generation each, recorded by posthog-instrument.
    assert len(ours) == 2 and all(s["scope_name"] == "posthog_autoinstrument" for s in ours)
    for span in ours:
        assert_tokens(span)
    assert sorted(event_type(s) for s in posthog.spans) == ["$ai_generation", "$ai_generation", "$ai_trace"]


# -- OpenTelemetry recorders: ours wins, theirs stay in the app's own telemetry ----------------------


@pytest.mark.parametrize(
    "scenario, module, their_spans",
    [
        (
            "logfire_openai",
            "logfire",
            "['Chat Completion with {request_data[model]!r}', 'Chat Completion with {request_data[model]!r}', "
            "'streaming response from {request_data[model]!r} took {duration:.2f}s']",
        ),
        ("otel_openai_v2", "opentelemetry.instrumentation.openai_v2", "['chat gpt-4o-mini', 'chat gpt-4o-mini']"),
        ("openllmetry_openai", "opentelemetry.instrumentation.openai", "['openai.chat', 'openai.chat']"),
        ("openinference_openai", "openinference.instrumentation.openai", "['ChatCompletion', 'ChatCompletion']"),
    ],
)
def test_other_opentelemetry_recorders_leave_one_generation_per_call(fakes, scenario, module, their_spans):
    # Installed in their own test environment (tests/requirements-other-recorders.txt).
    if not installed(module):
        pytest.skip(f"{module} is not installed (tests/requirements-other-recorders.txt)")
    result, posthog = run_scenario(fakes, scenario)
    assert their_spans in result.stdout  # the other recorder did record both calls, for the app
    assert "stream: Hello from fake OpenAI chunks: 6 usage chunks: 0" in result.stdout
    found = generations(posthog)
    assert len(found) == 2, [(s["name"], s["scope_name"], posthog_event(s)) for s in posthog.spans]
    assert all(s["scope_name"] == "posthog_autoinstrument" for s in found)
    for span in found:
        assert_tokens(span)
    assert sorted(bool(s["attributes"].get("gen_ai.request.stream")) for s in found) == [False, True]
    # Whatever else of theirs PostHog gets is a step around our generation, without tokens.
    for span in posthog.spans:
        if span not in found:
            assert posthog_event(span) in ("$ai_span", "$ai_trace")
            assert not any("token" in key for key in span["attributes"]), span["attributes"]
            assert any(s["parent_span_id"] == span["span_id"] for s in found)
