"""The GenAI core: the one place that knows the span contract (README, "How it works").

- :mod:`.call_types`: how adapters describe a call (``InferenceRequest``, ``Usage``, ``Layer``, ``StepRequest``);
- :mod:`.attributes`: those descriptions as span attributes and events;
- :mod:`.inference_call`: a call in flight (``InferenceCall``, ``StepCall``), recorded in one of
  the two ways of :mod:`.recording` (through an SDK span, or direct: built on the export thread);
- :mod:`.recorder`: the ``Recorder`` that starts calls and picks their recording;
- :mod:`.one_generation`: the rule that makes one model call one generation;
- :mod:`.caller_location`: the application code that made a call (``code.*``);
- :mod:`.plain_span`: a finished span in plain fields, for the export thread;
- :mod:`.messages`, :mod:`.semconv`, :mod:`.streams`, :mod:`.self_tracing`.

Nothing here imports ``identity`` (the Recorder is told how to ask about privacy).
"""

from . import messages, semconv
from .call_types import InferenceRequest, Layer, StepRequest, Usage
from .inference_call import InferenceCall, StepCall
from .recorder import Recorder

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
