"""A bounded memory of recent keys, for what the app's thread notes at every call (span ids)."""

from __future__ import annotations

from typing import Any

_ABSENT: Any = object()


class RecentKeys:
    """The keys remembered most recently, with their values: at least the last ``size``, at most
    the last ``2 * size``.

    Two generations of plain dicts: a key goes into the newer one; when that is full it becomes
    the older one and the previous older one is dropped whole. Why not one dict that evicts its
    oldest key at each insert once full: a plain dict's oldest key is found by scanning past the
    slots its deletions left (``next(iter(d))``, over a microsecond at 4,096 keys, growing with
    the size), and an ``OrderedDict`` pays a linked node at every insert and an unlink at every
    eviction. Here an insert is one dict store, for the whole life of a long-running app.

    Safe across threads under the GIL: each step is one dict operation or one rebinding; a key
    stored into the newer dict just as it turns older is still found there.
    """

    __slots__ = ("_newer", "_older", "_size")

    def __init__(self, size: int):
        self._size = size
        self._newer: dict = {}
        self._older: dict = {}

    def remember(self, key: Any, value: Any = True) -> None:
        newer = self._newer
        newer[key] = value
        if len(newer) >= self._size:
            self._older, self._newer = newer, {}

    def get(self, key: Any, default: Any = None) -> Any:
        value = self._newer.get(key, _ABSENT)
        return self._older.get(key, default) if value is _ABSENT else value

    def pop(self, key: Any, default: Any = None) -> Any:
        value = self._newer.pop(key, _ABSENT)
        return self._older.pop(key, default) if value is _ABSENT else value

    def __contains__(self, key: Any) -> bool:
        return key in self._newer or key in self._older

    def __bool__(self) -> bool:
        return bool(self._newer) or bool(self._older)
