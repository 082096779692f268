"""A loopback stand-in for Groq's OpenAI-shaped API (``GROQ_BASE_URL``): ``/openai/v1/...`` paths,
usage with Groq's timing fields and cached-token details, ``x_groq`` on every completion and chunk,
and stream usage only in ``x_groq.usage`` on the last chunk, as Groq sends it. See ``_compat_chat``."""

from ._compat_chat import FakeCompatChat, Flavor


class FakeGroq(FakeCompatChat):
    flavor = Flavor(
        name="Groq",
        chat_path="/openai/v1/chat/completions",
        embeddings_path="/openai/v1/embeddings",
        usage_in_x_groq=True,
        cached_tokens=True,
    )
