"""Placeholder while the adapter is written."""

from .base import LLMInstrumentor


class MistralInstrumentor(LLMInstrumentor):
    def targets(self) -> list:
        return []
