"""Together AI adapter: ``chat.completions.create`` (sync, async, streams) and ``embeddings.create``.

Since version 2 the ``together`` SDK is generated like OpenAI's (``CompletionsResource`` /
``AsyncCompletionsResource``) and speaks OpenAI's shapes, so the translation is openai.py's through
:mod:`.openai_compatible`. The 1.x SDK (``ChatCompletions`` classes and its own HTTP client) is not
covered. Together streams carry usage on their last chunk without being asked, and finish with
``eos`` as well as OpenAI's reasons.
"""

from __future__ import annotations

from ..genai.semconv import Provider
from .openai_compatible import Chat, Embeddings
from .base import LLMInstrumentor, Target


class TogetherInstrumentor(LLMInstrumentor):
    requirements = ("together >= 2.0.0, < 4",)

    def targets(self) -> list:
        chat, embeddings = Chat(Provider.TOGETHER), Embeddings(Provider.TOGETHER)
        chat_module = "together.resources.chat.completions"
        embeddings_module = "together.resources.embeddings"
        return [
            Target(chat_module, "CompletionsResource.create", chat),
            Target(chat_module, "AsyncCompletionsResource.create", chat, is_async=True),
            Target(embeddings_module, "EmbeddingsResource.create", embeddings),
            Target(embeddings_module, "AsyncEmbeddingsResource.create", embeddings, is_async=True),
        ]
