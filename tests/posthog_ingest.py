"""A model of PostHog's ingestion of OTLP AI spans, kept in one place for the tests.

Given a span as the PostHog stand-in decoded it (``tests/servers/otlp_decode.py``), it returns
the event PostHog would store: ``{"event", "distinct_id", "properties"}``. Each rule names the
PostHog file it comes from (repository PostHog/posthog). Two stages:

1. capture, ``rust/capture/src/otel/*``: acceptance and event type (``providers.rs``), person
   (``identity.rs``), properties and ids (``fan_out.rs``), errors (``error_status.rs``);
2. the Node AI pipeline, ``nodejs/src/ingestion/pipelines/ai/otel/attribute-mapping.ts``
   (``mapOtelAttributes``): primary map, fallback map, system instructions, finish reasons,
   groups, latency, root-to-trace, strip. Where two versions of that file differ, the model takes
   the one that treats our spans worse (the union of their primary maps: ``@14d76eb`` maps
   ``gen_ai.tool.definitions`` onto ``$ai_tools``, overwriting), so a test that passes here
   passes against both.

Not modelled: the older-spec ``events`` attribute and the library middlewares (pydantic-ai,
traceloop, vercel-ai, openinference: we send none of their marker keys), cost computation
beyond the provider row (``resolve_cost_provider``).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Optional

# -- capture: rust/capture/src/otel/providers.rs -------------------------------------------------
# A span is accepted if some span attribute key starts with a known prefix; the first matching
# provider classifies it.
_PROVIDER_PREFIXES = (
    ("vercel", ("ai.", "eve.")),
    ("pydantic_ai", ("pydantic_ai.",)),
    ("traceloop", ("traceloop.", "llm.request.type")),
    ("gen_ai", ("gen_ai.",)),
)
_REQUEST_TYPES = {
    "chat": "$ai_generation",
    "completion": "$ai_generation",
    "embedding": "$ai_embedding",
    "embeddings": "$ai_embedding",
}


def _classify(attrs: dict) -> Optional[str]:
    for provider, prefixes in _PROVIDER_PREFIXES:
        if any(key.startswith(prefixes) for key in attrs):
            break
    else:
        return None  # dropped: not an AI span
    if provider == "pydantic_ai":
        return "$ai_span"
    if provider == "traceloop":
        return _REQUEST_TYPES.get(attrs.get("llm.request.type"), "$ai_span")
    operation = attrs.get("ai.operationId") if provider == "vercel" else None
    if operation:
        if operation.endswith((".doGenerate", ".doStream")):
            return "$ai_generation"
        return "$ai_embedding" if operation in ("ai.embed.doEmbed", "ai.embedMany.doEmbed") else "$ai_span"
    # GEN_AI: exactly "chat" is a generation, exactly "embeddings" an embedding.
    return {"chat": "$ai_generation", "embeddings": "$ai_embedding"}.get(attrs.get("gen_ai.operation.name"), "$ai_span")


# -- capture: rust/capture/src/otel/identity.rs --------------------------------------------------
_SPAN_DISTINCT_ID_KEYS = (
    "ai.telemetry.metadata.posthog_distinct_id",
    "ai.settings.context.posthog_distinct_id",
    "posthog.distinct_id",
    "user.id",
)
_RESOURCE_DISTINCT_ID_KEYS = ("posthog.distinct_id", "user.id")
_SESSION_KEYS = (
    "$ai_session_id",
    "ai.telemetry.metadata.$ai_session_id",
    "ai.settings.context.$ai_session_id",
    "eve.session.id",
    "anthropic.session.id",
    "gen_ai.conversation.id",
)


def _distinct_id(attrs: dict, resource: dict, trace_id: str) -> str:
    for source, keys in ((attrs, _SPAN_DISTINCT_ID_KEYS), (resource, _RESOURCE_DISTINCT_ID_KEYS)):
        for key in keys:
            value = source.get(key)
            if isinstance(value, str) and value:
                return value
    for source in (attrs, resource):
        for key in _SESSION_KEYS:
            value = source.get(key)
            if isinstance(value, str) and value:
                return str(uuid.uuid5(uuid.NAMESPACE_OID, f"session:{value}"))  # a derived, personless id
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"trace:{trace_id}"))


# -- capture: rust/capture/src/otel/fan_out.rs ---------------------------------------------------
# Resource attributes first, minus these prefixes (NOISY_RESOURCE_PREFIXES); span attributes win.
NOISY_RESOURCE_PREFIXES = ("host.", "process.", "os.", "telemetry.")


# -- capture: rust/capture/src/otel/error_status.rs ----------------------------------------------
_STATUS_ATTRIBUTE_KEYS = (
    "http.response.status_code",
    "http.status_code",
    "http.status",
    "status_code",
    "error.status_code",
    "exception.status_code",
)


def _apply_error(span: dict, properties: dict) -> None:
    """Only a span with status ERROR is an error; explicit attributes are kept."""
    if span["status_code"] != "ERROR":
        return
    properties["$ai_is_error"] = True
    exceptions = [e for e in span.get("events", ()) if e["name"] == "exception"]
    if "$ai_error" not in properties:
        if exceptions:
            latest = exceptions[-1]["attributes"]
            properties["$ai_error"] = f"{latest.get('exception.type', '')}: {latest.get('exception.message', '')}"
        else:
            properties["$ai_error"] = span["status_message"] or "OpenTelemetry span status error"
    if "$ai_http_status" not in properties:
        sources = [e["attributes"] for e in exceptions[-1:]] + [properties]
        for source in sources:
            for key in _STATUS_ATTRIBUTE_KEYS:
                value = source.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    properties["$ai_http_status"] = value
                    return
        # (capture also parses a status out of the exception or status message; not modelled)
        properties["$ai_http_status"] = 500


# -- Node: nodejs/src/ingestion/pipelines/ai/otel/attribute-mapping.ts ---------------------------
# Primary map: overwrites unconditionally and deletes the source (ATTRIBUTE_MAP; the two
# gen_ai.*tools keys are in @14d76eb).
ATTRIBUTE_MAP = {
    "gen_ai.input.messages": "$ai_input",
    "gen_ai.output.messages": "$ai_output_choices",
    "gen_ai.usage.input_tokens": "$ai_input_tokens",
    "gen_ai.usage.output_tokens": "$ai_output_tokens",
    "gen_ai.usage.cache_read.input_tokens": "$ai_cache_read_input_tokens",
    "gen_ai.usage.cache_creation.input_tokens": "$ai_cache_creation_input_tokens",
    "gen_ai.response.model": "$ai_model",
    "gen_ai.provider.name": "$ai_provider",
    "gen_ai.tool.definitions": "$ai_tools",
    "gen_ai.request.tools": "$ai_tools",
    "server.address": "$ai_base_url",
    "telemetry.sdk.name": "$ai_lib",
    "telemetry.sdk.version": "$ai_lib_version",
    "$otel_span_name": "$ai_span_name",
}
JSON_PARSE_PROPERTIES = {"$ai_input", "$ai_output_choices", "$ai_tools"}
# Fallback map: fills only an unset target; the source is always deleted (FALLBACK_ATTRIBUTE_MAP).
FALLBACK_ATTRIBUTE_MAP = {
    "gen_ai.system": "$ai_provider",
    "gen_ai.request.model": "$ai_model",
    "gen_ai.usage.prompt_tokens": "$ai_input_tokens",
    "gen_ai.usage.completion_tokens": "$ai_output_tokens",
}
STRIP_ATTRIBUTES = (
    "telemetry.sdk.language",
    "gen_ai.operation.name",
    "posthog.ai.debug",
    "user.id",
    "posthog.distinct_id",
    "llm.request.type",
)
_MAX_SYSTEM_INSTRUCTIONS = 500_000


def _parse(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _map_attributes(event: dict) -> None:
    props = event["properties"]
    if event["event"] == "$ai_span":  # reclassifyByRequestType
        event["event"] = _REQUEST_TYPES.get(props.get("llm.request.type"), "$ai_span")
    for otel_key, key in ATTRIBUTE_MAP.items():
        if props.get(otel_key) is not None:
            value = props.pop(otel_key)
            props[key] = _parse(value) if key in JSON_PARSE_PROPERTIES else value
    for otel_key, key in FALLBACK_ATTRIBUTE_MAP.items():
        value = props.pop(otel_key, None)
        if value is not None and props.get(key) is None:
            props[key] = value
    _system_instructions(props)
    # convertFinishReasons (@14d76eb): a one-element array unwrapped, only if unset.
    reasons = props.pop("gen_ai.response.finish_reasons", None)
    if reasons is not None and "$ai_stop_reason" not in props:
        if isinstance(reasons, list):
            if reasons:
                props["$ai_stop_reason"] = reasons[0] if len(reasons) == 1 else reasons
        else:
            props["$ai_stop_reason"] = reasons
    # normalizeGroups: a JSON-object string is parsed; an object passes as it is.
    if isinstance(props.get("$groups"), str):
        parsed = _parse(props["$groups"])
        if isinstance(parsed, dict):
            props["$groups"] = parsed
    # gen_ai.conversation.id -> $ai_session_id if unset (otel/index.ts@08ef863)
    if "$ai_session_id" not in props and isinstance(props.get("gen_ai.conversation.id"), str):
        props["$ai_session_id"] = props["gen_ai.conversation.id"]
    # computeLatency
    start, end = props.pop("$otel_start_time_unix_nano", None), props.pop("$otel_end_time_unix_nano", None)
    if start is not None and end is not None and int(end) > int(start):
        props["$ai_latency"] = (int(end) - int(start)) / 1e9
    # promoteRootSpanToTrace
    if event["event"] == "$ai_span" and not props.get("$ai_parent_id"):
        event["event"] = "$ai_trace"
    for key in STRIP_ATTRIBUTES:
        props.pop(key, None)


def _system_instructions(props: dict) -> None:
    """convertSystemInstructions: a leading {role: system, content: text} unless $ai_input
    already starts with a system message."""
    if "gen_ai.system_instructions" not in props:
        return
    raw = props.pop("gen_ai.system_instructions")
    if raw is None or (isinstance(raw, str) and len(raw) > _MAX_SYSTEM_INSTRUCTIONS):
        return
    value = _parse(raw)
    if isinstance(value, str):
        text = value
    elif isinstance(value, list):
        text = "\n\n".join(
            p["content"]
            for p in value
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("content"), str) and p["content"]
        )
    else:
        text = json.dumps(value)
    if not text:
        return
    system = {"role": "system", "content": text}
    existing = props.get("$ai_input")
    if isinstance(existing, list):
        if not (existing and isinstance(existing[0], dict) and existing[0].get("role") == "system"):
            props["$ai_input"] = [system, *existing]
    elif existing is None:
        props["$ai_input"] = [system]


def event_from_span(span: dict) -> Optional[dict]:
    """The event PostHog stores for one decoded span, or None if capture drops it."""
    attrs = span["attributes"]
    event_name = _classify(attrs)
    if event_name is None:
        return None
    resource = span.get("resource") or {}
    properties = {k: v for k, v in resource.items() if not k.startswith(NOISY_RESOURCE_PREFIXES)}
    properties.update(attrs)
    properties.setdefault("$geoip_disable", properties.pop("posthog.geoip_disable", True))
    properties["$ai_trace_id"] = span["trace_id"]
    properties["$ai_span_id"] = span["span_id"]
    if span.get("parent_span_id"):
        properties["$ai_parent_id"] = span["parent_span_id"]
    properties["$ai_ingestion_source"] = "otel"
    properties.setdefault("$lib", "posthog-otel")
    if span.get("scope_version"):
        properties.setdefault("$lib_version", span["scope_version"])
    if span["name"]:
        properties["$otel_span_name"] = span["name"]
    properties["$otel_start_time_unix_nano"] = str(span["start_ns"])
    properties["$otel_end_time_unix_nano"] = str(span["end_ns"])
    _apply_error(span, properties)
    event = {
        "event": event_name,
        "distinct_id": _distinct_id(attrs, resource, span["trace_id"]),
        "properties": properties,
    }
    _map_attributes(event)
    return process_ai_event(event)


def process_ai_event(event: dict) -> dict:
    """The steps of nodejs/src/ingestion/pipelines/ai/process-ai-event.ts that every AI event
    goes through, whichever way it arrived (an SDK's /batch/ event too)."""
    properties = event["properties"]
    # normalizeTraceProperties: ids are coerced to strings.
    for key in ("$ai_trace_id", "$ai_parent_id", "$ai_span_id", "$ai_generation_id", "$ai_session_id"):
        if properties.get(key) is not None:
            properties[key] = str(properties[key])
    # extractCoreModelParams (costs/index.ts), for generations and embeddings: overwrites.
    params = properties.get("$ai_model_parameters")
    if event["event"] in ("$ai_generation", "$ai_embedding") and isinstance(params, dict) and params:
        if params.get("temperature") is not None:
            properties["$ai_temperature"] = params["temperature"]
        if params.get("stream") is not None:
            properties["$ai_stream"] = params["stream"]
        if params.get("max_tokens") is not None:
            properties["$ai_max_tokens"] = params["max_tokens"]
        elif params.get("max_completion_tokens") is not None:
            properties["$ai_max_tokens"] = params["max_completion_tokens"]
    return event


def events_from_spans(spans: list) -> list:
    return [event for event in map(event_from_span, spans) if event is not None]


# -- cost: nodejs/src/ingestion/pipelines/ai/costs/provider-matching.ts --------------------------
# PROVIDER_ALIASES, and the provider row keys of costs/providers/llm-costs.json as
# costs/providers/canonical-providers.ts lists them (generated from the price table).
PROVIDER_ALIASES = {
    "claude": "anthropic",
    "anthropic-claude": "anthropic",
    "oai": "openai",
    "openai-api": "openai",
    "open-ai": "openai",
    "google": "google-ai-studio",
    "gemini": "google-ai-studio",
    "google-gemini": "google-ai-studio",
    "google-ai": "google-ai-studio",
    "vertex": "google-vertex",
    "vertex-ai": "google-vertex",
    "vertex-us": "google-vertex-us",
    "vertex-europe": "google-vertex-europe",
    "vertex-global": "google-vertex-global",
    "amazon": "amazon-bedrock",
    "bedrock": "amazon-bedrock",
    "aws": "amazon-bedrock",
    "aws-bedrock": "amazon-bedrock",
    "azure-openai": "azure",
    "azure-ai": "azure",
    "cohere-ai": "cohere",
    "mistralai": "mistral",
    "mistral-ai": "mistral",
    "grok": "xai",
    "x-ai": "xai",
    "grok-fast": "xai",
    "xai-turbo": "xai",
    "deep-seek": "deepseek",
    "fireworks-ai": "fireworks",
    "groq-cloud": "groq",
    "perplexity-ai": "perplexity",
    "pplx": "perplexity",
    "cloudflare-workers": "cloudflare",
    "cf-workers": "cloudflare",
    "openrouter": "default",
    "or": "default",
}
# The first-party rows (the generated list also holds many hosting variants: "-fp8", regions).
CANONICAL_PROVIDERS = frozenset(
    {
        "default",
        "amazon-bedrock",
        "anthropic",
        "azure",
        "cloudflare",
        "cohere",
        "deepinfra",
        "deepseek",
        "fireworks",
        "google-ai-studio",
        "google-vertex",
        "groq",
        "minimax",
        "mistral",
        "nvidia",
        "openai",
        "perplexity",
        "together",
        "xai",
        "z-ai",
    }
)


def normalize_provider_key(provider: str) -> str:
    return re.sub(r"^-+|-+$", "", re.sub(r"[^a-z0-9]+", "-", provider.lower()))


def resolve_cost_provider(provider: Optional[str], rows: frozenset = CANONICAL_PROVIDERS) -> str:
    """The price row resolveModelCostForProvider picks for ``provider`` among ``rows``: the
    alias, the normalised or lowered name, a row containing it, else "default"."""
    if provider:
        normalized = normalize_provider_key(provider)
        canonical = PROVIDER_ALIASES.get(normalized, normalized)
        for candidate in (canonical, normalized, provider.lower(), provider):
            if candidate in rows:
                return candidate
        for search in [normalized] if canonical == normalized else [canonical, normalized]:
            for row in sorted(rows):
                if search in row:
                    return row
    return "default"
