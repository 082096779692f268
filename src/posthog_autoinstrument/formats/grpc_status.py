"""gRPC errors as the HTTP statuses that mean the same (google.rpc.Code's mapping), for the
adapters of SDKs that speak gRPC (xAI, Weaviate)."""

from __future__ import annotations

from typing import Any, Optional

HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INTERNAL": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


def http_status(exc: Any) -> Optional[int]:
    """The HTTP status that means what a gRPC error's status code (``exc.code()``) means."""
    code = getattr(exc, "code", None)
    try:
        name = code().name if callable(code) else None
    except Exception:
        return None
    return HTTP_STATUS.get(name) if isinstance(name, str) else None
