"""Where in the application a call was made: the ``code.*`` attributes, found by walking up
the stack to the first frame that is neither a library's, the standard library's, nor ours."""

from __future__ import annotations

import os
import sys
import sysconfig
from types import CodeType, FrameType
from typing import Optional

from . import semconv

# (function, file, line) of the application code that made a call.
Caller = tuple[str, str, int]

_OUR_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_STDLIB = sysconfig.get_paths()["stdlib"]
_LIBRARY_PATH_MARKERS = ("site-packages", "dist-packages", "<frozen", "<string>")
# id(code) -> (code, from a library?). Keyed by id: a code object's hash is computed anew on
# every call, over its bytecode and constants (~1 µs for an SDK method). The entry holds the
# code object, so its id cannot be reused while the entry lives.
_is_library_code: dict[int, tuple[CodeType, bool]] = {}


def _classify_library(code: CodeType) -> bool:
    """Whether ``code`` is a library's (or ours), remembered in ``_is_library_code``, which
    ``find_caller`` reads first."""
    filename = code.co_filename
    known = (
        any(marker in filename for marker in _LIBRARY_PATH_MARKERS)
        or filename.startswith(_OUR_PACKAGE)
        or filename.startswith(_STDLIB)
    )
    if len(_is_library_code) > 4096:
        _is_library_code.clear()
    _is_library_code[id(code)] = (code, known)
    return known


def find_caller(depth: int = 1, frame: Optional[FrameType] = None) -> Optional[Caller]:
    """(function, file, line) of the application code that made the call: the first frame
    outside libraries, ``depth`` frames above this function's caller (or from ``frame``), so
    calls can be told apart by where they come from even without a trace name.

    Each frame looked at becomes a frame object (``f_back``), ~2.5k instructions on a chat call's
    path: a caller that knows where our own frames end passes that ``frame``.
    """
    current: Optional[FrameType] = sys._getframe(depth + 1) if frame is None else frame
    known = _is_library_code
    for _ in range(64):
        if current is None:
            return None
        code = current.f_code
        entry = known.get(id(code))  # read here, not in a call: runs for every frame of every call
        if not (entry[1] if entry is not None and entry[0] is code else _classify_library(code)):
            return getattr(code, "co_qualname", None) or code.co_name, code.co_filename, current.f_lineno  # 3.11+
        current = current.f_back
    return None


def put_caller(attrs: dict, caller: Optional[Caller]) -> None:
    """Put ``caller`` in ``attrs`` as the ``code.*`` attributes, when known."""
    if caller is not None:
        attrs[semconv.CODE_FUNCTION_NAME], attrs[semconv.CODE_FILE_PATH], attrs[semconv.CODE_LINE_NUMBER] = caller


def caller_location(attrs: dict, depth: int = 2, frame: Optional[FrameType] = None) -> None:
    """Put the caller's ``code.*`` attributes in ``attrs`` (see find_caller)."""
    put_caller(attrs, find_caller(depth, frame))
