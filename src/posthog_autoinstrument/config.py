"""Settings from the environment, validated once per process.

Every problem becomes one clear line on stderr that names the variable and the fix; the
application always runs on. Settings are read lazily and cached, so importing this module
costs nothing.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Mapping, Optional
from urllib.parse import urlsplit

DEFAULT_HOST = "https://us.i.posthog.com"
OTLP_PATH = "/i/v0/ai/otel"

# Set in the environment once a process has printed its configuration warnings, so that
# child processes (workers, reloaders) inherit the configuration without repeating them.
_WARNED_MARKER = "_POSTHOG_AUTOINSTRUMENT_WARNED"

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


@dataclass(frozen=True)
class Settings:
    api_key: Optional[str]
    host: str
    endpoint: Optional[str]  # where the PostHog-ready stream goes; None when nothing may be sent
    disabled: bool  # kill switch: no patching at all
    dry_run: bool  # print what would be exported instead of sending it
    debug: bool
    privacy_mode: bool
    distinct_id: Optional[str]
    stream_usage: bool  # ask OpenAI-compatible streams for their usage chunk
    flush_timeout: float  # seconds process exit may wait for pending spans
    export_timeout: float  # seconds one HTTP request may take
    max_queue_size: int
    schedule_delay: float  # seconds between background exports
    max_span_bytes: int  # size cap of one exported span's attributes
    capture_media: bool  # keep base64 images/audio/documents instead of placeholders
    record_inputs: bool = True  # prompts, system instructions, tool arguments
    record_outputs: bool = True  # completions, tool results
    user_from_request: bool = True  # OpenAI `user`, Anthropic `metadata.user_id` name the person
    tracing_headers: bool = True  # posthog-js X-POSTHOG-* headers on incoming requests name the person
    handle_sigterm: bool = True  # flush on SIGTERM when the app leaves SIGTERM at its default
    properties: tuple = ()  # (key, value) pairs added to every event
    groups: tuple = ()  # (group type, key) pairs: $groups on every event
    dry_run_file: Optional[str] = None  # where a dry run appends its events, instead of stderr
    problems: tuple = field(default=())
    # POSTHOG_OTLP_ENDPOINT: the stream goes to this OTLP/HTTP URL (a Collector) instead of
    # PostHog, with the project token as Bearer only when one is set.
    otlp_endpoint: Optional[str] = None

    @property
    def exports_to_posthog(self) -> bool:
        return self.endpoint is not None or self.dry_run


def _flag(
    env: Mapping[str, str], name: str, default: bool, problems: list[str], when_unreadable: Optional[bool] = None
) -> bool:
    """A boolean variable. ``when_unreadable`` is the value a typo gets (privacy switches fail closed)."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    fallback = default if when_unreadable is None else when_unreadable
    problems.append(f"{name}={raw!r} is not a boolean; use true or false (using {str(fallback).lower()}).")
    return fallback


def _number(env: Mapping[str, str], name: str, default: float, problems: list[str], minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = None
    if value is None or value != value or value < minimum:
        problems.append(f"{name}={raw!r} is not a number >= {minimum:g}; using {default:g}.")
        return default
    return value


def _json_object(env: Mapping[str, str], name: str, problems: list[str]) -> tuple:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return ()
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        problems.append(f'{name} must be a JSON object like {{"environment": "production"}}; ignored.')
        return ()
    return tuple((str(k), v) for k, v in value.items())


# OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT in all the spellings instrumentations use.
_CONTENT_ON = {"true", "1", "yes", "on", "span_only", "span_and_event", "event_only"}
_CONTENT_OFF = {"false", "0", "no", "off", "no_content", "none"}


def _content_default(env: Mapping[str, str], problems: list[str]) -> bool:
    """Content capture unless the standard OpenTelemetry variable says otherwise."""
    raw = env.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
    if raw is None or raw.strip() == "":
        return True
    value = raw.strip().lower()
    if value in _CONTENT_ON:
        return True
    if value in _CONTENT_OFF:
        return False
    problems.append(
        f"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT={raw!r} is not understood; use true/false or "
        "SPAN_ONLY/NO_CONTENT (recording content)."
    )
    return True


def _validate_host(raw: Optional[str], problems: list[str]) -> Optional[str]:
    if raw is None or raw.strip() == "":
        return DEFAULT_HOST
    host = raw.strip().rstrip("/")
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(
            f"POSTHOG_HOST={raw!r} is not a URL; set it like https://us.i.posthog.com (or your "
            "EU/self-hosted host). Nothing will be sent to PostHog."
        )
        return None
    if parts.path.endswith(OTLP_PATH):
        host = host[: -len(OTLP_PATH)]
    return host


def _validate_otlp_endpoint(raw: Optional[str], problems: list[str]) -> Optional[str]:
    """``POSTHOG_OTLP_ENDPOINT``: a full URL, used as it is (no path is added)."""
    if raw is None or raw.strip() == "":
        return None
    url = raw.strip()
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        problems.append(
            f"POSTHOG_OTLP_ENDPOINT={raw!r} is not a URL; set it to the full OTLP/HTTP traces URL, "
            "like http://collector:4318/v1/traces. Nothing will be sent."
        )
        return ""
    return url


CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")


def ca_bundle(env: Mapping[str, str] = os.environ) -> tuple[Optional[str], Optional[str], list[str]]:
    """The CA bundle for HTTPS exports, from the standard variables (see ``export/egress.py``):
    ``(path, variable, problems)``: the CA bundle to verify servers with and the variable
    that named it; ``(None, None, problems)`` means certifi's bundle."""
    problems: list[str] = []
    for name in CA_VARIABLES:
        path = (env.get(name) or "").strip()
        if not path:
            continue
        usable = os.path.isdir(path) if name == "SSL_CERT_DIR" else os.path.isfile(path)
        if usable:
            return path, name, problems
        kind = "directory" if name == "SSL_CERT_DIR" else "file"
        problems.append(
            f"{name}={path!r} is not a {kind}; it is ignored, so HTTPS exports verify "
            "servers with the next CA setting or certifi's bundle."
        )
    return None, None, problems


def _validate_key(
    env: Mapping[str, str], problems: list[str], needed: bool, without_key: str = "Nothing will be sent to PostHog."
) -> Optional[str]:
    raw = env.get("POSTHOG_API_KEY")
    name = "POSTHOG_API_KEY"
    if raw is None:
        raw = env.get("POSTHOG_PROJECT_API_KEY")
        name = "POSTHOG_PROJECT_API_KEY"
    if raw is None:
        if needed:
            problems.append(
                "POSTHOG_API_KEY is not set, so LLM calls are not sent to PostHog; set it to your "
                "project token (phc_..., Project settings in PostHog)."
            )
        return None
    key = raw.strip()
    if not key:
        problems.append(f"{name} is empty; set it to your project token (phc_...). {without_key}")
        return None
    if key.startswith("phx_"):
        problems.append(
            f"{name} holds a personal API key (phx_...), which PostHog refuses for ingestion; use the "
            f"project token (phc_..., Project settings in PostHog). {without_key}"
        )
        return None
    if len(key) > 64 or any(ch.isspace() or ord(ch) < 32 for ch in key):
        problems.append(f"{name} does not look like a project token (phc_...). {without_key}")
        return None
    return key


def load(env: Optional[Mapping[str, str]] = None) -> Settings:
    env = os.environ if env is None else env
    problems: list[str] = []
    disabled = _flag(env, "POSTHOG_AUTOINSTRUMENT_DISABLED", False, problems) or _flag(
        env, "OTEL_SDK_DISABLED", False, problems
    )
    dry_run = _flag(env, "POSTHOG_DRY_RUN", False, problems)
    otlp_endpoint = _validate_otlp_endpoint(env.get("POSTHOG_OTLP_ENDPOINT"), problems)
    host = _validate_host(env.get("POSTHOG_HOST"), problems)
    if otlp_endpoint is None:
        key = _validate_key(env, problems, needed=not dry_run and not disabled)
        endpoint = f"{host}{OTLP_PATH}" if (key and host) else None
    else:
        # The Collector (or whatever listens there) may hold the token itself, so none is needed;
        # one that is set is sent, and a malformed one is left out rather than stopping the export.
        key = _validate_key(
            env, problems, needed=False, without_key="It is left out of the requests to POSTHOG_OTLP_ENDPOINT."
        )
        endpoint = otlp_endpoint or None
    if endpoint and endpoint.startswith("https:") and not disabled:
        problems.extend(ca_bundle(env)[2])
    distinct_id = (env.get("POSTHOG_DISTINCT_ID") or "").strip() or None
    content = _content_default(env, problems)
    return Settings(
        api_key=key,
        host=host or DEFAULT_HOST,
        endpoint=None if disabled else endpoint,
        disabled=disabled,
        dry_run=dry_run and not disabled,
        debug=_flag(env, "POSTHOG_DEBUG", False, problems),
        privacy_mode=_flag(env, "POSTHOG_PRIVACY_MODE", False, problems, when_unreadable=True),
        distinct_id=distinct_id,
        stream_usage=_flag(env, "POSTHOG_AI_STREAM_USAGE", True, problems),
        flush_timeout=_number(env, "POSTHOG_FLUSH_TIMEOUT", 3.0, problems),
        export_timeout=_number(env, "POSTHOG_EXPORT_TIMEOUT", 10.0, problems, minimum=0.1),
        max_queue_size=int(_number(env, "POSTHOG_MAX_QUEUE_SIZE", 2048, problems, minimum=1)),
        schedule_delay=_number(env, "POSTHOG_EXPORT_INTERVAL", 1.0, problems, minimum=0.01),
        max_span_bytes=int(_number(env, "POSTHOG_MAX_SPAN_BYTES", 500_000, problems, minimum=1000)),
        capture_media=_flag(env, "POSTHOG_AI_CAPTURE_MEDIA", False, problems),
        record_inputs=_flag(env, "POSTHOG_AI_RECORD_INPUTS", content, problems, when_unreadable=False),
        record_outputs=_flag(env, "POSTHOG_AI_RECORD_OUTPUTS", content, problems, when_unreadable=False),
        user_from_request=_flag(env, "POSTHOG_AI_USER_FROM_REQUEST", True, problems),
        tracing_headers=_flag(env, "POSTHOG_AI_TRACING_HEADERS", True, problems),
        handle_sigterm=_flag(env, "POSTHOG_HANDLE_SIGTERM", True, problems),
        properties=_json_object(env, "POSTHOG_AI_PROPERTIES", problems),
        groups=_json_object(env, "POSTHOG_AI_GROUPS", problems),
        dry_run_file=(env.get("POSTHOG_DRY_RUN_FILE") or "").strip() or None,
        problems=tuple(problems),
        otlp_endpoint=otlp_endpoint or None,
    )


_settings: Optional[Settings] = None


def settings() -> Settings:
    """The process's settings; configuration problems are reported once, on first use."""
    global _settings
    if _settings is None:
        _settings = load()
        report_problems(_settings)
    return _settings


def reset() -> None:
    """Forget the cached settings (tests, and processes that change their environment)."""
    global _settings
    _settings = None


_stderr_lock = threading.Lock()


def say(message: str) -> None:
    """One line of ours on stderr, written whole (threads must not interleave their lines)."""
    try:
        with _stderr_lock:
            sys.stderr.write(f"posthog-instrument: {message}\n")
            sys.stderr.flush()
    except Exception:  # a closed or broken stderr is the app's business, not an error of ours
        pass


def report_problems(current: Settings) -> None:
    if not current.problems or os.environ.get(_WARNED_MARKER):
        return
    for problem in current.problems:
        say(problem)
    os.environ[_WARNED_MARKER] = "1"


def has_destination(settings: Settings) -> bool:
    """Instrument only when spans can go somewhere: PostHog, a dry run, or the user's own exporter."""
    if settings.exports_to_posthog:
        return True
    user_exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    return user_exporter not in ("", "none")


def log_to_stderr() -> None:
    """``POSTHOG_DEBUG``: our debug log on stderr."""
    import logging

    logger = logging.getLogger("posthog_autoinstrument")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("posthog-instrument %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
