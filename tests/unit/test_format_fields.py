"""Reading fields from SDK models and plain dicts (formats/fields.py)."""

from __future__ import annotations

import pydantic
import pytest

from posthog_autoinstrument.formats.fields import get, optional_field


class Usage(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")

    prompt_tokens: int = 0
    details: dict | None = None

    @property
    def doubled(self) -> int:
        return 2 * self.prompt_tokens


class Strict(pydantic.BaseModel):
    text: str = "hi"


class Plain:
    def __init__(self):
        self.text = "plain"

    @property
    def shout(self) -> str:
        return self.text.upper()


@pytest.mark.parametrize(
    "obj, key, expected",
    [
        (Usage(prompt_tokens=3), "prompt_tokens", 3),
        (Usage(prompt_tokens=3, cached_tokens=2), "cached_tokens", 2),  # an extra field
        (Usage(prompt_tokens=3), "doubled", 6),  # a property
        (Usage(prompt_tokens=3), "missing", None),
        (Strict(), "text", "hi"),
        (Strict(), "missing", None),
        (Plain(), "text", "plain"),
        (Plain(), "shout", "PLAIN"),
        (Plain(), "missing", None),
        ({"cached_tokens": 1}, "cached_tokens", 1),
        ({}, "cached_tokens", None),
        (None, "anything", None),
    ],
)
def test_an_optional_field_reads_as_get_does(obj, key, expected):
    assert optional_field(obj, key) == get(obj, key) == expected


def test_a_missing_field_of_a_pydantic_model_is_not_asked_of_its_getattr(monkeypatch):
    asked = []
    original = pydantic.BaseModel.__getattr__

    def spy(self, name):
        asked.append(name)
        return original(self, name)

    monkeypatch.setattr(pydantic.BaseModel, "__getattr__", spy)
    usage = Usage(prompt_tokens=3, cached_tokens=2)
    assert optional_field(usage, "reasoning_tokens") is None
    assert optional_field(usage, "cached_tokens") == 2
    assert asked == []
    assert get(usage, "reasoning_tokens") is None and asked == ["reasoning_tokens"]
