"""The copy of a span that goes to PostHog: privacy, media, size, and PostHog's dialect.

Applied on the export thread to every AI span, whoever produced it (our adapters, SDKs that
trace themselves, frameworks). The application's own span and any other exporter's copy are
never changed.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Optional, Union

from opentelemetry.sdk.trace import Event
from opentelemetry.trace import Status, StatusCode

from .. import __version__
from ..config import Settings
from ..identity import Identity, properties_json
from ..genai import semconv
from ..genai.plain_span import FinishedSpan, PlainSpan
from . import foreign, posthog_messages

logger = logging.getLogger("posthog_autoinstrument")

# Attributes that carry prompt or completion text. Privacy mode removes all of them.
INPUT_CONTENT_KEYS = frozenset(
    {
        semconv.INPUT_MESSAGES,
        semconv.SYSTEM_INSTRUCTIONS,
        semconv.TOOL_CALL_ARGUMENTS,
        semconv.INPUT_STATE,
        "$ai_input",
        "$ai_input_state",
        "gen_ai.prompt",
        "ai.prompt",
        "ai.prompt.messages",
        "input.value",
        "traceloop.entity.input",
        "pydantic_ai.all_messages",
        "gen_ai.retrieval.query.text",
    }
)
OUTPUT_CONTENT_KEYS = frozenset(
    {
        semconv.OUTPUT_MESSAGES,
        semconv.TOOL_CALL_RESULT,
        semconv.OUTPUT_STATE,
        "$ai_output_choices",
        "$ai_output_state",
        "gen_ai.completion",
        "ai.response.text",
        "ai.response.object",
        "ai.response.toolCalls",
        "output.value",
        "traceloop.entity.output",
        "gen_ai.retrieval.documents",
        "final_result",
    }
)
INPUT_CONTENT_PREFIXES = ("gen_ai.prompt.", "llm.prompts.", "llm.input_messages.")
OUTPUT_CONTENT_PREFIXES = ("gen_ai.completion.", "llm.completions.", "llm.output_messages.", "llm.choices.")
ERROR_TEXT_KEYS = frozenset({"exception.message", "exception.stacktrace", "error.message"})
# for_posthog's default parent: the span's own.
SPAN_PARENT: Any = object()

# Operation names PostHog classifies: exactly "chat" is a generation, "embeddings" an embedding.
_OPERATION_FOR_POSTHOG = {
    semconv.Operation.GENERATE_CONTENT: semconv.Operation.CHAT,
    semconv.Operation.TEXT_COMPLETION: semconv.Operation.CHAT,
    "completion": semconv.Operation.CHAT,
    "embedding": semconv.Operation.EMBEDDINGS,
}

_DISTINCT_ID_KEYS = (
    "posthog.distinct_id",
    "user.id",
    "ai.telemetry.metadata.posthog_distinct_id",
    "ai.settings.context.posthog_distinct_id",
)

_DISTINCT_ID_KEY_SET = frozenset(_DISTINCT_ID_KEYS)

_CONTENT_JSON_KEYS = (semconv.INPUT_MESSAGES, semconv.OUTPUT_MESSAGES, semconv.SYSTEM_INSTRUCTIONS)

_SECRET_FIELDS = frozenset({"authorization", "headers", "api_key", "apikey", "x-api-key", "token", "access_token"})


def is_ai_span(span: FinishedSpan) -> bool:
    """PostHog's own acceptance rule: some span attribute key has a known AI prefix."""
    attributes = span.attributes
    if not attributes:
        return False
    for key in attributes:
        if key.startswith(semconv.POSTHOG_AI_ATTRIBUTE_PREFIXES) or key in semconv.POSTHOG_AI_ATTRIBUTE_KEYS:
            return True
    return False


def for_posthog(
    span: FinishedSpan, settings: Settings, identity: Optional[Identity] = None, parent: Any = SPAN_PARENT
) -> Optional[PlainSpan]:
    """Build the copy of ``span`` that PostHog receives.

    ``parent``: the parent the copy names, by default the span's own. When that is a span
    PostHog will never receive (the app's own, another instrumentation's), the processor passes
    the nearest AI span above it, or None: the copy is then a root, so that PostHog can show the
    trace (the trace id is kept). Returns None: the span is not an AI event after all (see
    ``foreign.complete``). A ``PlainSpan`` (a direct call's,
    made for export alone) gives its attributes to the copy; any other span is left unchanged.
    """
    attrs = span.attributes if type(span) is PlainSpan else dict(span.attributes or {})
    scope = span.instrumentation_scope.name if span.instrumentation_scope else None
    # Content an SDK recorded in events becomes attributes here, where privacy applies to it.
    events = foreign.content_from_events(attrs, span.events, scope)
    status = span.status
    description = status.description  # a property: read once

    private = settings.privacy_mode or (identity is not None and identity.privacy_mode)
    if private or not settings.record_inputs:
        _drop_content(attrs, INPUT_CONTENT_KEYS, INPUT_CONTENT_PREFIXES)
    if private or not settings.record_outputs:
        _drop_content(attrs, OUTPUT_CONTENT_KEYS, OUTPUT_CONTENT_PREFIXES)
    if private:
        for key in ERROR_TEXT_KEYS:
            attrs.pop(key, None)
        events = tuple(_scrub_event(e) for e in events if e.name == "exception")
        if description:
            status = Status(status.status_code, _error_summary(attrs))
            description = status.description
    elif description or events:
        # Error texts can quote credentials (an SDK's "Incorrect API key provided: sk-..."), and
        # count towards the span's size cap like its attributes.
        error_text_limit = min(_MAX_ERROR_TEXT, settings.max_span_bytes // 8)
        events = tuple(_scrub_event_secrets(e, error_text_limit) for e in events)
        if description:
            status = Status(status.status_code, _shorten(scrub_secrets(description), error_text_limit))
            description = status.description

    # The attributes' size, while no step below has changed them.
    size = _scrub_credentials(attrs)

    if not settings.capture_media:
        for key in _CONTENT_JSON_KEYS:
            value = attrs.get(key)
            if isinstance(value, str) and '"blob"' in value:
                attrs[key] = _replace_media(value)
                size = None

    name = None
    if foreign.may_rewrite(attrs, scope):
        size = None
        name = foreign.complete(attrs, scope)
    if name is foreign.NOT_AI:
        return None
    # 10% headroom for what the encoding adds (ids, names, field tags) beyond the texts counted.
    budget = int(settings.max_span_bytes * 0.9) - (_events_size(events) if events else 0) - len(description or "")
    _cap_size(attrs, max(budget, 1000), size)
    _add_posthog_dialect(attrs, settings, status.status_code is StatusCode.ERROR)
    _add_person_and_properties(attrs, settings, identity)

    return PlainSpan(
        name or span.name,
        span.context,
        span.parent if parent is SPAN_PARENT else parent,
        span.resource,
        attrs,
        events,
        span.links,
        span.kind,
        status,
        span.start_time,
        span.end_time,
        span.instrumentation_scope,
    )


_EVENT_OF_OPERATION: dict[Any, str] = {"chat": "$ai_generation", "embeddings": "$ai_embedding"}


def describe(span: PlainSpan) -> str:
    """One line about an exported span, for --debug runs."""
    attrs = span.attributes or {}
    operation = attrs.get(semconv.OPERATION_NAME)
    event = _EVENT_OF_OPERATION.get(operation) or ("$ai_span" if span.parent else "$ai_trace")
    parts = [event, repr(span.name)]
    for label, key in (
        ("model", semconv.RESPONSE_MODEL),
        ("provider", semconv.PROVIDER_NAME),
        ("in", semconv.USAGE_INPUT_TOKENS),
        ("out", semconv.USAGE_OUTPUT_TOKENS),
        ("person", "posthog.distinct_id"),
        ("error", semconv.ERROR_TYPE),
    ):
        if attrs.get(key) is not None:
            parts.append(f"{label}={attrs[key]}")
    if span.start_time and span.end_time:
        parts.append(f"{(span.end_time - span.start_time) / 1e6:.1f}ms")
    return " ".join(parts)


def _drop_content(attrs: dict, keys: frozenset, prefixes: tuple) -> None:
    for key in list(attrs):
        if key in keys or (key.startswith(prefixes) and not key.endswith((".name", ".version"))):
            del attrs[key]


_SECRET_PATTERN = re.compile(
    r"(?i)(bearer\s+|api[_-]?key[\"':=\s]+|sk-(?:ant-|proj-)?|phx_|xai-|gsk_|AKIA)[A-Za-z0-9_\-\.]{6,}"
)
_URL_CREDENTIALS = re.compile(r"(://)[^/@\s\"']+@")
# Cheap tests that decide whether a value needs the (slower) scrubbing at all.
_SECRET_HINTS = (
    "bearer",
    "api_key",
    "api-key",
    "apikey",
    "sk-",
    "phx_",
    "xai-",
    "gsk_",
    "akia",
    "authorization",
    "token",
    "@",
)
# Request header attributes that hold credentials (http.request.header.<name>).
_CREDENTIAL_HEADER_PREFIX = "http.request.header."
_CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "cookie",
        "x-goog-api-key",
        "anthropic-api-key",
        "ocp-apim-subscription-key",
    }
)
_MAX_ERROR_TEXT = 4096


# isinstance(value, str) as a C function, for filter(): no Python-level step per value.
_is_text = str.__instancecheck__


def scrub_secrets(text: str) -> str:
    text = _SECRET_PATTERN.sub(lambda match: match.group(1) + "[REDACTED]", text)
    return _URL_CREDENTIALS.sub(r"\1[REDACTED]@", text)


def _may_hold_credentials(attrs: dict) -> Union[bool, int]:
    """True when some attribute may hold a credential. Otherwise (the common case, decided in
    one pass) the attributes' size as ``_attrs_size`` counts it, from the same joins, for the
    size cap.

    All texts but message content, joined by a newline (no hint contains one, so none can
    match across two values) and lowered once, then searched for each hint once. C-level
    joins, copies and filters, no Python step per attribute: this runs for every span.
    """
    keys = "\n".join(attrs)
    if keys.startswith(_CREDENTIAL_HEADER_PREFIX) or "\n" + _CREDENTIAL_HEADER_PREFIX in keys:
        return True
    others = attrs.copy()
    content_size = 0
    for key in _CONTENT_JSON_KEYS:
        value = others.pop(key, _ABSENT)
        if value is not _ABSENT:
            content_size += len(value) if isinstance(value, str) else 16
    texts = list(filter(_is_text, others.values()))
    joined = "\n".join(texts)
    lowered = joined.lower()
    for hint in _SECRET_HINTS:
        if hint in lowered:
            return True
    # Each join put a newline between two items: not counted.
    keys_size = len(keys) - len(attrs) + 1 if attrs else 0
    texts_size = len(joined) - len(texts) + 1 if texts else 0
    return keys_size + texts_size + 16 * (len(others) - len(texts)) + content_size


_ABSENT: Any = object()


def _scrub_credentials(attrs: dict) -> Optional[int]:
    """Provider credentials never leave, whichever instrumentation put them in an attribute.

    Returns the attributes' size (``_attrs_size``) when there was nothing to scrub, measured on
    the way, for the size cap; None when they were looked at one by one."""
    checked = _may_hold_credentials(attrs)
    if checked is not True:
        return checked  # nothing to scrub: the attributes' size
    for key in list(attrs):
        value = attrs[key]
        if key.startswith(_CREDENTIAL_HEADER_PREFIX):
            if key[len(_CREDENTIAL_HEADER_PREFIX) :].lower() in _CREDENTIAL_HEADERS:
                del attrs[key]
            continue
        if key in _CONTENT_JSON_KEYS or not isinstance(value, str):
            continue  # message content is the user's text, not provider configuration
        lowered = value.lower()
        if not any(hint in lowered for hint in _SECRET_HINTS):
            continue
        if value[:1] in "[{":
            try:
                value = json.dumps(_redact_secrets(json.loads(value)), separators=(",", ":"), ensure_ascii=False)
            except ValueError:
                pass
        attrs[key] = scrub_secrets(value)
    return None


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "...[truncated]"


def _events_size(events) -> int:
    size = 0
    for event in events:
        size += len(event.name) + 16
        for key, value in (event.attributes or {}).items():
            size += len(key) + (len(value) if isinstance(value, str) else 16)
    return size


def _scrub_event_secrets(event: Event, limit: int) -> Event:
    attributes = event.attributes or {}
    message = attributes.get("exception.message")
    if not isinstance(message, str) and not isinstance(attributes.get("exception.stacktrace"), str):
        return event
    cleaned = {
        k: (_shorten(scrub_secrets(v), limit) if k in ERROR_TEXT_KEYS and isinstance(v, str) else v)
        for k, v in attributes.items()
    }
    return Event(event.name, cleaned, event.timestamp)


def _scrub_event(event: Event) -> Event:
    attributes = {k: v for k, v in (event.attributes or {}).items() if k not in ERROR_TEXT_KEYS}
    return Event(event.name, attributes, event.timestamp)


def _error_summary(attrs: dict) -> str:
    # In privacy mode an error message may quote the prompt; keep only its type.
    return str(attrs.get(semconv.ERROR_TYPE) or "error")


def _redact_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("[REDACTED]" if str(k).lower() in _SECRET_FIELDS else _redact_secrets(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_secrets(v) for v in value]
    return value


def _replace_media(value: str) -> str:
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    _walk_media(parsed)
    return json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)


def _walk_media(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "blob" and isinstance(node.get("content"), str):
            size = len(node["content"]) * 3 // 4
            node["content"] = (
                f"[{node.get('modality', 'media')} {node.get('mime_type', '')} ~{size} bytes omitted]".replace(
                    "  ", " "
                )
            )
        for child in node.values():
            _walk_media(child)
    elif isinstance(node, list):
        for child in node:
            _walk_media(child)


def _attrs_size(attrs: dict) -> int:
    """Characters of keys and texts, 16 for any other value (joins: this runs for every span)."""
    texts = list(filter(_is_text, attrs.values()))
    return len("".join(attrs)) + len("".join(texts)) + 16 * (len(attrs) - len(texts))


def _cap_size(attrs: dict, limit: int, size: Optional[int] = None) -> None:
    """Keep the span under ``limit`` bytes by shortening the largest content, as valid JSON.
    ``size``: the attributes' size if known (see ``_scrub_credentials``)."""
    if (_attrs_size(attrs) if size is None else size) <= limit:
        return
    for key in sorted(_CONTENT_JSON_KEYS, key=lambda k: -len(attrs.get(k) or "")):
        value = attrs.get(key)
        if not isinstance(value, str):
            continue
        overflow = _attrs_size(attrs) - limit
        if overflow <= 0:
            return
        attrs[key] = _truncate_json(value, max(len(value) - overflow - 256, 256))
    # Anything else that is oversized (other instrumentations' content) is cut as plain text.
    for key, value in list(attrs.items()):
        if _attrs_size(attrs) <= limit:
            return
        if isinstance(value, str) and len(value) > 1024:
            attrs[key] = value[:1024] + "...[truncated]"


def _truncate_json(value: str, budget: int) -> str:
    """Shorten every long string inside the JSON until the whole fits ``budget`` characters."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return value[:budget] + "...[truncated]"
    cap = max(budget // 2, 64)
    while cap >= 16:
        text = json.dumps(_shorten_strings(parsed, cap), separators=(",", ":"), ensure_ascii=False)
        if len(text) <= budget:
            return text
        cap //= 2
    return json.dumps([{"role": "system", "parts": [{"type": "text", "content": "[content truncated]"}]}])


def _shorten_strings(node: Any, cap: int) -> Any:
    if isinstance(node, str):
        return node if len(node) <= cap else node[:cap] + "...[truncated]"
    if isinstance(node, dict):
        return {k: _shorten_strings(v, cap) for k, v in node.items()}
    if isinstance(node, list):
        return [_shorten_strings(v, cap) for v in node]
    return node


def _first(value: Any) -> Optional[str]:
    if isinstance(value, (list, tuple)):
        return str(value[0]) if value else None
    return str(value) if value is not None else None


# gen_ai.provider.name -> the name PostHog's cost matching prices with. PostHog copies the
# provider onto $ai_provider (nodejs/src/ingestion/pipelines/ai/otel/attribute-mapping.ts,
# ATTRIBUTE_MAP) and picks the model's price row by it: the name is lowercased with every
# non-alphanumeric run turned into "-", then looked up in PROVIDER_ALIASES
# (nodejs/src/ingestion/pipelines/ai/costs/provider-matching.ts), else used as a row key of
# costs/providers/llm-costs.json (keys listed in costs/providers/canonical-providers.ts), else the
# "default" row. Names that already resolve (openai, anthropic, groq, cohere, together, deepseek,
# perplexity) pass unchanged; the rest would be priced from the "default" row and split the
# provider breakdown. Gemini is "gemini", as PostHog's own SDK names it (an alias of
# google-ai-studio). Names with no row of their own (ollama, ibm.watsonx.ai) and OpenRouter
# (PostHog aliases it to "default") are kept.
POSTHOG_PROVIDERS = {
    semconv.Provider.GCP_GEMINI: "gemini",
    semconv.Provider.GCP_VERTEX_AI: "google-vertex",
    semconv.Provider.AWS_BEDROCK: "amazon-bedrock",
    semconv.Provider.AZURE_OPENAI: "azure",
    semconv.Provider.AZURE_AI_INFERENCE: "azure",
    semconv.Provider.MISTRAL_AI: "mistral",
    semconv.Provider.XAI: "xai",
    # Spellings other instrumentations (and LiteLLM's provider names we keep) use.
    "gcp.gen_ai": "gemini",
    "google": "gemini",
    "vertex_ai": "google-vertex",
    "az.ai.openai": "azure",
    "az.ai.inference": "azure",
    "azure_openai": "azure",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    # Hugging Face's inference provider names that PostHog's cost tables spell otherwise.
    "fireworks-ai": "fireworks",
    "zai-org": "z-ai",
}

LIBRARY = "posthog-autoinstrument"


def _add_posthog_dialect(attrs: dict, settings: Settings, failed: bool = False) -> None:
    """What PostHog's ingestion needs beyond the conventions (its rules, each with the PostHog file
    it comes from, are modelled in tests/posthog_ingest.py)."""
    delegated = attrs.pop(semconv.DELEGATED, False)
    if delegated:
        # A framework step whose model request a provider span recorded: keep it as a step
        # ($ai_span, no operation) without tokens, so the call is one generation, counted once.
        attrs.pop(semconv.OPERATION_NAME, None)
        for key in [k for k in attrs if k.startswith("gen_ai.usage.")]:
            del attrs[key]
    get = attrs.get
    setdefault = attrs.setdefault
    operation = get(semconv.OPERATION_NAME)
    if operation in _OPERATION_FOR_POSTHOG:
        operation = attrs[semconv.OPERATION_NAME] = _OPERATION_FOR_POSTHOG[operation]
    model_call = operation in (semconv.Operation.CHAT, semconv.Operation.EMBEDDINGS)

    if semconv.USAGE_CACHE_WRITE_INPUT_TOKENS in attrs:
        setdefault(semconv.USAGE_CACHE_CREATION_INPUT_TOKENS, attrs[semconv.USAGE_CACHE_WRITE_INPUT_TOKENS])
    if semconv.USAGE_INPUT_TOKENS in attrs:
        # The conventions count cache tokens inside input tokens; PostHog must not add them again.
        setdefault("$ai_cache_reporting_exclusive", False)
    value = get(semconv.USAGE_REASONING_OUTPUT_TOKENS)
    if value is not None:
        setdefault("$ai_reasoning_tokens", value)
    if not attrs.keys().isdisjoint(_MODALITY_TOKEN_KEYS):
        for key, name in _MODALITY_TOKENS:
            value = attrs.pop(key, None)
            if value is not None:
                setdefault(name, value)
    value = get(semconv.REQUEST_TEMPERATURE)
    if value is not None:
        setdefault("$ai_temperature", value)
    value = get(semconv.REQUEST_MAX_TOKENS)
    if value is not None:
        setdefault("$ai_max_tokens", value)
    if model_call:
        setdefault("$ai_stream", bool(get(semconv.REQUEST_STREAM, False)))
    stop_reason = _first(get(semconv.RESPONSE_FINISH_REASONS))
    if stop_reason:
        setdefault("$ai_stop_reason", stop_reason)
    status_code = get(semconv.HTTP_RESPONSE_STATUS_CODE)
    if isinstance(status_code, int):
        setdefault("$ai_http_status", status_code)
    elif not failed and model_call:
        # The call returned: PostHog's SDK says 200 (posthog/ai/utils.py). A failure's status is
        # left to capture, which reads it from the exception (rust/capture/src/otel/error_status.rs).
        setdefault("$ai_http_status", 200)
    first_chunk = get(semconv.RESPONSE_TIME_TO_FIRST_CHUNK)
    if isinstance(first_chunk, (int, float)) and not isinstance(first_chunk, bool):
        setdefault("$ai_time_to_first_token", float(first_chunk))  # seconds, PostHog's property
    if model_call:
        _add_model_parameters(attrs)
    if semconv.TOOL_DEFINITIONS in attrs:
        _add_tools(attrs)
    _add_base_url(attrs)
    for key in (semconv.PROVIDER_NAME, "gen_ai.system"):
        provider = get(key)
        if isinstance(provider, str) and provider in POSTHOG_PROVIDERS:
            attrs[key] = POSTHOG_PROVIDERS[provider]
    # Capture drops resource attributes starting "telemetry." (rust/capture/src/otel/fan_out.rs,
    # NOISY_RESOURCE_PREFIXES), so the library is named on the span. $lib_version falls back to
    # the instrumentation scope's version there, which on spans another library records (the
    # anthropic SDK's own) is that library's version: name ours, the software that sent the event.
    setdefault("$ai_lib", LIBRARY)
    setdefault("$ai_lib_version", __version__)
    setdefault("$lib_version", __version__)
    conversation = get(semconv.CONVERSATION_ID)
    if isinstance(conversation, str) and conversation:
        setdefault("$ai_session_id", conversation)
    framework = attrs.pop(semconv.FRAMEWORK, None)
    if framework:
        setdefault("$ai_framework", framework)
    if not model_call:
        # PostHog shows a step's input and output as state.
        _move_state(
            attrs,
            "$ai_input_state",
            (semconv.INPUT_STATE, semconv.TOOL_CALL_ARGUMENTS, semconv.INPUT_MESSAGES),
            move=delegated,
        )
        _move_state(
            attrs,
            "$ai_output_state",
            (semconv.OUTPUT_STATE, semconv.TOOL_CALL_RESULT, semconv.OUTPUT_MESSAGES),
            move=delegated,
        )
    _add_messages(attrs)


# gen_ai.request.* -> the names of $ai_model_parameters as PostHog's SDK sends them
# (posthog/ai/utils.py, get_model_params); PostHog copies temperature, stream and max_tokens out
# of it (nodejs/src/ingestion/pipelines/ai/costs/index.ts, extractCoreModelParams).
_MODEL_PARAMETERS = (
    (semconv.REQUEST_TEMPERATURE, "temperature"),
    (semconv.REQUEST_MAX_TOKENS, "max_tokens"),
    (semconv.REQUEST_TOP_P, "top_p"),
    (semconv.REQUEST_TOP_K, "top_k"),
    (semconv.REQUEST_FREQUENCY_PENALTY, "frequency_penalty"),
    (semconv.REQUEST_PRESENCE_PENALTY, "presence_penalty"),
    (semconv.REQUEST_CHOICE_COUNT, "n"),
    (semconv.REQUEST_STOP_SEQUENCES, "stop"),
    (semconv.REQUEST_SEED, "seed"),
    (semconv.REQUEST_STREAM, "stream"),
    (semconv.OPENAI_REQUEST_IMAGE_SIZE, "size"),
    (semconv.OPENAI_REQUEST_IMAGE_QUALITY, "quality"),
    (semconv.OPENAI_REQUEST_IMAGE_STYLE, "style"),
    (semconv.OPENAI_REQUEST_IMAGE_BACKGROUND, "background"),
    (semconv.OPENAI_REQUEST_AUDIO_VOICE, "voice"),
    (semconv.OPENAI_REQUEST_AUDIO_LANGUAGE, "language"),
    (semconv.OPENAI_REQUEST_RESPONSE_FORMAT, "response_format"),
)
# The audio and image share of a call's tokens, under PostHog's names (its cost step bills them at
# the model's audio and image rates: nodejs/src/ingestion/pipelines/ai/costs/input-costs.ts).
_MODALITY_TOKENS = (
    (semconv.USAGE_AUDIO_INPUT_TOKENS, "$ai_audio_input_tokens"),
    (semconv.USAGE_IMAGE_INPUT_TOKENS, "$ai_image_input_tokens"),
    (semconv.USAGE_IMAGE_OUTPUT_TOKENS, "$ai_image_output_tokens"),
)
_MODALITY_TOKEN_KEYS = frozenset(key for key, _name in _MODALITY_TOKENS)
_MODEL_PARAMETER_NAMES = dict(_MODEL_PARAMETERS)
_SERVED_TIERS = (semconv.OPENAI_RESPONSE_SERVICE_TIER, semconv.ANTHROPIC_RESPONSE_SERVICE_TIER)


def _add_model_parameters(attrs: dict) -> None:
    """``$ai_model_parameters`` and the served ``$ai_service_tier`` (which picks PostHog's
    flex/priority price rows: costs/cost-model-matching.ts) of a generation or embedding."""
    parameters = {}
    # filter() tests the table's keys without a Python-level step for each absent one.
    for key in filter(attrs.__contains__, _MODEL_PARAMETER_NAMES):
        value = attrs[key]
        if value is not None:
            parameters[_MODEL_PARAMETER_NAMES[key]] = list(value) if isinstance(value, tuple) else value
    for key in _SERVED_TIERS:
        tier = attrs.get(key)
        if isinstance(tier, str) and tier:
            parameters["service_tier"] = tier
            attrs.setdefault("$ai_service_tier", tier)
            break
    if parameters and "$ai_model_parameters" not in attrs:
        attrs["$ai_model_parameters"] = parameters


def _parsed(value: Any) -> Any:
    """JSON as attribute values OTLP can carry: integers beyond int64 as text (a null is encoded
    as an empty value, which capture leaves out)."""
    if not isinstance(value, str):
        return value
    try:
        # The scanner alone, when it reads the whole text: what decode() does around it (skip
        # whitespace, report the error) costs as much as the scan of a few short messages.
        parsed, end = _SCAN(value, 0)
        if end == len(value):
            return parsed
    except StopIteration:  # leading whitespace, or no JSON value at all
        pass
    except ValueError:
        return _UNPARSED
    try:
        return _DECODER.decode(value)  # trailing whitespace, extra data
    except ValueError:
        return _UNPARSED


def _int64_or_text(text: str) -> Any:
    value = int(text)
    return value if -(2**63) <= value < 2**63 else text


_DECODER = json.JSONDecoder(parse_int=_int64_or_text)  # made once: json.loads(..., parse_int=) makes one a call
_SCAN = _DECODER.scan_once  # type: ignore[attr-defined]  # set by __init__, not declared in the stubs


_UNPARSED = object()


def _add_messages(attrs: dict) -> None:
    """``$ai_input`` / ``$ai_output_choices`` in the shapes PostHog's SDKs send (see
    posthog_messages). PostHog's mapping writes $ai_input from gen_ai.input.messages and
    prepends gen_ai.system_instructions (attribute-mapping.ts), so once translated those keys
    are not sent. Runs after privacy, media replacement and the size cap, on what they left;
    text that no longer parses (cut by the cap) is left to PostHog as it is."""
    if "$ai_input" not in attrs and (semconv.INPUT_MESSAGES in attrs or semconv.SYSTEM_INSTRUCTIONS in attrs):
        messages = _parsed(attrs.get(semconv.INPUT_MESSAGES))
        system = attrs.get(semconv.SYSTEM_INSTRUCTIONS)
        if system is not None:
            system = _parsed(system)
        if messages is not _UNPARSED and system is not _UNPARSED:
            translated = None
            if attrs.get(semconv.OPERATION_NAME) == semconv.Operation.EMBEDDINGS:
                translated = posthog_messages.embedding_input(messages)
            if translated is None:
                translated = posthog_messages.input_messages(messages, system)
            if translated is not None:
                attrs["$ai_input"] = translated
                attrs.pop(semconv.INPUT_MESSAGES, None)
                attrs.pop(semconv.SYSTEM_INSTRUCTIONS, None)
    if "$ai_output_choices" not in attrs and semconv.OUTPUT_MESSAGES in attrs:
        messages = _parsed(attrs[semconv.OUTPUT_MESSAGES])
        translated = posthog_messages.output_messages(messages) if messages is not _UNPARSED else None
        if translated is not None:
            attrs["$ai_output_choices"] = translated
            del attrs[semconv.OUTPUT_MESSAGES]


def _add_tools(attrs: dict) -> None:
    """``$ai_tools`` as PostHog's SDK sends it: ``[{"type": "function", "function": {name,
    description, parameters}}]`` (posthog/ai/openai), other tools as they are. A structured
    value arrives as JSON (capture turns OTLP arrays and key-value lists into arrays and objects:
    rust/capture/src/otel/fan_out.rs, any_value_to_json). The semconv key is then dropped: one
    branch of PostHog's mapping writes $ai_tools from it, overwriting ours with the flat shape."""
    definitions = attrs.get(semconv.TOOL_DEFINITIONS)
    if not isinstance(definitions, str) or "$ai_tools" in attrs:
        return
    try:
        parsed = json.loads(definitions)
    except ValueError:
        return  # cut by the size cap: kept as text
    if not isinstance(parsed, list):
        return
    tools = []
    for tool in parsed:
        if isinstance(tool, dict) and tool.get("type", "function") == "function" and "function" not in tool:
            function = {k: tool[k] for k in ("name", "description", "parameters") if tool.get(k) is not None}
            tool = {"type": "function", "function": function}
        tools.append(_otlp_value(tool))
    attrs["$ai_tools"] = tools
    del attrs[semconv.TOOL_DEFINITIONS]


def _otlp_value(value: Any) -> Any:
    """A JSON value as an attribute value OTLP can carry: nulls dropped, huge integers as text."""
    if isinstance(value, dict):
        return {str(k): _otlp_value(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_otlp_value(v) for v in value if v is not None]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return str(value)
    return value


def _add_base_url(attrs: dict) -> None:
    """``$ai_base_url`` as the full base URL the client used, where the adapter knows it.

    PostHog's mapping writes $ai_base_url from ``server.address`` (a host) and overwrites
    (attribute-mapping.ts, ATTRIBUTE_MAP), so the PostHog copy carries no server.address once
    the URL is known; without one, a default port's scheme is certain enough to name."""
    base_url = attrs.pop(semconv.BASE_URL, None)
    address = attrs.get(semconv.SERVER_ADDRESS)
    if not isinstance(base_url, str) or not base_url:
        port = attrs.get(semconv.SERVER_PORT)
        if not isinstance(address, str) or not address or port not in (443, 80):
            return
        base_url = ("https://" if port == 443 else "http://") + address
    attrs.setdefault("$ai_base_url", base_url)
    attrs.pop(semconv.SERVER_ADDRESS, None)


def _move_state(attrs: dict, target: str, sources: tuple, move: bool = False) -> None:
    """``move``: a delegated model step, whose messages the generation under it carries too;
    keeping them once, as state, keeps the trace from carrying the history twice."""
    if target in attrs:
        return
    for key in sources:
        if key in attrs:
            attrs[target] = attrs.pop(key) if move or key.startswith("posthog_autoinstrument.") else attrs[key]
            return


def _add_person_and_properties(attrs: dict, settings: Settings, identity: Optional[Identity]) -> None:
    """The person, session, properties, groups and flag variants of the event (see identity.py)."""
    end_user = attrs.pop(semconv.END_USER_ID, None)
    if not _has_distinct_id(attrs):
        distinct_id: Optional[str]
        if identity is not None and identity.distinct_id:
            distinct_id = identity.distinct_id
        elif settings.user_from_request and isinstance(end_user, str) and end_user:
            distinct_id = end_user
        else:
            distinct_id = settings.distinct_id
        if distinct_id:
            attrs["posthog.distinct_id"] = distinct_id
        else:
            attrs["$process_person_profile"] = False
    properties, groups = settings.properties, settings.groups  # (key, value) pairs: the later wins
    if identity is not None:
        if identity.session_id:
            attrs.setdefault("$session_id", identity.session_id)
        properties += identity.properties
        groups += identity.groups
        for key, variant in identity.feature_flags:
            attrs.setdefault(f"$feature/{key}", properties_json(variant))
    if properties:
        for key, value in dict(properties).items():
            attrs.setdefault(key, properties_json(value))
    if groups:
        # An object, as group analytics reads it (a key-value list arrives as one: fan_out.rs).
        attrs.setdefault("$groups", {str(k): str(v) for k, v in dict(groups).items()})


def _has_distinct_id(attrs: dict) -> bool:
    if attrs.keys().isdisjoint(_DISTINCT_ID_KEY_SET):  # the common case, in one C-level check
        return False
    for key in _DISTINCT_ID_KEYS:
        value = attrs.get(key)
        if value and isinstance(value, str):
            return True
    return False
