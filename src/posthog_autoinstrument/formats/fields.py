"""Reading values from SDK objects, or the plain dicts an app passes instead."""

from __future__ import annotations

from typing import Any, Optional


def get(obj: Any, key: str, default: Any = None) -> Any:
    """Read a field from an SDK object or from the plain dict the app passed instead."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def given(value: Any) -> bool:
    """False for None and for SDKs' "argument omitted" sentinels (NotGiven, Omit)."""
    return value is not None and type(value).__name__ not in OMITTED


# The type names of the "argument omitted" sentinels of OpenAI's and Anthropic's SDKs.
OMITTED = frozenset({"NotGiven", "Omit", "_NotGiven", "_Omit"})


def arg(kwargs: dict, name: str, default: Any = None) -> Any:
    """A keyword argument the app gave, else ``default``."""
    value = kwargs.get(name)
    if value is None or type(value).__name__ in OMITTED:  # given(), inlined: runs ~10 times a call
        return default
    return value


def number(value: Any) -> Any:
    """A number the app passed (``True`` is not one), else None."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def integer(value: Any) -> Optional[int]:
    """A number as an ``int`` (a float is truncated), else None."""
    return int(value) if number(value) is not None else None
