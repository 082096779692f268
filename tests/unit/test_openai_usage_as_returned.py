"""A chat completion is translated on the export thread, later than it is returned; its token
counts are read when it is returned, since a framework may rewrite them in place before that
(Instructor writes the running total of its attempts into each attempt's response)."""

from __future__ import annotations

import pytest

openai_types = pytest.importorskip("openai.types.chat")

from posthog_autoinstrument.formats import openai_chat  # noqa: E402
from posthog_autoinstrument.instrumentation.openai import _usage_as_returned  # noqa: E402


def completion():
    return openai_types.ChatCompletion.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [],
            "usage": {
                "prompt_tokens": 11,
                "completion_tokens": 7,
                "total_tokens": 18,
                "prompt_tokens_details": {"cached_tokens": 3},
                "completion_tokens_details": {"reasoning_tokens": 2},
            },
        }
    )


def test_counts_rewritten_after_the_call_are_not_recorded():
    returned = completion()
    snapshot = _usage_as_returned(returned)
    # What Instructor's update_total_usage does to a second attempt's response.
    returned.usage.prompt_tokens = 22
    returned.usage.completion_tokens = 14
    returned.usage.prompt_tokens_details = returned.usage.prompt_tokens_details.model_copy(update={"cached_tokens": 6})
    usage = openai_chat.usage(snapshot)
    assert (usage.input_tokens, usage.output_tokens) == (11, 7)
    assert usage == openai_chat.usage(completion().usage)


def test_plain_dicts_and_missing_usage_pass_through():
    assert _usage_as_returned({"usage": {"prompt_tokens": 1}}) is None  # (a dict completion: read later as it is)
    assert _usage_as_returned(object()) is None
