"""End to end: an unmodified Hugging Face inference app (``huggingface_hub.InferenceClient`` and
``AsyncInferenceClient``) under ``posthog-instrument``, against a loopback stand-in of a TGI
endpoint, Hugging Face's router and the Hub's model API, and PostHog's. One run makes every call,
one plain run checks the app cannot tell."""

from __future__ import annotations

import json

import pytest

from tests.e2e.providers import app_env, record, run_scenarios
from tests.e2e.traces import posthog_input, posthog_output
from tests.posthog_ingest import resolve_cost_provider
from tests.servers import FakePostHog
from tests.servers import huggingface_server as tgi
from tests.servers.huggingface_server import FakeHuggingFace

SCENARIOS = (
    "chat",
    "chat_stream",
    "async_chat_stream",
    "text_generation",
    "text_generation_plain",
    "text_generation_stream",
    "async_text_generation_stream",
    "feature_extraction",
    "async_feature_extraction",
    "routed_chat",
    "routed_async_chat_stream",
    "routed_text_generation",
    "chat_error",
)
SAY_HELLO = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello"}]
HELLO = [{"role": "assistant", "content": [{"type": "text", "text": "Hello from fake TGI"}]}]
GENERATED = [{"role": "assistant", "content": [{"type": "text", "text": tgi.GENERATED_TEXT}]}]


def env_for(hf, posthog, **extra) -> dict:
    return app_env(
        posthog,
        ("HF_", "HUGGING"),
        TGI_URL=hf.endpoint_url,
        HF_TOKEN="hf_test_token",
        HF_ENDPOINT=hf.root_url,
        HF_ROUTER_TEMPLATE=hf.router_template,
        HF_HUB_DISABLE_TELEMETRY="1",
        **extra,
    )


@pytest.fixture(scope="module")
def recorded():
    with FakeHuggingFace() as hf, FakePostHog() as posthog:
        return record("huggingface_app", SCENARIOS, env_for(hf, posthog), posthog, hf, len(SCENARIOS))


@pytest.fixture(scope="module")
def private_spans():
    scenarios = ("chat", "text_generation_stream", "feature_extraction")
    with FakeHuggingFace() as hf, FakePostHog() as posthog:
        result = run_scenarios("huggingface_app", scenarios, env_for(hf, posthog, POSTHOG_PRIVACY_MODE="true"))
        assert result.returncode == 0, result.stderr
        return posthog.wait_for_spans(len(scenarios))


def spans_with(recorded, operation: str, prompt: str = None, stream: bool = False) -> list:
    found = []
    for span in recorded.spans:
        attrs = span["attributes"]
        if not span["name"].startswith(operation) or bool(attrs.get("gen_ai.request.stream")) != stream:
            continue
        if prompt is None or posthog_input(span)[-1]["content"] == prompt:
            found.append(span)
    return found


def only(spans: list) -> dict:
    assert len(spans) == 1, [s["name"] for s in spans]
    return spans[0]


def test_chat_through_base_url(recorded):
    span = only([s for s in spans_with(recorded, "chat") if s["attributes"].get("gen_ai.request.seed") == 7])
    attrs = span["attributes"]
    assert span["name"] == "chat meta-llama/Llama-3.1-8B-Instruct"
    assert attrs["gen_ai.provider.name"] == "huggingface"  # an endpoint of its own: no inference provider
    assert attrs["gen_ai.response.model"] == tgi.SERVED_MODEL
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7)
    assert (attrs["$ai_temperature"], attrs["$ai_max_tokens"], attrs["$ai_stop_reason"]) == (0.3, 50, "stop")
    assert attrs["server.address"] == "127.0.0.1"
    assert posthog_input(span) == SAY_HELLO
    assert posthog_output(span) == HELLO


def test_chat_streams_get_usage_the_app_does_not_see(recorded):
    assert "chat_stream 7 'Hello from fake TGI' 0" in recorded.stdout
    streams = [
        s for s in spans_with(recorded, "chat", stream=True) if s["attributes"]["gen_ai.provider.name"] == "huggingface"
    ]
    assert len(streams) == 2  # sync and async, at a URL endpoint (the model is not named: TGI's "dummy")
    for span in streams:
        attrs = span["attributes"]
        assert "gen_ai.request.model" not in attrs and attrs["gen_ai.response.model"] == tgi.SERVED_MODEL
        assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7)
        assert posthog_output(span) == HELLO
    asked = [
        r["json"].get("stream_options")
        for r in recorded.requests
        if r["path"] == "/tgi/v1/chat/completions" and r["json"].get("stream")
    ]
    assert asked == [{"include_usage": True}] * 2 + [None] * 2  # instrumented run, then the plain one


def test_text_generation(recorded):
    detailed = only(spans_with(recorded, "text_completion", "Once upon a time"))
    attrs = detailed["attributes"]
    # TGI's details count the generated tokens, and the prompt's with decoder_input_details.
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (len(tgi.PROMPT_TOKEN_IDS), 5)
    assert (attrs["$ai_stop_reason"], attrs["$ai_max_tokens"], attrs["$ai_temperature"]) == ("length", 5, 0.5)
    assert posthog_output(detailed)[0]["content"] == GENERATED[0]["content"]

    plain = only(spans_with(recorded, "text_completion", "Plain prompt"))
    assert "gen_ai.usage.output_tokens" not in plain["attributes"]  # the text alone: nothing reported
    assert posthog_output(plain) == GENERATED

    tokens = only(spans_with(recorded, "text_completion", "Stream me", stream=True))
    assert posthog_output(tokens) == GENERATED
    detailed_stream = only(spans_with(recorded, "text_completion", "Async stream", stream=True))["attributes"]
    assert (detailed_stream["gen_ai.usage.output_tokens"], detailed_stream["$ai_stop_reason"]) == (5, "length")


def test_feature_extraction_records_no_vectors(recorded):
    embeddings = spans_with(recorded, "embeddings")
    assert sorted(posthog_input(s) for s in embeddings) == [["Embed this text"], ["first", "second"]]
    for span in embeddings:
        assert span["attributes"]["gen_ai.embeddings.dimension.count"] == len(tgi.EMBEDDING)
        exported = json.dumps(span["attributes"])
        assert str(tgi.EMBEDDING[1]) not in exported and "0.125" not in exported


def test_routed_calls_name_the_provider_that_served_them(recorded):
    routed = [
        s
        for s in recorded.spans
        if s["attributes"]["gen_ai.provider.name"] not in ("huggingface",) and s["name"].startswith("chat")
    ]
    by_provider = {s["attributes"]["gen_ai.provider.name"]: s for s in routed}
    # Hugging Face's "fireworks-ai" goes out under the name PostHog's cost tables know.
    assert set(by_provider) == {"together", "fireworks"}
    assert {resolve_cost_provider(name) for name in by_provider} == {"together", "fireworks"}  # PostHog's price rows
    together = by_provider["together"]["attributes"]
    assert together["gen_ai.request.model"] == "meta-llama/Llama-3.1-8B-Instruct"  # the Hub's id, as asked
    assert (together["gen_ai.usage.input_tokens"], together["gen_ai.usage.output_tokens"]) == (11, 7)
    assert by_provider["fireworks"]["attributes"]["gen_ai.request.stream"] is True
    sent = {(tgi.provider_of(r), r["json"]["model"]) for r in recorded.requests if tgi.provider_of(r)}
    assert sent == {
        ("together", tgi.PROVIDER_MODEL_IDS["together"]),
        ("fireworks-ai", tgi.PROVIDER_MODEL_IDS["fireworks-ai"]),
        ("together", "mistralai/Mistral-7B-v0.1-turbo"),
    }

    # The app named no provider: the client chose one from the model's providers on the Hub.
    chosen = only(spans_with(recorded, "text_completion", "Routed prompt"))
    assert chosen["attributes"]["gen_ai.provider.name"] == "together"
    assert chosen["attributes"]["gen_ai.request.model"] == "mistralai/Mistral-7B-v0.1"


def test_error_carries_its_http_status(recorded):
    assert "chat_error HfHubHTTPError 429" in recorded.stdout
    span = only([s for s in recorded.spans if s["attributes"].get("gen_ai.request.model") == "error-429"])
    assert span["status_code"] == "ERROR"
    assert (span["attributes"]["$ai_http_status"], span["attributes"]["error.type"]) == (
        429,
        "huggingface_hub.HfHubHTTPError",
    )


def test_privacy_mode_keeps_usage_and_drops_text(private_spans):
    assert len(private_spans) == 3
    for span in private_spans:
        attrs = span["attributes"]
        assert "$ai_input" not in attrs and "$ai_output_choices" not in attrs, span["name"]
        assert not [key for key in attrs if key.startswith(("gen_ai.input", "gen_ai.output.messages"))]
    chat = next(s for s in private_spans if s["name"].startswith("chat"))
    assert chat["attributes"]["gen_ai.usage.output_tokens"] == 7
