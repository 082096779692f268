"""Reading values from SDK objects, or the plain dicts an app passes instead."""

from __future__ import annotations

from typing import Any, Callable, Optional


def get(obj: Any, key: str, default: Any = None) -> Any:
    """Read a field from an SDK object or from the plain dict the app passed instead."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def reader(obj: Any) -> Callable[..., Any]:
    """A function reading ``obj``'s fields as ``get(obj, key, default)`` does, for an object
    three fields or more are read from (making it costs about a read): a dict's own ``get`` (a C
    call, no Python frame a field) for a dict, the usual shape of what is translated on the
    export thread (a parsed JSON body)."""
    if isinstance(obj, dict):
        return obj.get
    return _attribute_reader(obj)


def _attribute_reader(obj: Any) -> Callable[..., Any]:
    # (a Python function, not get bound by functools.partial: the interpreter runs a call from
    # Python code to Python code in place, where a call from C code starts it anew; and a
    # function of its own, so that reader() keeps ``obj`` in no closure cell for a dict)
    def read(key: str, default: Any = None) -> Any:
        return getattr(obj, key, default)

    return read


def optional_field(obj: Any, key: str) -> Any:
    """``get(obj, key)`` for a field that is often missing. A pydantic model answers a missing
    attribute from its ``__getattr__``, by raising an AttributeError that ``getattr`` catches:
    twenty times the cost of a field that is there. Its data is in ``__dict__`` (declared
    fields) and ``__pydantic_extra__`` (the others), which are looked in first; ``getattr``
    is asked only where the class itself defines the name (a property)."""
    if isinstance(obj, dict):
        return obj.get(key)
    extra: Any = getattr(obj, "__pydantic_extra__", _NOT_PYDANTIC)
    if extra is _NOT_PYDANTIC:
        return getattr(obj, key, None)
    values = getattr(obj, "__dict__", None)
    if values is not None and key in values:
        return values[key]
    if extra and key in extra:
        return extra[key]
    return getattr(obj, key, None) if _class_defines(type(obj), key) else None


_NOT_PYDANTIC = object()
# (type, name) -> whether the type or a base defines the name
_class_names: dict = {}


def _class_defines(kind: type, key: str) -> bool:
    answer = _class_names.get((kind, key))
    if answer is None:
        if len(_class_names) > 1024:
            _class_names.clear()
        answer = _class_names[(kind, key)] = any(key in vars(base) for base in kind.__mro__)
    return answer


def given(value: Any) -> bool:
    """False for None and for SDKs' "argument omitted" sentinels (NotGiven, Omit)."""
    return value is not None and (type(value) in _PLAIN_TYPES or type(value).__name__ not in OMITTED)


# The type names of the "argument omitted" sentinels of OpenAI's and Anthropic's SDKs.
OMITTED = frozenset({"NotGiven", "Omit", "_NotGiven", "_Omit"})
# The types most arguments have, none a sentinel: looked up first, as the name of a built-in
# type is a new string at each read (hashed anew to be looked up in OMITTED).
_PLAIN_TYPES = frozenset({str, int, float, bool, list, dict, tuple})


def arg(kwargs: dict, name: str, default: Any = None) -> Any:
    """A keyword argument the app gave, else ``default``."""
    value = kwargs.get(name)
    # (given(), inlined: runs ~10 times a call)
    if value is None or (type(value) not in _PLAIN_TYPES and type(value).__name__ in OMITTED):
        return default
    return value


def number(value: Any) -> Any:
    """A number the app passed (``True`` is not one), else None."""
    if value is None:
        return None
    if type(value) in _NUMBER_TYPES:  # (most numbers: one lookup, where isinstance tries each type)
        return value
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


_NUMBER_TYPES = frozenset({int, float})


def integer(value: Any) -> Optional[int]:
    """A number as an ``int`` (a float is truncated), else None."""
    return int(value) if number(value) is not None else None
