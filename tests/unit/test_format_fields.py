"""Reading fields from SDK models and plain dicts (formats/fields.py)."""

from __future__ import annotations

import pydantic
import pytest

from posthog_autoinstrument.formats.fields import arg, get, given, number, optional_field, reader


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


class NotGiven:  # named as the SDKs' "argument omitted" sentinels are
    pass


class Omit:
    pass


class Tier(str):
    pass


class Level(int):
    pass


@pytest.mark.parametrize(
    "value, is_given, as_number",
    [
        (None, False, None),
        (NotGiven(), False, None),
        (Omit(), False, None),
        (0, True, 0),
        (0.2, True, 0.2),
        (True, True, None),
        (False, True, None),
        (Level(3), True, 3),
        ("0.2", True, None),
        (Tier("auto"), True, None),
        ([], True, None),
        ({}, True, None),
        ((), True, None),
        (object(), True, None),
    ],
)
def test_given_arguments_and_numbers(value, is_given, as_number):
    assert given(value) is is_given
    assert arg({"x": value}, "x", "default") == (value if is_given else "default")
    assert arg({}, "x", "default") == "default"
    assert number(value) is (value if as_number is not None else None) and number(value) == as_number


@pytest.mark.parametrize(
    "obj", [Usage(prompt_tokens=3, cached_tokens=2), Plain(), {"text": "d", "prompt_tokens": 1}, None]
)
@pytest.mark.parametrize("key", ["text", "prompt_tokens", "cached_tokens", "shout", "missing"])
def test_a_reader_reads_as_get_does(obj, key):
    assert reader(obj)(key) == get(obj, key)
    assert reader(obj)(key, "default") == get(obj, key, "default")
