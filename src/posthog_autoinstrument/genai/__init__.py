"""The GenAI core: the one place that knows the span contract (README, "How it works")."""

from . import messages, semconv
from .spans import InferenceCall, InferenceRequest, Layer, Recorder, StepCall, StepRequest, Usage

_STREAM_NAMES = ("AsyncStreamProxy", "StreamAccumulator", "SyncStreamProxy")


def __getattr__(name: str):
    # The stream proxies need wrapt, which imports asyncio: start-up (which imports this core
    # for the export pipeline) must not pay for them before an adapter does.
    if name in _STREAM_NAMES:
        from . import streams

        return getattr(streams, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "AsyncStreamProxy",
    "InferenceCall",
    "InferenceRequest",
    "Layer",
    "Recorder",
    "StepCall",
    "StepRequest",
    "StreamAccumulator",
    "SyncStreamProxy",
    "Usage",
    "messages",
    "semconv",
]
