"""Groq adapter: ``chat.completions.create`` (sync, async, streams) and ``embeddings.create``.

The Groq SDK is generated like OpenAI's and its shapes are OpenAI's, so the translation is
openai.py's through :mod:`.openai_compatible`; ``with_raw_response`` and ``with_streaming_response``
are covered the same way. Streams report usage without being asked: in ``x_groq.usage`` on the
last chunk (newer API versions also in ``usage``), so no ``stream_options`` is injected (the SDK
does not accept it). Reasoning models' ``reasoning`` text is recorded as a reasoning part.
"""

from __future__ import annotations

from ..genai.semconv import Provider
from .openai_compatible import Chat, Embeddings
from .base import LLMInstrumentor, Target


class GroqInstrumentor(LLMInstrumentor):
    requirements = ("groq >= 0.9.0, < 2",)

    def targets(self) -> list:
        chat, embeddings = Chat(Provider.GROQ), Embeddings(Provider.GROQ)
        chat_module = "groq.resources.chat.completions"
        embeddings_module = "groq.resources.embeddings"
        return [
            Target(chat_module, "Completions.create", chat),
            Target(chat_module, "AsyncCompletions.create", chat, is_async=True),
            Target(embeddings_module, "Embeddings.create", embeddings),
            Target(embeddings_module, "AsyncEmbeddings.create", embeddings, is_async=True),
        ]
