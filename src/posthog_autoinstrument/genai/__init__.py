"""The GenAI core: the one place that knows the span contract (see DESIGN.md)."""

from . import messages, semconv
from .spans import InferenceCall, InferenceRequest, Layer, Recorder, StepCall, StepRequest, Usage
from .streams import AsyncStreamProxy, StreamAccumulator, SyncStreamProxy

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
