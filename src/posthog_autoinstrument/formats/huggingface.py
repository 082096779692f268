"""Hugging Face inference (``huggingface_hub.InferenceClient``): which provider served a call, and
text generation (TGI's ``generated_text`` with its optional ``details``).

Chat completions speak OpenAI's chat wire format (see :mod:`.openai_chat`).
"""

from __future__ import annotations

from typing import Any, Optional

from ..genai import messages as m
from ..genai.call_types import Usage
from .fields import get, integer

# A model given as a URL (an Inference Endpoint, a TGI or vLLM server) or a ``base_url``: no
# inference provider routes it, the endpoint's owner serves it.
ENDPOINT_PROVIDER = "huggingface"
# Provider names the client takes but that pick one (server- or client-side): not a provider.
ROUTING_POLICIES = frozenset({"auto", "fastest", "cheapest", "preferred"})
# The response header Hugging Face's router names the provider it chose in.
PROVIDER_HEADER = "x-inference-provider"


def is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def chosen_provider(provider: Any) -> Optional[str]:
    """The provider the app named on the client (``provider="together"``), None for a routing
    policy or none at all."""
    if isinstance(provider, str) and provider and provider not in ROUTING_POLICIES:
        return provider
    return None


def routed_provider(helper_provider: Any, endpoint_url: bool) -> Optional[str]:
    """The provider the client's request helper routes to: the endpoint's owner for a URL model
    (the helper says ``hf-inference`` there), None while the router has yet to choose."""
    if endpoint_url:
        return ENDPOINT_PROVIDER
    return chosen_provider(helper_provider)


# -- text generation -------------------------------------------------------------------------

# TGI's finish reasons in the conventions' terms.
_FINISH_REASONS = {"eos_token": "stop", "stop_sequence": "stop", "length": "length"}


def finish_reason(reason: Any) -> Optional[str]:
    if not isinstance(reason, str) or not reason:
        return None
    return _FINISH_REASONS.get(reason, reason)


def text_generation_result(result: Any) -> tuple:
    """(text, finish reason, Usage or None) of ``text_generation``'s result: the text alone, or a
    ``TextGenerationOutput`` whose ``details`` count the generated tokens (and, with
    ``decoder_input_details``, the prompt's)."""
    if isinstance(result, str):
        return result, None, None
    details = get(result, "details")
    if details is None:
        return get(result, "generated_text"), None, None
    prefill = get(details, "prefill")
    usage = Usage(
        input_tokens=len(prefill) if isinstance(prefill, list) and prefill else None,
        output_tokens=integer(get(details, "generated_tokens")),
    )
    return get(result, "generated_text"), finish_reason(get(details, "finish_reason")), usage


class TextGenerationBuffer:
    """A streamed ``text_generation``: tokens as text (``details=False``) or stream outputs, whose
    last one carries the whole text and the details."""

    __slots__ = ("pieces", "final_text", "reason", "usage")

    def __init__(self):
        self.pieces: list = []
        self.final_text: Optional[str] = None
        self.reason: Optional[str] = None
        self.usage: Optional[Usage] = None

    def add(self, chunk: Any, capture: bool) -> None:
        if isinstance(chunk, str):
            if capture:
                self.pieces.append(chunk)
            return
        token = get(chunk, "token")
        if capture and token is not None and not get(token, "special") and isinstance(get(token, "text"), str):
            self.pieces.append(get(token, "text"))
        text = get(chunk, "generated_text")
        if isinstance(text, str):
            self.final_text = text
        details = get(chunk, "details")
        if details is not None:
            self.reason = finish_reason(get(details, "finish_reason"))
            self.usage = Usage(output_tokens=integer(get(details, "generated_tokens")))

    def output(self) -> list:
        text = self.final_text if self.final_text is not None else "".join(self.pieces)
        return [m.output_message([m.text(text)], self.reason)]


def embedding_texts(text: Any) -> list:
    """``feature_extraction``'s input: one text or several."""
    if isinstance(text, str):
        return [text]
    return [t for t in text if isinstance(t, str)] if isinstance(text, (list, tuple)) else []


def embedding_dimensions(result: Any) -> Optional[int]:
    """The length of one embedding in ``feature_extraction``'s array (its last axis)."""
    shape = getattr(result, "shape", None)
    return int(shape[-1]) if isinstance(shape, tuple) and shape else None
