"""Gemini's format (formats/gemini.py) on saved payloads and the google-genai SDK's own models:
contents, config, candidates, finish reasons, usage and streamed chunks, without the SDK's HTTP."""

from types import SimpleNamespace as NS

import pytest

from posthog_autoinstrument.formats import gemini
from posthog_autoinstrument.genai import InferenceRequest
from posthog_autoinstrument.genai import InferenceCall
from posthog_autoinstrument.instrumentation import google_genai as g


class _Span:
    def __init__(self):
        self.attributes = {}

    def set_attributes(self, attrs):
        self.attributes.update(attrs)

    def end(self):
        pass


def test_contents_are_grouped_as_the_sdk_groups_them():
    assert gemini.contents("hi") == [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    call = {"function_call": {"name": "f", "args": {"x": 1}}}
    answer = {"function_response": {"name": "f", "response": {"ok": True}}}
    messages = gemini.contents(["a", {"text": "b"}, call, answer, {"role": "model", "parts": [{"text": "done"}]}])
    assert messages == [
        {"role": "user", "parts": [{"type": "text", "content": "a"}, {"type": "text", "content": "b"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "name": "f", "arguments": {"x": 1}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "response": {"ok": True}}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "done"}]},
    ]


def test_media_parts():
    inline = gemini.part({"inline_data": {"data": b"\x89PNG", "mime_type": "image/png"}})
    assert inline == {"type": "blob", "modality": "image", "content": "iVBORw==", "mime_type": "image/png"}
    uploaded = gemini.part({"file_data": {"file_uri": "gs://b/doc.pdf", "mime_type": "application/pdf"}})
    assert uploaded == {"type": "uri", "modality": "document", "uri": "gs://b/doc.pdf", "mime_type": "application/pdf"}

    class PngImageFile:  # stands in for a PIL image: never read
        __module__ = "PIL.PngImagePlugin"

        @property
        def text(self):
            raise AssertionError("the image was read")

    assert gemini.part(PngImageFile()) == {"type": "image"}
    assert gemini.part({"text": "", "thought_signature": b"sig"}) is None


def test_usage_counts_tool_prompts_as_input_and_keeps_thoughts_apart():
    usage = gemini.usage(
        NS(
            prompt_token_count=10,
            tool_use_prompt_token_count=4,
            candidates_token_count=6,
            cached_content_token_count=2,
            thoughts_token_count=3,
        )
    )
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens, usage.reasoning_tokens) == (
        14,
        6,
        2,
        3,
    )


def test_finish_reasons():
    assert gemini.finish_reason("STOP") == "stop"
    assert gemini.finish_reason("MAX_TOKENS") == "length"
    assert gemini.finish_reason("SAFETY") == "content_filter"
    assert gemini.finish_reason("MALFORMED_FUNCTION_CALL") == "malformed_function_call"
    assert gemini.finish_reason("FINISH_REASON_UNSPECIFIED") is None


def test_stream_accumulator_merges_parts_and_keeps_the_last_usage():
    def chunk(parts, reason=None, usage=None):
        candidate = NS(index=None, finish_reason=reason, content=NS(parts=parts))
        return NS(
            model_version="gemini-x",
            response_id="r1",
            usage_metadata=usage,
            prompt_feedback=None,
            candidates=[candidate],
        )

    accumulator = g.GenerateContentStreamAccumulator(capture=True)
    accumulator.on_chunk(chunk([NS(text="think ", thought=True)], usage=NS(prompt_token_count=5)))
    accumulator.on_chunk(chunk([NS(text="more", thought=True)], usage=NS(prompt_token_count=5)))
    accumulator.on_chunk(chunk([NS(text="Hel", thought=None)]))
    accumulator.on_chunk(
        chunk(
            [NS(text="lo", thought=None)],
            "STOP",
            NS(prompt_token_count=5, candidates_token_count=2, thoughts_token_count=1),
        )
    )
    call = InferenceCall(_Span(), capture_content=True)
    accumulator.finish(call)
    call.end()
    attrs = call.span.attributes
    assert attrs["gen_ai.usage.output_tokens"] == 2 and attrs["gen_ai.usage.reasoning.output_tokens"] == 1
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert (
        '"parts":[{"type":"reasoning","content":"think more"},{"type":"text","content":"Hello"}]'
        in attrs["gen_ai.output.messages"]
    )


def test_a_function_call_is_the_finish_reason_even_without_content_capture():
    part = NS(text=None, thought=None, function_call=NS(id=None, name="f", args={}))
    chunk = NS(
        model_version="m",
        response_id="r",
        usage_metadata=None,
        prompt_feedback=None,
        candidates=[NS(index=0, finish_reason="STOP", content=NS(parts=[part]))],
    )
    accumulator = g.GenerateContentStreamAccumulator(capture=False)
    accumulator.on_chunk(chunk)
    call = InferenceCall(_Span(), capture_content=False)
    accumulator.finish(call)
    call.end()
    assert call.span.attributes["gen_ai.response.finish_reasons"] == ["tool_call"]
    assert "gen_ai.output.messages" not in call.span.attributes


# A generateContent response as the Gemini API returns it: a function call (finish reason STOP),
# thoughts, cached and tool-use prompt tokens.
RESPONSE = {
    "candidates": [
        {
            "index": 0,
            "finishReason": "STOP",
            "content": {
                "role": "model",
                "parts": [
                    {"text": "Need the weather.", "thought": True},
                    {"text": "Checking."},
                    {"functionCall": {"id": "fc_1", "name": "get_weather", "args": {"city": "Paris"}}},
                ],
            },
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 120,
        "candidatesTokenCount": 30,
        "cachedContentTokenCount": 100,
        "toolUsePromptTokenCount": 5,
        "thoughtsTokenCount": 12,
        "totalTokenCount": 167,
    },
    "modelVersion": "gemini-2.5-flash",
    "responseId": "resp_1",
}


def test_saved_response_through_the_sdks_model():
    types = pytest.importorskip("google.genai.types")
    response = types.GenerateContentResponse.model_validate(RESPONSE)
    outputs, reasons = gemini.response_outputs(response, capture=True)
    assert reasons == ["tool_call"]
    assert outputs == [
        {
            "role": "assistant",
            "finish_reason": "tool_call",
            "parts": [
                {"type": "reasoning", "content": "Need the weather."},
                {"type": "text", "content": "Checking."},
                {"type": "tool_call", "id": "fc_1", "name": "get_weather", "arguments": {"city": "Paris"}},
            ],
        }
    ]
    usage = gemini.usage(response.usage_metadata)
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens, usage.reasoning_tokens) == (
        125,
        30,
        100,
        12,
    )
    assert gemini.response_outputs(response, capture=False) == (
        [{"role": "assistant", "finish_reason": "tool_call", "parts": []}],
        ["tool_call"],
    )


def test_a_blocked_prompt_has_no_candidates_and_a_content_filter_reason():
    types = pytest.importorskip("google.genai.types")
    blocked = types.GenerateContentResponse.model_validate({"promptFeedback": {"blockReason": "SAFETY"}})
    assert gemini.response_outputs(blocked, capture=True) == ([], ["content_filter"])


def test_config_request_parameters_and_tools():
    types = pytest.importorskip("google.genai.types")
    config = types.GenerateContentConfig(
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        max_output_tokens=256,
        stop_sequences=["END"],
        seed=7,
        candidate_count=2,
        response_mime_type="application/json",
        thinking_config=types.ThinkingConfig(thinking_level="HIGH"),
        system_instruction="Be terse.",
        tools=[
            types.Tool(
                function_declarations=[
                    types.FunctionDeclaration(
                        name="get_weather", description="Weather", parameters_json_schema={"type": "object"}
                    )
                ]
            ),
            types.Tool(google_search=types.GoogleSearch()),
        ],
    )
    request = gemini.request_parameters(InferenceRequest(provider="gcp.gemini", model="m"), config)
    assert (
        request.temperature,
        request.top_p,
        request.top_k,
        request.max_tokens,
        request.stop_sequences,
        request.seed,
        request.choice_count,
        request.output_type,
        request.reasoning_level,
    ) == (0.2, 0.9, 40, 256, ["END"], 7, 2, "json", "high")
    assert gemini.system_instructions(config.system_instruction) == [{"type": "text", "content": "Be terse."}]
    assert gemini.tool_definitions(config.tools) == [
        {"type": "function", "name": "get_weather", "description": "Weather", "parameters": {"type": "object"}},
        {"type": "google_search"},
    ]


def test_embeddings():
    response = {
        "embeddings": [
            {"values": [0.1, 0.2, 0.3], "statistics": {"token_count": 4}},
            {"values": [0.4, 0.5, 0.6], "statistics": {"token_count": 3}},
        ]
    }
    assert gemini.embedding_dimensions(response) == 3
    assert gemini.embedding_usage(response).input_tokens == 7  # Vertex AI: per embedding
    assert gemini.embedding_usage({"usage_metadata": {"prompt_token_count": 9}}).input_tokens == 9
    assert gemini.embedding_texts(["a", ["b", "c"]]) == ["a", "b c"]
