"""OpenAI's legacy completions wire format (``/v1/completions``), still served by fine-tuned and
open models behind OpenAI-compatible servers: a ``prompt`` in, text ``choices`` out, the usage of
chat completions.

Requests: :func:`input_messages` of the ``prompt``. Responses: :func:`output_messages` of the
``choices``. Streams: one :class:`~.openai_chat.ChoiceBuffer` per choice index gathers the text
(:func:`add_chunk_choices`).
"""

from __future__ import annotations

from typing import Any

from ..genai import messages as m
from .fields import get
from .openai_chat import ChoiceBuffer, finish_reason, ordered_choices


def input_messages(prompt: Any) -> list:
    """The ``prompt``: a string, a list of strings (one completion each), or token ids (one list,
    or a list of lists), which are noted by their count: we do not hold the tokenizer."""
    if isinstance(prompt, str):
        return [m.message("user", [m.text(prompt)])]
    if not isinstance(prompt, (list, tuple)) or not prompt:
        return []
    if all(isinstance(item, int) for item in prompt):
        return [m.message("user", [m.text(f"[{len(prompt)} prompt tokens]")])]
    messages = []
    for item in prompt:
        if isinstance(item, str):
            messages.append(m.message("user", [m.text(item)]))
        elif isinstance(item, (list, tuple)):
            messages.append(m.message("user", [m.text(f"[{len(item)} prompt tokens]")]))
    return messages


def output_messages(choices: Any) -> list:
    """One assistant message per choice, in index order: its text and finish reason."""
    ordered = sorted(choices or (), key=lambda choice: get(choice, "index") or 0)
    return [
        m.output_message([m.text(get(choice, "text") or "")], finish_reason(get(choice, "finish_reason")))
        for choice in ordered
    ]


def finish_reasons(choices: Any) -> list:
    reasons = (finish_reason(get(choice, "finish_reason")) for choice in choices or ())
    return [reason for reason in reasons if reason]


def add_chunk_choices(buffers: dict, choices: Any, capture: bool) -> None:
    """Folds one streamed chunk's ``choices`` into ``buffers`` (index -> ChoiceBuffer); the text
    only with ``capture``."""
    for choice in choices or ():
        index = get(choice, "index") or 0
        buffer = buffers.get(index)
        if buffer is None:
            buffer = buffers[index] = ChoiceBuffer()
        reason = get(choice, "finish_reason")
        if reason:
            buffer.finish_reason = reason
        text = get(choice, "text") if capture else None
        if text:
            buffer.text.append(text)


def streamed_output(buffers: dict) -> tuple:
    """(finish reasons, output messages) of the buffers a stream filled."""
    ordered = ordered_choices(buffers)
    reasons = [finish_reason(buffer.finish_reason) for buffer in ordered]
    return [r for r in reasons if r], [
        m.output_message(buffer.parts(), reason) for buffer, reason in zip(ordered, reasons)
    ]
