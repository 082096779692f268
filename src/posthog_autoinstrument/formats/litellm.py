"""LiteLLM's variant of the OpenAI chat format (see :mod:`.openai_chat`): its provider names,
the ``provider/`` prefix of its model names, and its usage, which may carry Anthropic-style
cache counts beside OpenAI's.
"""

from __future__ import annotations

from typing import Any, Optional

from ..genai.semconv import Provider
from ..genai.call_types import Usage
from .fields import get, optional_field
from .openai_chat import CHAT_USAGE_KEYS, token_usage

# LiteLLM's provider names -> the conventions' well-known values. Others are kept as LiteLLM
# spells them (they name the provider, just not in the conventions' list).
PROVIDERS = {
    "openai": Provider.OPENAI,
    "text-completion-openai": Provider.OPENAI,
    "azure": Provider.AZURE_OPENAI,
    "azure_text": Provider.AZURE_OPENAI,
    "azure_ai": Provider.AZURE_AI_INFERENCE,
    "anthropic": Provider.ANTHROPIC,
    "anthropic_text": Provider.ANTHROPIC,
    "bedrock": Provider.AWS_BEDROCK,
    "vertex_ai": Provider.GCP_VERTEX_AI,
    "vertex_ai_beta": Provider.GCP_VERTEX_AI,
    "gemini": Provider.GCP_GEMINI,
    "groq": Provider.GROQ,
    "deepseek": Provider.DEEPSEEK,
    "mistral": Provider.MISTRAL_AI,
    "codestral": Provider.MISTRAL_AI,
    "text-completion-codestral": Provider.MISTRAL_AI,
    "xai": Provider.XAI,
    "perplexity": Provider.PERPLEXITY,
    "cohere": Provider.COHERE,
    "cohere_chat": Provider.COHERE,
    "openrouter": Provider.OPENROUTER,
    "ollama": Provider.OLLAMA,
    "ollama_chat": Provider.OLLAMA,
    "together_ai": Provider.TOGETHER,
    "watsonx": Provider.IBM_WATSONX_AI,
    "watsonx_text": Provider.IBM_WATSONX_AI,
}


def provider_name(litellm_provider: Any) -> Optional[str]:
    if not isinstance(litellm_provider, str) or not litellm_provider:
        return None
    return PROVIDERS.get(litellm_provider, litellm_provider)


def strip_prefix(model: Any, litellm_provider: Optional[str]) -> Optional[str]:
    if not isinstance(model, str) or not model:
        return None
    if litellm_provider and model.startswith(litellm_provider + "/"):
        return model[len(litellm_provider) + 1 :]
    return model


def usage(reported: Any) -> Optional[Usage]:
    """LiteLLM's OpenAI-shaped usage; its ``prompt_tokens`` already include cache tokens. Cache
    counts missing from the details may come as Anthropic's top-level fields."""
    counted = token_usage(reported, CHAT_USAGE_KEYS, cache_write_key="cache_creation_tokens")
    if counted is not None:
        if counted.cache_read_input_tokens is None:
            counted.cache_read_input_tokens = optional_field(reported, "cache_read_input_tokens")
        if counted.cache_creation_input_tokens is None:
            counted.cache_creation_input_tokens = optional_field(reported, "cache_creation_input_tokens")
    return counted


_USAGE_KEYS = (
    "prompt_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)


def reported_stream_usage(chunks: Any) -> Optional[Usage]:
    """The provider's usage from the chunks LiteLLM kept, merged as LiteLLM merges them: the
    latest report of each count wins (input and output may come in different events)."""
    merged: dict = {}
    for chunk in chunks if isinstance(chunks, list) else ():
        reported = get(chunk, "usage")
        if reported is None:
            continue
        for key in _USAGE_KEYS:
            value = get(reported, key)
            if value is not None:
                merged[key] = value
    return usage(merged) if merged else None
