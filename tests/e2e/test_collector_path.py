"""End to end: the PostHog-ready stream through an OpenTelemetry Collector, whole.

With ``POSTHOG_OTLP_ENDPOINT`` the app sends the same stream it would send to PostHog (AI
spans only, our dialect, privacy, person linking) to a Collector's OTLP/HTTP receiver. The
stand-in Collector forwards each request, unchanged, to the PostHog stand-in as an ``otlphttp``
exporter would, with its own ``Authorization`` header: PostHog must receive the same events
as on the direct path. A Collector that refuses costs the app nothing; its events are counted
as undelivered, and a bad URL is one line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import APPS, LAUNCHER, clean_env, run
from tests.servers import FakeOpenAI, FakePostHog
from tests.servers.otlp_collector import ForwardingCollector

APP = [str(APPS / "openai_app.py"), "chat"]
COLLECTOR_TOKEN = "phc_collector_held_token"
APP_TOKEN = "phc_test_project_token"
EXAMPLE = Path(__file__).parents[2] / "examples" / "otel-collector-posthog.yaml"
# What differs between two runs of the same call: ids and timings.
VARYING = ("trace_id", "span_id", "parent_span_id", "start_ns", "end_ns")
VARYING_ATTRIBUTES = (
    "$ai_span_id",
    "$ai_trace_id",
    "$ai_parent_id",
    "$ai_latency",
    "gen_ai.response.id",
)  # the OpenAI stand-in makes a new one per response
VARYING_RESOURCE = ("service.instance.id",)  # one per process


@pytest.fixture
def openai_server():
    with FakeOpenAI() as server:
        yield server


def app_env(openai_server, **overrides: str) -> dict:
    env = clean_env(
        OPENAI_BASE_URL=openai_server.base_url, OPENAI_API_KEY="sk-test-secret-key", POSTHOG_EXPORT_INTERVAL="0.05"
    )
    env.update(overrides)
    return env


def comparable(spans: list) -> list:
    """Spans without what differs from run to run."""
    result = []
    for span in spans:
        span = {k: v for k, v in span.items() if k not in VARYING}
        span["attributes"] = {k: v for k, v in span["attributes"].items() if k not in VARYING_ATTRIBUTES}
        span["resource"] = {k: v for k, v in span["resource"].items() if k not in VARYING_RESOURCE}
        span["events"] = [{k: v for k, v in event.items() if k != "time_ns"} for event in span["events"]]
        result.append(span)
    return result


def direct_run(openai_server):
    with FakePostHog() as posthog:
        result = run(
            [LAUNCHER, "python", *APP], app_env(openai_server, POSTHOG_API_KEY=APP_TOKEN, POSTHOG_HOST=posthog.host)
        )
        return result, posthog.spans


@pytest.mark.parametrize("app_token", [None, APP_TOKEN], ids=["collector holds the token", "app sends the token"])
def test_posthog_receives_the_same_events_through_the_collector(openai_server, app_token):
    plain = run([sys.executable, *APP], app_env(openai_server))
    direct, direct_spans = direct_run(openai_server)
    with FakePostHog() as posthog:
        with ForwardingCollector(posthog.endpoint, token=COLLECTOR_TOKEN) as collector:
            env = app_env(openai_server, POSTHOG_OTLP_ENDPOINT=collector.traces_url)
            if app_token:
                env["POSTHOG_API_KEY"] = app_token
            through = run([LAUNCHER, "python", *APP], env)
        forwarded_spans = posthog.spans
        posthog_requests = posthog.requests

    assert plain.returncode == direct.returncode == through.returncode == 0
    assert plain.stdout == direct.stdout == through.stdout and plain.stdout.startswith("ChatCompletion ")
    assert direct.stderr == through.stderr == ""
    # The collector received our stream and forwarded it as it came.
    (received,) = collector.received
    assert received["path"] == "/v1/traces" and received["status"] == 200 and received["forwarded"]
    assert received["headers"]["content-type"] == "application/x-protobuf"
    if app_token:
        assert received["headers"]["authorization"] == f"Bearer {app_token}"
    else:
        assert "authorization" not in received["headers"]
    (request,) = posthog_requests
    assert request["headers"]["authorization"] == f"Bearer {COLLECTOR_TOKEN}"
    assert request["decompressed"] == received["body"]
    # PostHog got the same events as on the direct path: the dialect is applied before the collector.
    assert len(direct_spans) == 1
    assert comparable(forwarded_spans) == comparable(direct_spans)
    attributes = forwarded_spans[0]["attributes"]
    assert attributes["$ai_model_parameters"]["temperature"] == 0.3
    assert attributes["$ai_input"][-1]["content"] == "Say hello"
    assert attributes["posthog.distinct_id"] == "user-123"  # person linking, from the request's `user`


def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("refusal", ["503", "connection refused"])
def test_a_refusing_collector_costs_the_app_nothing(openai_server, refusal):
    plain = run([sys.executable, *APP], app_env(openai_server))
    with FakePostHog() as posthog:
        with ForwardingCollector(posthog.endpoint, token=COLLECTOR_TOKEN, plan=["503"] * 50) as collector:
            url = collector.traces_url if refusal == "503" else f"http://127.0.0.1:{unused_port()}/v1/traces"
            result = run(
                [LAUNCHER, "python", *APP], app_env(openai_server, POSTHOG_OTLP_ENDPOINT=url, POSTHOG_FLUSH_TIMEOUT="1")
            )
        assert posthog.requests == []
    assert (result.returncode, result.stdout) == (plain.returncode, plain.stdout)
    if refusal == "503":
        assert collector.received and all(r["status"] == 503 and not r["forwarded"] for r in collector.received)
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    if refusal == "503":
        assert lines[0].startswith(f"posthog-instrument: {url} did not accept LLM events (HTTP 503"), lines[0]
    else:
        assert lines[0].startswith(f"posthog-instrument: LLM events could not be sent to {url} ("), lines[0]
    assert lines[1] == f"posthog-instrument: 1 LLM event(s) could not be delivered to {url} (0 delivered)."


def test_a_bad_endpoint_url_is_one_line_and_nothing_is_sent(openai_server):
    plain = run([sys.executable, *APP], app_env(openai_server))
    with FakePostHog() as posthog:
        result = run(
            [LAUNCHER, "python", *APP],
            app_env(
                openai_server,
                POSTHOG_OTLP_ENDPOINT="collector:4318",
                POSTHOG_API_KEY=APP_TOKEN,
                POSTHOG_HOST=posthog.host,
            ),
        )
        assert posthog.requests == []  # not sent to PostHog behind the user's back either
    assert (result.returncode, result.stdout) == (plain.returncode, plain.stdout)
    assert result.stderr.splitlines() == [
        "posthog-instrument: POSTHOG_OTLP_ENDPOINT='collector:4318' is not a URL; set it to the full OTLP/HTTP "
        "traces URL, like http://collector:4318/v1/traces. Nothing will be sent."
    ]


def test_doctor_says_events_go_to_the_collector_and_checks_it():
    import json

    with FakePostHog() as posthog:
        with ForwardingCollector(posthog.endpoint, token=COLLECTOR_TOKEN) as collector:
            url = collector.traces_url
            env = clean_env(POSTHOG_OTLP_ENDPOINT=url)
            as_json = json.loads(run([LAUNCHER, "doctor", "--json"], env).stdout)
            as_text = run([LAUNCHER, "doctor"], env).stdout
        assert [span["name"] for span in posthog.spans] == ["posthog-instrument doctor"] * 2
    assert as_json["endpoint"] == url
    assert as_json["destination"] == (
        f"the OTLP/HTTP endpoint {url} (POSTHOG_OTLP_ENDPOINT), without an Authorization "
        "header; that endpoint (e.g. your Collector) forwards them to PostHog"
    )
    assert as_json["connectivity"]["ok"] and as_json["delivers"]
    assert not [p for p in as_json["problems"] if "POSTHOG_API_KEY" in p]  # not needed here
    assert f"Events go to: {as_json['destination']}" in as_text.splitlines()
    assert f"Connectivity: OK: the OTLP endpoint accepted a test span at {url}" in as_text


def test_the_example_collector_configuration_forwards_to_posthog_unchanged():
    config = yaml.safe_load(EXAMPLE.read_text())
    receiver = config["receivers"]["otlp"]["protocols"]["http"]
    assert receiver["endpoint"].endswith(":4318")
    exporter = config["exporters"]["otlphttp/posthog"]
    # otlphttp appends /v1/traces to `endpoint`, never to `traces_endpoint`.
    assert "endpoint" not in exporter
    assert exporter["traces_endpoint"] == "https://us.i.posthog.com/i/v0/ai/otel"
    assert exporter["headers"] == {"authorization": "Bearer ${env:POSTHOG_API_KEY}"}
    (pipeline,) = config["service"]["pipelines"].values()
    assert pipeline == {"receivers": ["otlp"], "exporters": ["otlphttp/posthog"]}  # nothing merges or alters
