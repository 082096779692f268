"""Loopback fakes of OpenAI and PostHog's OTLP intake for end-to-end tests."""

from .openai_server import FakeOpenAI
from .posthog_server import FakePostHog

__all__ = ["FakeOpenAI", "FakePostHog"]
