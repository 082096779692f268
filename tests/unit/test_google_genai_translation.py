"""Translation of google-genai shapes into the conventions' terms, without the SDK's HTTP."""

from types import SimpleNamespace as NS

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
    assert g._contents("hi") == [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    call = {"function_call": {"name": "f", "args": {"x": 1}}}
    answer = {"function_response": {"name": "f", "response": {"ok": True}}}
    messages = g._contents(["a", {"text": "b"}, call, answer, {"role": "model", "parts": [{"text": "done"}]}])
    assert messages == [
        {"role": "user", "parts": [{"type": "text", "content": "a"}, {"type": "text", "content": "b"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "name": "f", "arguments": {"x": 1}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "response": {"ok": True}}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "done"}]},
    ]


def test_media_parts():
    inline = g._part({"inline_data": {"data": b"\x89PNG", "mime_type": "image/png"}})
    assert inline == {"type": "blob", "modality": "image", "content": "iVBORw==", "mime_type": "image/png"}
    uploaded = g._part({"file_data": {"file_uri": "gs://b/doc.pdf", "mime_type": "application/pdf"}})
    assert uploaded == {"type": "uri", "modality": "document", "uri": "gs://b/doc.pdf", "mime_type": "application/pdf"}

    class PngImageFile:  # stands in for a PIL image: never read
        __module__ = "PIL.PngImagePlugin"

        @property
        def text(self):
            raise AssertionError("the image was read")

    assert g._part(PngImageFile()) == {"type": "image"}
    assert g._part({"text": "", "thought_signature": b"sig"}) is None


def test_usage_counts_tool_prompts_as_input_and_keeps_thoughts_apart():
    usage = g._usage(NS(prompt_token_count=10, tool_use_prompt_token_count=4, candidates_token_count=6,
                        cached_content_token_count=2, thoughts_token_count=3))
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens, usage.reasoning_tokens) == (14, 6, 2, 3)


def test_finish_reasons():
    assert g._finish_reason("STOP") == "stop"
    assert g._finish_reason("MAX_TOKENS") == "length"
    assert g._finish_reason("SAFETY") == "content_filter"
    assert g._finish_reason("MALFORMED_FUNCTION_CALL") == "malformed_function_call"
    assert g._finish_reason("FINISH_REASON_UNSPECIFIED") is None


def test_stream_accumulator_merges_parts_and_keeps_the_last_usage():
    def chunk(parts, reason=None, usage=None):
        candidate = NS(index=None, finish_reason=reason, content=NS(parts=parts))
        return NS(model_version="gemini-x", response_id="r1", usage_metadata=usage, prompt_feedback=None,
                  candidates=[candidate])

    accumulator = g.GenerateContentStreamAccumulator(capture=True)
    accumulator.on_chunk(chunk([NS(text="think ", thought=True)], usage=NS(prompt_token_count=5)))
    accumulator.on_chunk(chunk([NS(text="more", thought=True)], usage=NS(prompt_token_count=5)))
    accumulator.on_chunk(chunk([NS(text="Hel", thought=None)]))
    accumulator.on_chunk(chunk([NS(text="lo", thought=None)], "STOP",
                               NS(prompt_token_count=5, candidates_token_count=2, thoughts_token_count=1)))
    call = InferenceCall(_Span(), capture_content=True)
    accumulator.finish(call)
    call.end()
    attrs = call.span.attributes
    assert attrs["gen_ai.usage.output_tokens"] == 2 and attrs["gen_ai.usage.reasoning.output_tokens"] == 1
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert '"parts":[{"type":"reasoning","content":"think more"},{"type":"text","content":"Hello"}]' in attrs[
        "gen_ai.output.messages"]


def test_a_function_call_is_the_finish_reason_even_without_content_capture():
    part = NS(text=None, thought=None, function_call=NS(id=None, name="f", args={}))
    chunk = NS(model_version="m", response_id="r", usage_metadata=None, prompt_feedback=None,
               candidates=[NS(index=0, finish_reason="STOP", content=NS(parts=[part]))])
    accumulator = g.GenerateContentStreamAccumulator(capture=False)
    accumulator.on_chunk(chunk)
    call = InferenceCall(_Span(), capture_content=False)
    accumulator.finish(call)
    call.end()
    assert call.span.attributes["gen_ai.response.finish_reasons"] == ["tool_call"]
    assert "gen_ai.output.messages" not in call.span.attributes
