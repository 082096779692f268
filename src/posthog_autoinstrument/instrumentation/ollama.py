"""Ollama adapter (work in progress)."""

from .base import LLMInstrumentor


class OllamaInstrumentor(LLMInstrumentor):
    requirements = ("ollama >= 0",)

    def targets(self) -> list:
        return []
