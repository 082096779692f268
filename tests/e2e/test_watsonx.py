"""End to end: an unmodified IBM watsonx.ai app (``ibm-watsonx-ai``) under ``posthog-instrument``,
against a loopback watsonx.ai over TLS (a CA made for the test) and the PostHog stand-in.

ibm-watsonx-ai requires httpx < 0.29, older than the main environment's: these tests run in the
environment of tests/requirements-vertex-watsonx.txt (a block of .ci/run) and skip in the main
one. All scenarios run in one app process, once instrumented and once plainly (the output must
not change); spans are told apart by their prompt."""

from __future__ import annotations

import ssl

import pytest

pytest.importorskip("ibm_watsonx_ai")
trustme = pytest.importorskip("trustme")

from tests.e2e.providers import (  # noqa: E402
    CHAT_SETTINGS,
    SAY_HELLO,
    WEATHER_TOOL,
    Recorded,
    app_env,
    assert_has,
    record,
    run_scenarios,
    text_output,
)
from tests.e2e.traces import by_prompt, posthog_input, posthog_output, posthog_tool, tools  # noqa: E402
from tests.servers import FakePostHog  # noqa: E402
from tests.servers import watsonx_server as wire  # noqa: E402
from tests.servers.watsonx_server import FakeWatsonx  # noqa: E402

SCENARIOS = ("chat", "tools", "stream", "error_400", "generate", "embed", "async_all")
SPAN_COUNT = 11
USAGE = {"gen_ai.usage.input_tokens": wire.PROMPT_TOKENS, "gen_ai.usage.output_tokens": wire.COMPLETION_TOKENS}


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    path = tmp_path_factory.mktemp("watsonx") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path), context


def _env(watsonx, posthog, **extra) -> dict:
    return app_env(
        posthog,
        ("WATSONX_", "WML_"),
        WATSONX_URL=watsonx.root_url,
        WATSONX_TOKEN="test-token",
        WATSONX_CA=watsonx.ca_path,
        **extra,
    )


@pytest.fixture(scope="module")
def recorded(tls) -> Recorded:
    with FakeWatsonx(*tls) as watsonx, FakePostHog() as posthog:
        return record("watsonx_app", SCENARIOS, _env(watsonx, posthog), posthog, watsonx, SPAN_COUNT)


def test_chat_is_a_complete_generation_recorded_as_sent(recorded):
    (span,) = by_prompt(recorded.spans)["Say hello"]
    attrs = span["attributes"]
    assert span["name"] == f"chat {wire.MODEL}"
    assert attrs["gen_ai.provider.name"] == "ibm.watsonx.ai"
    assert attrs["gen_ai.request.model"] == attrs["gen_ai.response.model"] == wire.MODEL
    assert attrs["$ai_base_url"].startswith("https://127.0.0.1:")
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert_has(attrs, USAGE)
    assert_has(attrs, CHAT_SETTINGS)  # the params merged into the payload the SDK sent
    assert posthog_input(span) == SAY_HELLO
    assert posthog_output(span) == text_output(wire.DEFAULT_REPLY)


def test_tool_calls_and_results(recorded):
    call, answer = by_prompt(recorded.spans)["Weather in Paris?"]
    assert tools(call) == [posthog_tool(WEATHER_TOOL)]
    tool_call = {
        "type": "function",
        "id": wire.TOOL_CALL_ID,
        "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
    }
    assert posthog_output(call) == [{"role": "assistant", "content": [tool_call]}]
    assert call["attributes"]["$ai_stop_reason"] == "tool_call"
    assert posthog_input(answer)[-1] == {"role": "tool", "tool_call_id": wire.TOOL_CALL_ID, "content": '{"temp": 21}'}


def test_streams_sync_and_async(recorded):
    spans = by_prompt(recorded.spans)
    for prompt in ("Stream please", "Async stream"):
        (span,) = spans[prompt]
        assert span["attributes"]["$ai_stream"] is True
        assert_has(span["attributes"], USAGE)
        assert posthog_output(span) == text_output(wire.DEFAULT_REPLY)
    (async_chat,) = spans["Async hello"]
    assert posthog_output(async_chat) == text_output(wire.DEFAULT_REPLY)


def test_an_error_with_its_status(recorded):
    (span,) = by_prompt(recorded.spans)["Refuse me"]
    assert span["status_code"] == "ERROR"
    assert span["attributes"]["$ai_http_status"] == 400


def test_text_generation(recorded):
    spans = by_prompt(recorded.spans)
    (generated,) = spans["Write a greeting"]
    attrs = generated["attributes"]
    assert generated["name"] == f"text_completion {wire.MODEL}"
    assert_has(attrs, USAGE)
    assert attrs["gen_ai.request.max_tokens"] == 40 and attrs["gen_ai.request.temperature"] == 0.5
    assert posthog_output(generated) == text_output(wire.DEFAULT_REPLY)
    (text,) = spans["Write a line"]
    assert posthog_output(text) == text_output(wire.DEFAULT_REPLY)
    (streamed,) = spans["Stream a line"]
    assert streamed["attributes"]["$ai_stream"] is True
    assert posthog_output(streamed) == text_output(wire.DEFAULT_REPLY)


def test_embeddings(recorded):
    (span,) = [s for s in recorded.spans if s["attributes"]["gen_ai.operation.name"] == "embeddings"]
    assert span["attributes"]["gen_ai.usage.input_tokens"] == 2 * wire.EMBED_TOKENS_PER_TEXT
    assert span["attributes"]["gen_ai.embeddings.dimension.count"] == wire.EMBEDDING_DIMENSIONS
    assert posthog_input(span) == ["first text", "second text"]


def test_privacy_mode_sends_no_content(tls):
    with FakeWatsonx(*tls) as watsonx, FakePostHog() as posthog:
        result = run_scenarios("watsonx_app", ["chat", "tools"], _env(watsonx, posthog, POSTHOG_PRIVACY_MODE="true"))
        assert result.returncode == 0, result.stderr
        spans = posthog.wait_for_spans(3)
    for span in spans:
        assert not {"$ai_input", "$ai_output_choices"} & set(span["attributes"]), span["attributes"].keys()
        assert span["attributes"]["gen_ai.usage.input_tokens"] == wire.PROMPT_TOKENS
    assert any("$ai_tools" in span["attributes"] for span in spans)
