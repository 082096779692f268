"""OpenAI's chat format as the SDKs of OpenAI-compatible providers speak it (Groq, Together).

Their messages, tools, completions and chunks are :mod:`.openai_chat`'s. What differs: finish
reasons beyond OpenAI's (``eos``), reasoning as text (``reasoning`` or ``reasoning_content``), and
streams that report usage on their own, sometimes in a vendor field (Groq's ``x_groq.usage``).
"""

from __future__ import annotations

from typing import Any, Optional

from ..genai import messages as m
from . import openai_chat
from .fields import get

# Finish reasons beyond OpenAI's that these providers send.
_EXTRA_FINISH_REASONS = {"eos": "stop"}


def finish_reason(reason: Any) -> Optional[str]:
    if isinstance(reason, str) and reason in _EXTRA_FINISH_REASONS:
        return _EXTRA_FINISH_REASONS[reason]
    return openai_chat.finish_reason(reason)


def reasoning_text(message: Any) -> Optional[str]:
    """A message's or delta's reasoning, which these providers send as text."""
    if message is None:
        return None
    text = get(message, "reasoning") or get(message, "reasoning_content")
    return text if isinstance(text, str) and text else None


def chat_usage(owner: Any) -> Any:
    """The completion's usage, or the vendor's copy of it (Groq puts it in ``x_groq`` on streams)."""
    usage = get(owner, "usage")
    if usage is None:
        vendor = get(owner, "x_groq")
        usage = get(vendor, "usage") if vendor is not None else None
    # Groq's non-streamed x_groq.usage holds hardware-cache statistics, not token counts.
    if usage is not None and get(usage, "prompt_tokens") is None and get(usage, "completion_tokens") is None:
        return None
    return usage


def completion_outputs(completion: Any) -> tuple:
    """(output messages, finish reasons) of a completion, reasoning first in each message."""
    choices = get(completion, "choices") or ()
    reasons = [finish_reason(get(choice, "finish_reason")) for choice in choices]
    outputs = []
    for choice, reason in zip(choices, reasons):
        message = get(choice, "message")
        output = openai_chat.output_message(message, reason)
        reasoning = reasoning_text(message)
        if reasoning:
            output["parts"].insert(0, m.reasoning(reasoning))
        outputs.append(output)
    return outputs, reasons
