"""The export pipeline: AI-span filter -> privacy and PostHog dialect -> queue -> OTLP over HTTP."""

from .processor import PostHogSpanProcessor

__all__ = ["PostHogSpanProcessor"]
