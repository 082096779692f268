"""Groq adapter (work in progress)."""

from .base import LLMInstrumentor


class GroqInstrumentor(LLMInstrumentor):
    requirements = ("groq >= 0",)

    def targets(self) -> list:
        return []
