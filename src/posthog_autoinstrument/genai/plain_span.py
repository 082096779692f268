"""A finished span in plain fields, for the export thread alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, Status


@dataclass(slots=True)
class PlainSpan:
    """A finished span as the export reads it: what ``ReadableSpan`` offers, in plain fields.

    The span of a direct call (``DirectRecording.build_span``) and PostHog's copy of any span
    (``export.dialect.for_posthog``): made on the export thread for export alone, and read there
    a few dozen times a span, where a ``ReadableSpan``'s properties copy its attributes, events
    and links on every read. Nobody else holds one, so ``for_posthog`` takes over the attributes
    of the one it is given.
    """

    name: str
    context: SpanContext
    parent: Optional[SpanContext]
    resource: Any
    attributes: dict
    events: Sequence
    links: Sequence
    kind: SpanKind
    status: Status
    start_time: Optional[int]
    end_time: Optional[int]
    instrumentation_scope: Any
    dropped_attributes = dropped_events = dropped_links = 0  # class attributes: never any

    def get_span_context(self) -> SpanContext:
        return self.context


# A finished span as the export pipeline takes it: the SDK's, or a PlainSpan (the same fields).
FinishedSpan = Union[ReadableSpan, PlainSpan]
