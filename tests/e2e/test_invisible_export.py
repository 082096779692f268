"""End to end: our export requests never show up in the app's own tracing.

The app traces its requests with Sentry, or with OpenTelemetry's httpx instrumentation (loaded by
the launcher as ``opentelemetry-instrument`` would, because the app configures an exporter of its
own); inside one traced request it makes an LLM call and waits until PostHog has received it. The
app's own HTTP request (the OpenAI call) is in its tracing; our POST to ``/i/v0/ai/otel`` is not,
neither as a span nor as a breadcrumb.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import APPS, LAUNCHER, clean_env

OTEL_PATH = "/i/v0/ai/otel"


def run_traced(mode: str, fake_openai, posthog, **env: str) -> str:
    """Run the app; answer its "called" once PostHog has the call; return its stdout."""
    environment = clean_env(
        OPENAI_BASE_URL=fake_openai.base_url,
        OPENAI_API_KEY="sk-test",
        POSTHOG_API_KEY="phc_test_project_token",
        POSTHOG_HOST=posthog.host,
        POSTHOG_EXPORT_INTERVAL="60",
        **env,
    )
    app = subprocess.Popen(
        [LAUNCHER, "python", str(APPS / "invisible_export_app.py"), mode],
        env=environment,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert app.stdout.readline() == "called\n", app.stderr.read() if app.poll() is not None else ""
        posthog.wait_for_spans(1, timeout=30)  # exported while the app's request is still open
        out, err = app.communicate("go\n", timeout=60)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
    assert app.returncode == 0, err
    assert "done\n" in out, out + err
    assert [s["name"] for s in posthog.spans] == ["chat gpt-4o-mini"]
    return out


def console_spans(text: str) -> list:
    """The spans OpenTelemetry's console exporter printed (JSON objects, one after another)."""
    decoder, spans, at = json.JSONDecoder(), [], 0
    while True:
        at = text.find("{", at)
        if at < 0:
            return spans
        span, at = decoder.raw_decode(text, at)
        spans.append(span)


def test_opentelemetry_httpx_instrumentation_traces_the_app_request_not_ours(fake_openai, posthog, capfd):
    pytest.importorskip("opentelemetry.instrumentation.httpx")
    environment = {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "shop"}
    output = run_traced("otel", fake_openai, posthog, **environment)
    spans = console_spans(output)
    urls = [
        s["attributes"].get("url.full") or s["attributes"].get("http.url")
        for s in spans
        if s["kind"] == "SpanKind.CLIENT" and s["name"].startswith("POST")
    ]
    assert urls == [f"{fake_openai.base_url}/chat/completions"], spans  # the app's own request, and only it
    assert OTEL_PATH not in output


def test_sentry_records_the_app_request_not_ours(fake_openai, posthog, tmp_path):
    pytest.importorskip("sentry_sdk")
    envelopes = tmp_path / "envelopes"
    run_traced("sentry", fake_openai, posthog, SENTRY_ENVELOPES=str(envelopes))
    sent = envelopes.read_text()
    assert "/chat/completions" in sent  # Sentry records the app's own HTTP request ...
    assert '"http.client"' in sent or "http.client" in sent
    assert OTEL_PATH not in sent  # ... and no span or breadcrumb of ours
