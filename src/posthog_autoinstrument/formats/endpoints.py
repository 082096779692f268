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
