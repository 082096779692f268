"""Placeholder while the adapter is written."""

from .base import LLMInstrumentor


class CohereInstrumentor(LLMInstrumentor):
    def targets(self) -> list:
        return []
