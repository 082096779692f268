"""Hugging Face inference (formats/huggingface.py and the adapter's routing hooks): which provider
served a call, and TGI's text generation, on saved payloads parsed by huggingface_hub's own types."""

from __future__ import annotations

from types import SimpleNamespace

import numpy
from huggingface_hub import TextGenerationOutput, TextGenerationStreamOutput

from posthog_autoinstrument.formats import huggingface as hf
from posthog_autoinstrument.genai import Usage, semconv
from posthog_autoinstrument.instrumentation import huggingface as adapter


def test_provider_names():
    assert hf.chosen_provider("together") == "together"
    assert [hf.chosen_provider(policy) for policy in ("auto", "fastest", "cheapest", None, "")] == [None] * 5
    assert hf.routed_provider("hf-inference", endpoint_url=True) == "huggingface"  # a URL: its own endpoint
    assert hf.routed_provider("hf-inference", endpoint_url=False) == "hf-inference"
    assert hf.routed_provider("auto", endpoint_url=False) is None  # the router has yet to choose


def test_text_generation_with_and_without_details():
    assert hf.text_generation_result("just text") == ("just text", None, None)
    detailed = TextGenerationOutput.parse_obj_as_instance(
        {
            "generated_text": " out",
            "details": {
                "finish_reason": "eos_token",
                "generated_tokens": 4,
                "seed": None,
                "prefill": [{"id": 1, "text": "a", "logprob": None}] * 3,
                "tokens": [],
            },
        }
    )
    assert hf.text_generation_result(detailed) == (" out", "stop", Usage(input_tokens=3, output_tokens=4))


def test_streamed_text_generation_skips_special_tokens():
    buffer = hf.TextGenerationBuffer()
    for event in (
        {"index": 1, "token": {"id": 1, "text": "Hi", "logprob": 0.0, "special": False}},
        {
            "index": 2,
            "token": {"id": 2, "text": "</s>", "logprob": 0.0, "special": True},
            "generated_text": "Hi",
            "details": {"finish_reason": "length", "generated_tokens": 2, "seed": None},
        },
    ):
        buffer.add(TextGenerationStreamOutput.parse_obj_as_instance(event), capture=True)
    assert buffer.output() == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Hi"}], "finish_reason": "length"}
    ]
    assert buffer.usage == Usage(output_tokens=2)


def test_embedding_shape_only():
    assert hf.embedding_dimensions(numpy.zeros((2, 384), dtype="float32")) == 384
    assert hf.embedding_texts(["a", 3, "b"]) == ["a", "b"]


class _Call:
    ended = False

    def __init__(self):
        self.attributes = {}

    def set_attribute(self, key, value):
        self.attributes[key] = value


def test_the_routers_header_names_the_provider_it_chose(monkeypatch):
    call = _Call()
    monkeypatch.setattr(adapter, "active_call", lambda: call)
    adapter._current.set(call)
    response = SimpleNamespace(
        headers={"x-inference-provider": "novita"},
        request=SimpleNamespace(url="https://router.huggingface.co/v1/chat/completions"),
    )
    assert adapter.note_response(lambda r: "checked", None, (response,), {}) == "checked"
    assert call.attributes == {
        semconv.PROVIDER_NAME: "novita",
        semconv.SERVER_ADDRESS: "router.huggingface.co",
        semconv.SERVER_PORT: 443,
    }
    other = _Call()  # a call that is not ours is left alone
    monkeypatch.setattr(adapter, "active_call", lambda: other)
    adapter.note_response(lambda r: None, None, (response,), {})
    assert other.attributes == {}
