"""End to end: an unmodified OpenAI app using the endpoints besides chat (legacy completions,
audio transcriptions, translations and speech, image generation and edits) under
``posthog-instrument``, against loopback OpenAI and PostHog stand-ins. One run makes every call
(and one plain run checks the app cannot tell); one more runs a few in privacy mode."""

from __future__ import annotations

import json

import pytest

from tests.e2e.providers import app_env, record, run_scenarios
from tests.e2e.traces import posthog_input, posthog_output
from tests.servers import FakeOpenAI, FakePostHog
from tests.servers import openai_wire as wire

SCENARIOS = (
    "completion",
    "completion_two_prompts",
    "completion_stream",
    "completion_async_stream",
    "transcribe_tokens",
    "transcribe_duration",
    "transcribe_text",
    "transcribe_stream",
    "translate_async",
    "transcribe_error",
    "speech",
    "speech_streaming",
    "image_url",
    "image_b64",
    "image_edit",
    "image_variation",
    "image_async_stream",
    "image_error",
    "raw_responses",
)
PRIVATE_SCENARIOS = ("completion", "transcribe_tokens", "speech", "image_url")
# Bytes the app uploads (tests/e2e/apps/openai_media_app.py) and the stand-in returns.
MEDIA_BYTES = (
    "FAKE-UPLOADED-AUDIO-BYTES",
    "FAKE-UPLOADED-IMAGE-BYTES",
    wire.IMAGE_B64,
    "fake-mp3-speech-bytes",
    "fake-generated-image-bytes",
)


def env_for(openai, posthog, **extra) -> dict:
    return app_env(posthog, "OPENAI_", OPENAI_BASE_URL=openai.base_url, OPENAI_API_KEY="sk-test-secret-key", **extra)


@pytest.fixture(scope="module")
def recorded():
    with FakeOpenAI() as openai, FakePostHog() as posthog:
        # (raw_responses makes two calls)
        return record("openai_media_app", SCENARIOS, env_for(openai, posthog), posthog, openai, len(SCENARIOS) + 1)


@pytest.fixture(scope="module")
def private_spans():
    with FakeOpenAI() as openai, FakePostHog() as posthog:
        result = run_scenarios(
            "openai_media_app", PRIVATE_SCENARIOS, env_for(openai, posthog, POSTHOG_PRIVACY_MODE="true")
        )
        assert result.returncode == 0, result.stderr
        return posthog.wait_for_spans(len(PRIVATE_SCENARIOS))


def spans_of(recorded, model: str, stream: bool = False) -> list:
    return [
        s
        for s in recorded.spans
        if s["attributes"]["gen_ai.request.model"] == model
        and bool(s["attributes"].get("gen_ai.request.stream")) == stream
    ]


def only(spans: list) -> dict:
    assert len(spans) == 1, [s["name"] for s in spans]
    return spans[0]


def test_every_call_is_a_generation_of_openai(recorded):
    for span in recorded.spans:
        attrs = span["attributes"]
        # text_completion and generate_content are sent as "chat": PostHog makes a generation of nothing else.
        assert attrs["gen_ai.operation.name"] == "chat", span["name"]
        assert attrs["gen_ai.provider.name"] == "openai"
        assert span["name"].split(" ")[0] in ("text_completion", "generate_content")


def test_no_audio_or_image_bytes_reach_the_export(recorded, private_spans):
    exported = json.dumps([s["attributes"] for s in recorded.spans + private_spans])
    for marker in MEDIA_BYTES:
        assert marker not in exported
    # The uploads did reach the stand-in, as multipart files.
    uploads = [r["json"] for r in recorded.requests if r["path"] == "/v1/audio/transcriptions"]
    assert uploads[0]["file"] == {"filename": "meeting.mp3", "size": len(b"ID3\x04\x00FAKE-UPLOADED-AUDIO-BYTES")}


def test_legacy_completion(recorded):
    span = only(
        [
            s
            for s in spans_of(recorded, "gpt-3.5-turbo-instruct")
            if s["attributes"].get("gen_ai.request.max_tokens") == 20
        ]
    )
    attrs = span["attributes"]
    assert span["name"] == "text_completion gpt-3.5-turbo-instruct"
    assert attrs["gen_ai.response.model"] == "gpt-3.5-turbo-instruct-2024-08-06"
    assert attrs["gen_ai.response.id"].startswith("cmpl-")
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7)
    assert (attrs["$ai_temperature"], attrs["$ai_stop_reason"], attrs["$ai_http_status"]) == (0.2, "stop", 200)
    assert attrs["posthog.distinct_id"] == "user-42"  # the request's `user`
    assert posthog_input(span) == [{"role": "user", "content": "Say hello"}]
    assert posthog_output(span) == [{"role": "assistant", "content": [{"type": "text", "text": wire.COMPLETION_TEXT}]}]

    two = only(
        [
            s
            for s in spans_of(recorded, "gpt-3.5-turbo-instruct")
            if s["attributes"].get("gen_ai.request.max_tokens") == 5
        ]
    )
    assert [m["content"] for m in posthog_input(two)] == ["First", "Second"]
    assert len(posthog_output(two)) == 2
    assert two["attributes"]["gen_ai.response.finish_reasons"] == ["stop", "length"]


def test_legacy_completion_streams_get_usage_the_app_does_not_see(recorded):
    assert "completion_stream 4 ' Hello from fake OpenAI' 0" in recorded.stdout  # no usage chunk for the app
    streams = spans_of(recorded, "gpt-3.5-turbo-instruct", stream=True)
    assert len(streams) == 2  # sync and async
    for span in streams:
        attrs = span["attributes"]
        assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7)
        assert attrs["$ai_stream"] is True
        assert posthog_output(span)[0]["content"] == [{"type": "text", "text": wire.COMPLETION_TEXT}]
    asked = [
        r["json"].get("stream_options")
        for r in recorded.requests
        if r["path"] == "/v1/completions" and r["json"].get("stream")
    ]
    assert asked == [{"include_usage": True}] * 2 + [None] * 2  # instrumented run, then the plain one


def test_token_billed_transcription(recorded):
    span = only(spans_of(recorded, "gpt-4o-transcribe"))
    attrs = span["attributes"]
    assert span["name"] == "generate_content gpt-4o-transcribe"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (14, 45)
    assert attrs["$ai_audio_input_tokens"] == 10  # PostHog prices these at the model's audio rate
    assert attrs["$ai_model_parameters"] == {"language": "en"}
    assert posthog_input(span) == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "[audio: meeting.mp3]"}, {"type": "text", "text": "A meeting"}],
        }
    ]
    assert posthog_output(span) == [{"role": "assistant", "content": [{"type": "text", "text": wire.TRANSCRIPT}]}]

    streamed = only(spans_of(recorded, "gpt-4o-mini-transcribe", stream=True))["attributes"]
    assert (streamed["gen_ai.usage.input_tokens"], streamed["$ai_audio_input_tokens"]) == (14, 10)
    assert streamed["$ai_output_choices"][0]["content"][0]["text"] == wire.TRANSCRIPT


def test_duration_billed_transcription_and_translation(recorded):
    whisper = spans_of(recorded, "whisper-1")
    verbose = only([s for s in whisper if s["attributes"].get("openai.request.response_format") == "verbose_json"])
    attrs = verbose["attributes"]
    assert attrs["openai.audio.duration_seconds"] == wire.AUDIO_SECONDS  # the usage's, not the verbose duration
    assert "gen_ai.usage.input_tokens" not in attrs  # never estimated
    texts = [s for s in whisper if s["attributes"].get("openai.request.response_format") == "text"]
    assert len(texts) == 2  # called plainly and through with_raw_response
    for text in texts:
        assert posthog_output(text)[0]["content"][0]["text"] == wire.TRANSCRIPT + "\n"
    translation = only([s for s in whisper if "openai.request.response_format" not in s["attributes"]])
    assert posthog_output(translation)[0]["content"][0]["text"] == wire.TRANSLATION


def test_speech(recorded):
    tts = only(spans_of(recorded, "tts-1"))
    attrs = tts["attributes"]
    assert attrs["openai.request.speech.input_characters"] == len("Hello there, listener")
    assert attrs["$ai_model_parameters"] == {"voice": "alloy"}
    assert posthog_input(tts) == [{"role": "user", "content": "Hello there, listener"}]
    assert posthog_output(tts) == [{"role": "assistant", "content": [{"type": "text", "text": "[audio: mp3]"}]}]
    streamed = only(spans_of(recorded, "gpt-4o-mini-tts"))  # with_streaming_response
    assert posthog_input(streamed)[0] == {"role": "system", "content": "Cheerful"}
    assert streamed["attributes"]["$ai_model_parameters"] == {"voice": "coral", "response_format": "wav"}


def test_images(recorded):
    dalle = only(spans_of(recorded, "dall-e-3"))
    assert dalle["attributes"]["$ai_model_parameters"] == {"size": "1024x1792", "quality": "hd"}
    assert posthog_output(dalle)[0]["content"] == [
        {"type": "image", "image": wire.IMAGE_URL.format(index=0)},
        {"type": "text", "text": wire.REVISED_PROMPT},
    ]

    generated = only(
        [s for s in spans_of(recorded, "gpt-image-1") if s["attributes"].get("gen_ai.request.choice.count") == 2]
    )
    attrs = generated["attributes"]
    assert attrs["$ai_model_parameters"] == {"n": 2, "size": "1024x1024", "quality": "low"}
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (17, 544)
    assert attrs["$ai_image_output_tokens"] == 544
    assert posthog_output(generated)[0]["content"] == [{"type": "text", "text": "[image: png, 1024x1024]"}] * 2

    edit = only([s for s in spans_of(recorded, "gpt-image-1") if isinstance(posthog_input(s)[0]["content"], list)])
    assert posthog_input(edit)[0]["content"][0] == {"type": "text", "text": "Add a hat"}
    assert posthog_input(edit)[0]["content"][1:] == [{"type": "text", "text": "[image: photo.png]"}] * 2
    assert (edit["attributes"]["$ai_image_input_tokens"], edit["attributes"]["gen_ai.usage.input_tokens"]) == (323, 340)

    variation, raw = sorted(
        spans_of(recorded, "dall-e-2"), key=lambda s: s["attributes"].get("gen_ai.request.choice.count", 1)
    )[::-1]
    assert posthog_input(raw) == [{"role": "user", "content": "Raw fox"}]  # with_raw_response
    assert [item["image"] for item in posthog_output(raw)[0]["content"]] == [wire.IMAGE_URL.format(index=0)]
    assert posthog_input(variation) == [{"role": "user", "content": "[image: photo.png]"}]
    assert [item["image"] for item in posthog_output(variation)[0]["content"]] == [
        wire.IMAGE_URL.format(index=i) for i in (0, 1)
    ]
    assert variation["attributes"]["$ai_model_parameters"] == {"n": 2, "size": "256x256"}

    streamed = only(spans_of(recorded, "gpt-image-1", stream=True))["attributes"]
    assert (streamed["$ai_image_output_tokens"], streamed["$ai_stream"]) == (272, True)


def test_errors_carry_their_http_status(recorded):
    assert "transcribe_error BadRequestError 400" in recorded.stdout
    for model, status, error in (
        ("error-400", 400, "openai.BadRequestError"),
        ("error-429", 429, "openai.RateLimitError"),
    ):
        span = only(spans_of(recorded, model))
        assert span["status_code"] == "ERROR"
        assert (span["attributes"]["$ai_http_status"], span["attributes"]["error.type"]) == (status, error)


def test_privacy_mode_keeps_usage_and_drops_text(private_spans):
    assert len(private_spans) == len(PRIVATE_SCENARIOS)
    for span in private_spans:
        attrs = span["attributes"]
        assert "$ai_input" not in attrs and "$ai_output_choices" not in attrs
        assert not any(key.startswith("gen_ai.input") or key.startswith("gen_ai.output.messages") for key in attrs)
    transcription = next(s for s in private_spans if s["attributes"]["gen_ai.request.model"] == "gpt-4o-transcribe")
    assert transcription["attributes"]["$ai_audio_input_tokens"] == 10
