"""Where a call goes: the server's host and port, and which provider an OpenAI-compatible host is."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional
from urllib.parse import urlsplit

from ..genai.semconv import Provider

# Hosts of OpenAI-compatible providers, matched as suffixes of the base URL's host.
OPENAI_COMPATIBLE_HOSTS = (
    ("api.openai.com", Provider.OPENAI),
    ("openai.azure.com", Provider.AZURE_OPENAI),
    ("cognitiveservices.azure.com", Provider.AZURE_OPENAI),
    ("services.ai.azure.com", Provider.AZURE_OPENAI),
    ("api.groq.com", Provider.GROQ),
    ("api.deepseek.com", Provider.DEEPSEEK),
    ("api.mistral.ai", Provider.MISTRAL_AI),
    ("openrouter.ai", Provider.OPENROUTER),
    ("api.x.ai", Provider.XAI),
    ("generativelanguage.googleapis.com", Provider.GCP_GEMINI),
    ("api.together.xyz", Provider.TOGETHER),
    ("api.together.ai", Provider.TOGETHER),
    ("api.perplexity.ai", Provider.PERPLEXITY),
    ("api.cohere.ai", Provider.COHERE),
    ("api.cohere.com", Provider.COHERE),
)


def host_and_port(url: Any) -> tuple:
    """(host, port) of a base URL, the port defaulted from the scheme; (None, None) without a
    host, for anything but a URL string, and for a URL that does not parse."""
    if not isinstance(url, str) or not url:
        return None, None
    return _host_and_port(url)


@lru_cache(maxsize=64)
def _host_and_port(url: str) -> tuple:
    try:
        parts = urlsplit(url)
        host = parts.hostname or None
        port = parts.port
    except ValueError:  # a port that is no number, a malformed IPv6 address
        return None, None
    return host, (port or (443 if parts.scheme == "https" else 80)) if host else None


def openai_compatible_provider(host: Optional[str]) -> Optional[str]:
    """The provider an OpenAI-compatible endpoint's host belongs to, None for a host not listed."""
    if host:
        for suffix, name in OPENAI_COMPATIBLE_HOSTS:
            if host == suffix or host.endswith("." + suffix):
                return name
    return None


class EndpointCache:
    """What a client's base URL resolves to (provider, host, port), kept per URL object.

    Clients keep one base-URL object for their lifetime, and reading one can be costly (openai
    3's URL properties), so the result is kept under the object's identity, checked against the
    object itself (an id may be reused once it is gone) and against ``extra``, anything else the
    result depends on (the client's class, for a provider named after it). Bounded: emptied when
    full.
    """

    __slots__ = ("entries", "size")

    def __init__(self, size: int = 256):
        self.entries: dict = {}
        self.size = size

    def get(self, base_url: Any, extra: Any = None) -> Optional[tuple]:
        cached = self.entries.get(id(base_url))
        if cached is not None and cached[0] is base_url and cached[1] is extra:
            return cached[2]
        return None

    def put(self, base_url: Any, extra: Any, endpoint: tuple) -> tuple:
        """Keep ``endpoint`` and return it."""
        if len(self.entries) > self.size:
            self.entries.clear()
        self.entries[id(base_url)] = (base_url, extra, endpoint)
        return endpoint
