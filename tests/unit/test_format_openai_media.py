"""OpenAI's legacy completions, audio and image wire formats (formats/openai_completions.py,
formats/openai_media.py) on saved payloads, parsed by the SDK's own types where it has them."""

from __future__ import annotations

import io

from openai.types import Completion, ImagesResponse
from openai.types.audio import Transcription, TranscriptionVerbose

from posthog_autoinstrument.formats import openai_completions, openai_media
from posthog_autoinstrument.genai import Usage, semconv

COMPLETION = {
    "id": "cmpl-1",
    "object": "text_completion",
    "created": 1,
    "model": "gpt-3.5-turbo-instruct",
    "choices": [
        {"text": " second", "index": 1, "logprobs": None, "finish_reason": "length"},
        {"text": " first", "index": 0, "logprobs": None, "finish_reason": "stop"},
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
}


def test_completion_prompt_shapes():
    assert openai_completions.input_messages("Hi") == [{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]
    assert [m["parts"][0]["content"] for m in openai_completions.input_messages(["a", [1, 2, 3]])] == [
        "a",
        "[3 prompt tokens]",
    ]
    assert openai_completions.input_messages([5, 6]) == [
        {"role": "user", "parts": [{"type": "text", "content": "[2 prompt tokens]"}]}
    ]
    assert openai_completions.input_messages(None) == []


def test_completion_choices_in_index_order():
    choices = Completion.model_validate(COMPLETION).choices
    output = openai_completions.output_messages(choices)
    assert [(m["parts"][0]["content"], m["finish_reason"]) for m in output] == [
        (" first", "stop"),
        (" second", "length"),
    ]
    assert openai_completions.finish_reasons(choices) == ["length", "stop"]


def test_streamed_completion_choices():
    buffers: dict = {}
    openai_completions.add_chunk_choices(buffers, [{"index": 0, "text": "Hel", "finish_reason": None}], capture=True)
    openai_completions.add_chunk_choices(buffers, [{"index": 0, "text": "lo", "finish_reason": "stop"}], capture=True)
    reasons, output = openai_completions.streamed_output(buffers)
    assert reasons == ["stop"]
    assert output == [{"role": "assistant", "parts": [{"type": "text", "content": "Hello"}], "finish_reason": "stop"}]
    private: dict = {}
    openai_completions.add_chunk_choices(
        private, [{"index": 0, "text": "secret", "finish_reason": "stop"}], capture=False
    )
    assert private[0].text == [] and private[0].finish_reason == "stop"


def test_uploaded_files_are_noted_by_name_only():
    named = io.BytesIO(b"RIFF")
    named.name = "/tmp/clip.wav"
    assert openai_media.file_name(("a.mp3", b"bytes", "audio/mpeg")) == "a.mp3"
    assert openai_media.file_name(named) == "clip.wav"
    assert openai_media.file_name(b"raw bytes") is None
    assert openai_media.audio_input(b"raw bytes", None) == [
        {"role": "user", "parts": [{"type": "text", "content": "[audio]"}]}
    ]


def test_token_and_duration_usage_of_transcriptions():
    tokens = openai_media.audio_result(
        Transcription.model_validate(
            {
                "text": "hi",
                "usage": {
                    "type": "tokens",
                    "input_tokens": 14,
                    "output_tokens": 45,
                    "total_tokens": 59,
                    "input_token_details": {"text_tokens": 4, "audio_tokens": 10},
                },
            }
        )
    )
    assert (tokens.text, tokens.usage) == ("hi", Usage(input_tokens=14, output_tokens=45))
    assert tokens.attributes == {semconv.USAGE_AUDIO_INPUT_TOKENS: 10}

    verbose = openai_media.audio_result(
        TranscriptionVerbose.model_validate(
            {"text": "hi", "language": "english", "duration": 8.47, "usage": {"type": "duration", "seconds": 9}}
        )
    )
    assert verbose.usage is None
    assert verbose.attributes == {semconv.OPENAI_AUDIO_DURATION_SECONDS: 9.0}  # billed seconds win
    assert openai_media.audio_result("plain text\n").text == "plain text\n"


def test_image_output_never_holds_base64():
    response = ImagesResponse.model_validate(
        {
            "created": 1,
            "output_format": "webp",
            "size": "1024x1536",
            "data": [{"b64_json": "QUJD"}, {"url": "https://example.com/a.png", "revised_prompt": "A fox"}],
            "usage": {
                "input_tokens": 340,
                "input_tokens_details": {"image_tokens": 323, "text_tokens": 17},
                "output_tokens": 272,
                "total_tokens": 612,
            },
        }
    )
    (message,) = openai_media.image_output(response)
    assert message["parts"] == [
        {"type": "text", "content": "[image: webp, 1024x1536]"},
        {"type": "uri", "modality": "image", "uri": "https://example.com/a.png"},
        {"type": "text", "content": "A fox"},
    ]
    usage, extra = openai_media.image_usage(response.usage)
    assert usage == Usage(input_tokens=340, output_tokens=272)
    assert extra == {semconv.USAGE_IMAGE_INPUT_TOKENS: 323, semconv.USAGE_IMAGE_OUTPUT_TOKENS: 272}
