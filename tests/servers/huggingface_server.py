"""A loopback stand-in for what ``huggingface_hub.InferenceClient`` talks to: a text-generation
server (TGI / an Inference Endpoint) at a URL, Hugging Face's inference router, and the Hub's
model API that says which providers serve a model.

* ``/tgi``: an endpoint at a URL (``InferenceClient(model=URL)``). ``POST /tgi`` is TGI's
  text generation (``{"inputs", "parameters", "stream"}``: a list of ``{"generated_text",
  "details"}``, or server-sent token events) or, with ``/tgi/embed`` as the URL, TEI's feature
  extraction (a list of vectors); ``POST /tgi/v1/chat/completions`` OpenAI's chat format.
* ``/v1/chat/completions``: the same chat for ``InferenceClient(base_url=...)``.
* ``/router/{provider}/...``: the router (the app points ``constants.INFERENCE_PROXY_TEMPLATE``
  here): chat for any provider, and ``hf-inference`` text generation and feature extraction under
  ``/models/{model}``. Every answer names the provider in ``x-inference-provider``, as the router does.
* ``GET /api/models/{model}``: the Hub's model info with its ``inferenceProviderMapping``
  (``HF_ENDPOINT`` points here).

A model named ``error-<status>`` answers with that status and TGI's error JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any, Optional

from . import openai_wire as wire
from ._http import JSONHandler, RecordingServer

GENERATED_TEXT = " Hello from fake TGI"
GENERATED_TOKENS = 5
PROMPT_TOKEN_IDS = [1, 15043, 3186]
EMBEDDING = [0.25, -0.5, 0.125, 0.0625]
SERVED_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
EMBEDDING_MODELS = frozenset({"BAAI/bge-small-en-v1.5"})
# Base models that only a provider's completions API serves (client-side routing picks it).
TEXT_MODELS = {"mistralai/Mistral-7B-v0.1": "mistralai/Mistral-7B-v0.1-turbo"}
# The model id each provider knows a Hub model by (the Hub's inferenceProviderMapping).
PROVIDER_MODEL_IDS = {
    "together": "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
    "fireworks-ai": "accounts/fireworks/models/llama-v3p1-8b-instruct",
    "hf-inference": SERVED_MODEL,
}


class FakeHuggingFace(RecordingServer):
    def __init__(self) -> None:
        super().__init__()
        self.handler_class = _Handler

    @property
    def endpoint_url(self) -> str:
        return self.root_url + "/tgi"

    @property
    def router_template(self) -> str:
        """The value for ``huggingface_hub.constants.INFERENCE_PROXY_TEMPLATE``."""
        return self.root_url + "/router/{provider}"


class _Handler(JSONHandler):
    server_version = "fake-tgi/1"

    def do_GET(self) -> None:  # noqa: N802
        path, query = self.split_path()
        self.owner._record(
            {"method": "GET", "path": path, "query": query, "headers": self.lowered_headers(), "json": None}
        )
        match = re.fullmatch(r"/api/models/(?P<model>.+)", path)
        if not match:
            return self.send_json(404, {"error": "Not Found"})
        model = match.group("model")
        if model in TEXT_MODELS:
            task = "text-generation"
            mapping = {"together": {"status": "live", "providerId": TEXT_MODELS[model], "task": task}}
        elif model in EMBEDDING_MODELS:
            task = "feature-extraction"
            mapping = {"hf-inference": {"status": "live", "providerId": model, "task": task}}
        else:
            task = "text-generation"
            mapping = {
                provider: {
                    "status": "live",
                    "providerId": provider_id,
                    "task": "text-generation" if provider == "hf-inference" else "conversational",
                }
                for provider, provider_id in PROVIDER_MODEL_IDS.items()
            }
        self.send_json(200, {"_id": "fake", "id": model, "pipeline_tag": task, "inferenceProviderMapping": mapping})

    def answer(self, path: str, query: dict, headers: dict, body: Any) -> None:
        provider = None
        match = re.fullmatch(r"/router/(?P<provider>[^/]+)(?P<rest>/.*)", path)
        if match:
            provider, path = match.group("provider"), match.group("rest")
        extra = {"x-inference-provider": provider} if provider else {}
        if not isinstance(body, dict):
            return self.send_json(400, {"error": "Failed to deserialize the JSON body", "error_type": "validation"})
        model = body.get("model") or ""
        status = re.fullmatch(r"error-(\d{3})", model)
        if status:
            return self.send_json(
                int(status.group(1)), {"error": f"Fake error for {model}", "error_type": "generation"}, extra
            )
        if path.endswith("/chat/completions"):
            return self._chat(body, extra)
        if path.endswith("/v1/completions"):  # a provider's OpenAI-style completions
            meta = wire.Meta(id=wire.new_id("cmpl-"), model=model)
            return self.send_json(
                200,
                dict(
                    wire.text_completion(body, meta),
                    choices=[{"text": GENERATED_TEXT, "index": 0, "logprobs": None, "finish_reason": "length"}],
                ),
                extra,
            )
        if path.endswith(("/embed", "/pipeline/feature-extraction")):
            inputs = body.get("inputs")
            count = len(inputs) if isinstance(inputs, list) else 1
            return self.send_json(200, [EMBEDDING] * count, extra)
        return self._generate(body, extra)

    def _chat(self, body: dict, extra: dict) -> None:
        meta = wire.Meta(id="", model=SERVED_MODEL)  # TGI sends an empty id
        reply = wire.chat_reply(body, "Hello from fake TGI")
        if body.get("stream"):
            self.start_chunked(200, "text/event-stream", extra)
            for chunk in wire.chat_chunks(body, reply, meta, azure=True):  # (no obfuscation padding)
                self.write_chunk(f"data: {json.dumps(chunk)}\n\n".encode())
            self.write_chunk(b"data: [DONE]\n\n")
            return self.end_chunked()
        self.send_json(200, wire.chat_completion(body, reply, meta), extra)

    def _generate(self, body: dict, extra: dict) -> None:
        parameters = body.get("parameters") or {}
        details = bool(parameters.get("details"))
        finish = "length" if parameters.get("max_new_tokens") == GENERATED_TOKENS else "eos_token"
        if body.get("stream"):
            self.start_chunked(200, "text/event-stream", extra)
            pieces = wire.split_into_pieces(GENERATED_TEXT, GENERATED_TOKENS)
            for index, piece in enumerate(pieces, 1):
                last = index == len(pieces)
                event = {
                    "index": index,
                    "token": {"id": 100 + index, "text": piece, "logprob": -0.1, "special": False},
                    "generated_text": GENERATED_TEXT if last else None,
                    "details": {"finish_reason": finish, "generated_tokens": GENERATED_TOKENS, "seed": None}
                    if last
                    else None,
                }
                self.write_chunk(f"data:{json.dumps(event)}\n\n".encode())
            return self.end_chunked()
        result: dict[str, Any] = {"generated_text": GENERATED_TEXT}
        if details:
            prefill = (
                [{"id": token, "text": "x", "logprob": None} for token in PROMPT_TOKEN_IDS]
                if parameters.get("decoder_input_details")
                else []
            )
            result["details"] = {
                "finish_reason": finish,
                "generated_tokens": GENERATED_TOKENS,
                "seed": None,
                "prefill": prefill,
                "tokens": [],
            }
        self.send_json(200, [result], extra)


def provider_of(request: dict) -> Optional[str]:
    match = re.fullmatch(r"/router/([^/]+)/.*", request["path"])
    return match.group(1) if match else None
