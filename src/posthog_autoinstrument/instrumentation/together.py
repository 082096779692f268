"""Together adapter (work in progress)."""

from .base import LLMInstrumentor


class TogetherInstrumentor(LLMInstrumentor):
    requirements = ("together >= 0",)

    def targets(self) -> list:
        return []
