"""``posthog-instrument doctor``: what would happen, explained, without running an app.

Prints the effective configuration (token masked) and where each value came from, the LLM
libraries installed and whether each will be instrumented (and if not, why), the privacy
state, where events go (PostHog, or ``POSTHOG_OTLP_ENDPOINT``) with the proxy and CA bundle the
export uses, and the result of sending one test span there the same way. Exits
non-zero, and does not say everything looks right, when anything is wrong: a configuration that
cannot work, a problem in it, or an installed library whose calls (some or all) will not be recorded.
"""

from __future__ import annotations

import json
import os
import sys
import time
from importlib import metadata
from typing import Optional

from . import __version__, config

# Variables doctor reports, each with the setting it becomes (None: reported as given).
_VARIABLES = (
    ("POSTHOG_API_KEY", "api_key"),
    ("POSTHOG_PROJECT_API_KEY", None),
    ("POSTHOG_HOST", "host"),
    ("POSTHOG_OTLP_ENDPOINT", "otlp_endpoint"),
    ("POSTHOG_DISTINCT_ID", "distinct_id"),
    ("POSTHOG_PRIVACY_MODE", "privacy_mode"),
    ("POSTHOG_AI_RECORD_INPUTS", "record_inputs"),
    ("POSTHOG_AI_RECORD_OUTPUTS", "record_outputs"),
    ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", None),
    ("POSTHOG_AI_CAPTURE_MEDIA", "capture_media"),
    ("POSTHOG_AI_STREAM_USAGE", "stream_usage"),
    ("POSTHOG_AI_USER_FROM_REQUEST", "user_from_request"),
    ("POSTHOG_AI_TRACING_HEADERS", "tracing_headers"),
    ("POSTHOG_AI_PROPERTIES", "properties"),
    ("POSTHOG_AI_GROUPS", "groups"),
    ("POSTHOG_MAX_SPAN_BYTES", "max_span_bytes"),
    ("POSTHOG_FLUSH_TIMEOUT", "flush_timeout"),
    ("POSTHOG_EXPORT_TIMEOUT", "export_timeout"),
    ("POSTHOG_EXPORT_INTERVAL", "schedule_delay"),
    ("POSTHOG_MAX_QUEUE_SIZE", "max_queue_size"),
    ("POSTHOG_HANDLE_SIGTERM", "handle_sigterm"),
    ("POSTHOG_DRY_RUN", "dry_run"),
    ("POSTHOG_DRY_RUN_FILE", "dry_run_file"),
    ("POSTHOG_DEBUG", "debug"),
    ("POSTHOG_AUTOINSTRUMENT_DISABLED", "disabled"),
    ("OTEL_SDK_DISABLED", None),
    ("OTEL_TRACES_EXPORTER", None),
    ("OTEL_SERVICE_NAME", None),
    ("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", None),
)
# Settings another variable can decide when this one is unset.
_DERIVED_FROM = {
    "record_inputs": "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    "record_outputs": "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    "disabled": "OTEL_SDK_DISABLED",
}


# Variables that hold the project token: never shown in full.
_TOKEN_VARIABLES = frozenset({"POSTHOG_API_KEY", "POSTHOG_PROJECT_API_KEY"})


def mask(token: str) -> str:
    return token[:6] + "..." + token[-4:] if len(token) > 12 else token[:4] + "..."


def _shown(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple):
        return json.dumps(dict(value)) if value else "none"
    return "none" if value is None else str(value)


def _configuration(env: dict, settings: config.Settings) -> list:
    """Each variable with the value in effect and where that value came from."""
    problems = " ".join(settings.problems)
    rows = []
    for name, setting in _VARIABLES:
        raw = env.get(name)
        if setting is None:
            if raw is not None:
                shown = mask(raw.strip()) if name in _TOKEN_VARIABLES else raw
                rows.append({"variable": name, "value": shown, "source": "environment"})
            continue
        value = getattr(settings, setting)
        if setting == "api_key":
            raw = raw if raw is not None else env.get("POSTHOG_PROJECT_API_KEY")
            value = mask(value) if value else "none"
        if raw is None or raw.strip() == "":
            derived = _DERIVED_FROM.get(setting)
            source = f"from {derived}" if derived and env.get(derived, "").strip() else "default"
        elif f"{name}=" in problems or (setting in ("api_key", "host", "otlp_endpoint") and name in problems):
            shown = mask(raw.strip()) if setting == "api_key" else repr(raw)
            source = f"environment value {shown} not usable; see problems"
        else:
            source = "environment"
        rows.append({"variable": name, "value": _shown(value) if setting != "api_key" else value, "source": source})
    return rows


def _libraries(env: dict, settings: config.Settings) -> list:
    from packaging.requirements import Requirement

    from .config import has_destination

    if settings.disabled:
        blocked = "not instrumented: instrumentation is disabled (kill switch)"
    elif not has_destination(settings):
        blocked = (
            "not instrumented: nowhere to send events (no valid POSTHOG_API_KEY, no dry run, no OTEL_TRACES_EXPORTER)"
        )
    else:
        blocked = None
    disabled = {n.strip() for n in env.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",") if n.strip()}
    rows = []
    for entry in metadata.entry_points(group="posthog_autoinstrument_instrumentors"):
        if not entry.value.startswith("posthog_autoinstrument."):
            continue
        try:
            # What the distro checks before instrumenting (BaseInstrumentor's interface).
            instrumentor = entry.load()()
            requirements = instrumentor.instrumentation_dependencies()
        except Exception as exc:
            rows.append({"adapter": entry.name, "library": "?", "status": f"broken adapter: {exc}", "problem": True})
            continue
        for text in requirements or ():
            requirement = Requirement(text)
            try:
                version: Optional[str] = metadata.version(requirement.name)
            except metadata.PackageNotFoundError:
                version = None
            row = {"adapter": entry.name, "library": requirement.name, "version": version}
            if entry.name in disabled or "*" in disabled:
                row["status"] = "disabled by OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
            elif blocked and version is not None:
                row["status"] = blocked
            elif version is None:
                row["status"] = "not installed"
            elif requirement.specifier.contains(version, prereleases=True):
                row.update(_instrumented(instrumentor, version))
            else:
                row["status"] = f"version not supported (supported: {requirement.specifier}); not instrumented"
                row["problem"] = True
            rows.append(row)
    return rows


def _instrumented(instrumentor, version: str) -> dict:
    """The status of a supported release: the calls it will not record, found as the adapter
    finds them (``instrumentation.base.missing_targets``), are named."""
    from .instrumentation.base import missing_targets

    try:
        missing = missing_targets(instrumentor.targets(), version)
    except Exception as exc:
        return {"status": f"broken adapter: {exc}", "problem": True}
    if not missing:
        return {"status": "will be instrumented when the app imports it"}
    names = [f"{target.module}.{target.qualname}" for target in missing]
    return {
        "status": "will be instrumented when the app imports it, but these calls will not be recorded "
        f"(not found in this release): {', '.join(names)}",
        "not_recorded": names,
        "problem": True,
    }


def _privacy(settings: config.Settings) -> str:
    if settings.privacy_mode:
        return "privacy mode: no prompts, outputs or error texts are sent; metadata only"
    recorded = [name for name, on in (("inputs", settings.record_inputs), ("outputs", settings.record_outputs)) if on]
    text = f"recording {' and '.join(recorded)}" if recorded else "recording no content"
    media = "kept" if settings.capture_media else "replaced by placeholders"
    return f"{text}; inline media {media}; spans capped at {settings.max_span_bytes} bytes"


def _connectivity(settings: config.Settings) -> dict:
    if settings.disabled:
        return {"ok": False, "message": "instrumentation is disabled (kill switch); nothing is sent"}
    if settings.dry_run:
        return {"ok": True, "message": "dry run: events are printed to stderr, nothing is sent"}
    if not settings.endpoint:
        return {"ok": False, "message": "not checked: no valid project token and host (see problems)"}
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext, TraceFlags
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    import random

    from .configurator import sender_for
    from .export.exporter import encode

    now = time.time_ns()
    span = ReadableSpan(
        name="posthog-instrument doctor",
        context=SpanContext(random.getrandbits(128), random.getrandbits(64), False, TraceFlags(1)),
        attributes={"gen_ai.operation.name": "posthog_instrument_doctor", "$process_person_profile": False},
        start_time=now,
        end_time=now + 1_000_000,
        instrumentation_scope=InstrumentationScope("posthog_autoinstrument", __version__),
    )
    sender = sender_for(settings, timeout=min(settings.export_timeout, 10.0))
    started = time.monotonic()
    # One attempt window of a few seconds: doctor answers quickly even when PostHog is unreachable.
    delivery = sender.send(encode([span]), started + 4.0, lambda: False, report=False)
    sender.close()
    took = f"{(time.monotonic() - started) * 1000:.0f} ms"
    receiver = "the OTLP endpoint" if settings.otlp_endpoint else "PostHog"
    if delivery.ok:
        return {
            "ok": True,
            "status": delivery.status,
            "message": f"{receiver} accepted a test span at {settings.endpoint} (HTTP {delivery.status}, {took})",
        }
    if settings.otlp_endpoint and delivery.status is not None:
        plain = f"the OTLP endpoint refused the test span: {delivery.reason}"
    elif delivery.status == 401:
        plain = (
            "PostHog refused the project token (HTTP 401): check POSTHOG_API_KEY and that POSTHOG_HOST is your region"
        )
    elif delivery.status is None:
        plain = f"could not reach {settings.endpoint}: {delivery.reason}"
    else:
        plain = f"PostHog refused the test span: {delivery.reason}"
    return {"ok": False, "status": delivery.status, "message": plain}


def _destination(settings: config.Settings) -> str:
    """Where events go, in words."""
    if settings.disabled:
        return "nowhere: instrumentation is disabled"
    if settings.dry_run:
        return "stderr (dry run); nothing is sent"
    if not settings.endpoint:
        return "nowhere: no valid project token and host (see problems)"
    if settings.otlp_endpoint:
        token = "with the project token as Bearer" if settings.api_key else "without an Authorization header"
        return (
            f"the OTLP/HTTP endpoint {settings.endpoint} (POSTHOG_OTLP_ENDPOINT), {token}; "
            "that endpoint (e.g. your Collector) forwards them to PostHog"
        )
    return f"PostHog at {settings.endpoint}"


def _egress(settings: config.Settings) -> dict:
    """The proxy and CA bundle the export's requests use (``export/egress.py``)."""
    if not settings.endpoint or settings.dry_run or settings.disabled:
        return {"proxy": "not used", "ca_bundle": "not used"}
    from .export import egress

    route = egress.route(settings.endpoint)
    return {
        "proxy": route.describe_proxy(),
        "proxy_url": egress.masked_url(route.proxy) if route.proxy else None,
        "proxy_variable": route.proxy_variable,
        "ca_bundle": route.describe_ca(),
        "ca_variable": route.ca_variable,
    }


def report(env: Optional[dict] = None, check_connectivity: bool = True) -> dict:
    env = dict(os.environ if env is None else env)
    settings = config.load(env)
    result = {
        "version": __version__,
        "python": sys.executable,
        "configuration": _configuration(env, settings),
        "endpoint": settings.endpoint,
        "destination": _destination(settings),
        "egress": _egress(settings),
        "problems": list(settings.problems),
        "privacy": _privacy(settings),
        "person": (
            f"POSTHOG_DISTINCT_ID={settings.distinct_id}"
            if settings.distinct_id
            else "from context()/posthog SDK/request headers/baggage/the LLM request; otherwise anonymous"
        ),
        "libraries": _libraries(env, settings),
    }
    result["problems"] += [
        f"{row['library']} {row.get('version') or ''}: {row['status']} [{row['adapter']}]"
        for row in result["libraries"]
        if row.get("problem")
    ]
    result["connectivity"] = _connectivity(settings) if check_connectivity else {"ok": True, "message": "not checked"}
    # Events reach PostHog; "ok" (and "Everything looks right.") only when nothing is wrong besides.
    result["delivers"] = bool(settings.exports_to_posthog and result["connectivity"]["ok"])
    result["ok"] = result["delivers"] and not result["problems"]
    return result


def print_report(result: dict, stream=None) -> None:
    out = stream or sys.stdout
    write = lambda line="": print(line, file=out)  # noqa: E731
    write(f"posthog-instrument {result['version']} doctor  ({result['python']})")
    write()
    write("Configuration")
    width = max(len(r["variable"]) for r in result["configuration"]) if result["configuration"] else 10
    for row in result["configuration"]:
        write(f"  {row['variable']:<{width}}  {row['value']}  ({row['source']})")
    write(f"  {'export endpoint':<{width}}  {result['endpoint'] or 'none'}")
    write()
    write(f"Events go to: {result['destination']}")
    write(f"Proxy:        {result['egress']['proxy']}")
    write(f"CA bundle:    {result['egress']['ca_bundle']}")
    write()
    write(f"Privacy: {result['privacy']}")
    write(f"Person:  {result['person']}")
    write()
    write("Libraries")
    for row in result["libraries"]:
        version = row.get("version") or ""
        write(f"  {row['library']:<16} {version:<12} {row['status']}  [{row['adapter']}]")
    write()
    if result["problems"]:
        write("Problems")
        for problem in result["problems"]:
            write(f"  - {problem}")
        write()
    marker = "OK" if result["connectivity"]["ok"] else "FAILED"
    write(f"Connectivity: {marker}: {result['connectivity']['message']}")
    write()
    if result["ok"]:
        write("Everything looks right.")
    elif result["delivers"]:
        write("LLM events can reach PostHog, but not everything is right; see Problems above.")
    else:
        write("This configuration cannot deliver LLM events to PostHog; see above.")


def main(args: list) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="posthog-instrument doctor", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--no-network", action="store_true", help="skip the connectivity check")
    options = parser.parse_args(args)
    result = report(check_connectivity=not options.no_network)
    if options.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)
    return 0 if result["ok"] else 1
