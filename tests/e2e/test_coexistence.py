"""End to end: beside the user's own OpenTelemetry set-up.

The environment has ``opentelemetry-distro``, the OTLP/HTTP exporter and OpenTelemetry's httpx
instrumentation installed (the test extra), and ``OTEL_EXPORTER_OTLP_ENDPOINT`` points at a
loopback collector. ``coexist_app.py`` makes an OpenAI call inside a span of its own.

- Installed but not asked for (plain ``opentelemetry-instrument``): nothing changes, nothing of
  ours is printed, the collector gets the app's spans.
- ``posthog-instrument``, alone or doubled with ``opentelemetry-instrument`` or itself, or in a
  child re-launched by a reloader: the user's set-up works as under ``opentelemetry-instrument``
  (the distro's defaults included), and PostHog additionally gets each AI span exactly once.
- An app that installs its own TracerProvider after its first call: its resource (service name)
  is on the AI spans from then on.
"""

from __future__ import annotations

import sys
from collections import Counter

import pytest

from tests.conftest import APPS, BIN, LAUNCHER, clean_env, run
from tests.e2e.traces import message_text, posthog_input
from tests.servers import FakeOpenAI, FakePostHog
from tests.servers.otlp_collector import FakeCollector

APP = str(APPS / "coexist_app.py")
OTEL_INSTRUMENT = str(BIN / "opentelemetry-instrument")
REPLY = "reply Hello from fake OpenAI"
CHAT = "chat gpt-4o-mini"


@pytest.fixture
def servers():
    with FakeOpenAI() as openai_server, FakePostHog() as posthog, FakeCollector() as collector:
        yield openai_server, posthog, collector


def user_env(servers, posthog_key: bool = True, **overrides: str) -> dict:
    """An environment with the user's OpenTelemetry set-up: opentelemetry-distro's defaults
    (no OTEL_TRACES_EXPORTER), sending over HTTP to the loopback collector."""
    openai_server, posthog, collector = servers
    env = clean_env(
        OPENAI_BASE_URL=openai_server.base_url,
        OPENAI_API_KEY="sk-test-secret-key",
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",  # the distro's default is gRPC, not installed here
        OTEL_BSP_SCHEDULE_DELAY="50",
        OTEL_METRIC_EXPORT_INTERVAL="600000",  # metrics only at exit
    )
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER"):
        del env[name]  # the distro's defaults apply
    if posthog_key:
        env.update(POSTHOG_API_KEY="phc_test_project_token", POSTHOG_HOST=posthog.host, POSTHOG_EXPORT_INTERVAL="0.05")
    env.update(overrides)
    return env


def names(spans: list) -> Counter:
    return Counter(span["name"] for span in spans)


def prompt(span: dict) -> str:
    return message_text(posthog_input(span)[0])


def assert_collector_got_everything(collector, calls: int, service: str = "unknown_service:python") -> None:
    """The app's span, the httpx instrumentation's and ours for each call, each exactly once."""
    spans = collector.spans
    expected = Counter({CHAT: calls, "POST": calls, **{f"checkout {n}": 1 for n in range(1, calls + 1)}})
    assert names(spans) == expected
    by_id = {span["span_id"]: span for span in spans}
    for span in spans:
        assert span["resource"]["service.name"] == service
        if span["name"] == CHAT:
            assert by_id[span["parent_span_id"]]["name"].startswith("checkout ")
            assert not [key for key in span["attributes"] if key.startswith("$")]  # no PostHog dialect here


# ---------------------------------------------------------------------------
# Installed, not asked for
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "setting",
    [
        {},
        {"POSTHOG_API_KEY": None},
        {"OTEL_PYTHON_DISTRO": "distro", "OTEL_PYTHON_CONFIGURATOR": "configurator"},
    ],
    ids=["distro defaults", "no posthog key", "distro and configurator named"],
)
def test_plain_opentelemetry_instrument_is_unchanged_by_installing_us(servers, setting):
    _, posthog, collector = servers
    env = user_env(servers, **{k: v for k, v in setting.items() if v is not None})
    for name in [k for k, v in setting.items() if v is None]:
        env.pop(name)
    result = run([OTEL_INSTRUMENT, "python", APP], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{REPLY}\nprovider TracerProvider\n"
    assert result.stderr == ""  # nothing of ours, and no "Configuration of ... not loaded"
    assert names(collector.spans) == Counter({"checkout 1": 1, "POST": 1})  # the app's, as without us
    assert posthog.requests == []


# ---------------------------------------------------------------------------
# Asked for: the user's set-up as under opentelemetry-instrument, plus PostHog
# ---------------------------------------------------------------------------


LAUNCHES = {
    "posthog-instrument": [LAUNCHER],
    "inside opentelemetry-instrument": [OTEL_INSTRUMENT, LAUNCHER],
    "around opentelemetry-instrument": [LAUNCHER, OTEL_INSTRUMENT],
    "twice": [LAUNCHER, LAUNCHER],
}


@pytest.mark.parametrize("launch", LAUNCHES.values(), ids=LAUNCHES.keys())
def test_posthog_instrument_keeps_the_users_set_up_and_adds_posthog_once(servers, launch):
    _, posthog, collector = servers
    result = run([*launch, "python", APP, "--calls", "2"], user_env(servers))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{REPLY}\n{REPLY}\nprovider TracerProvider\n"
    assert result.stderr == ""  # no "already instrumented", no "Overriding of current TracerProvider"
    assert_collector_got_everything(collector, calls=2)
    assert sorted(prompt(span) for span in posthog.spans) == ["order 1", "order 2"]  # once each, AI spans only
    assert posthog.rejections == []


def test_a_child_relaunched_by_a_reloader_records_each_call_once(servers):
    _, posthog, collector = servers
    result = run([OTEL_INSTRUMENT, LAUNCHER, "python", APP, "--reloader", "--calls", "2"], user_env(servers))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{REPLY}\n{REPLY}\nprovider TracerProvider\n"
    assert result.stderr == ""
    assert_collector_got_everything(collector, calls=2)
    assert sorted(prompt(span) for span in posthog.spans) == ["order 1", "order 2"]


# ---------------------------------------------------------------------------
# The app's own TracerProvider, installed after its first call
# ---------------------------------------------------------------------------


def test_a_late_tracer_provider_gets_the_ai_spans_and_gives_them_its_resource(servers):
    _, posthog, collector = servers
    env = user_env(servers, OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    plain = run([sys.executable, APP, "--late-provider", "shop", "--calls", "2"], env)
    collected_plainly = names(collector.spans)
    result = run([LAUNCHER, "python", APP, "--late-provider", "shop", "--calls", "2"], env)
    assert result.returncode == plain.returncode == 0, result.stderr
    assert (
        result.stdout
        == plain.stdout
        == (f"{REPLY}\nglobal provider is the app's: True\n{REPLY}\nprovider TracerProvider\n")
    )
    assert result.stderr == plain.stderr == ""  # its set_tracer_provider was not refused

    # PostHog: both calls; the one after the app's provider carries its service name.
    by_prompt = {prompt(span): span for span in posthog.spans}
    assert sorted(by_prompt) == ["order 1", "order 2"]
    assert by_prompt["order 1"]["resource"]["service.name"] == "unknown_service:python"
    assert by_prompt["order 2"]["resource"]["service.name"] == "shop"

    # The app's exporter: its own span as without us, and now the AI span too, in its trace.
    assert collected_plainly == Counter({"checkout 2": 1})
    instrumented = collector.spans[1:]
    assert names(instrumented) == Counter({"checkout 2": 1, CHAT: 1})
    assert {span["resource"]["service.name"] for span in instrumented} == {"shop"}
    checkout = next(span for span in instrumented if span["name"] == "checkout 2")
    chat = next(span for span in instrumented if span["name"] == CHAT)
    assert chat["parent_span_id"] == checkout["span_id"]


# ---------------------------------------------------------------------------
# Another vendor's distro, with defaults of its own
# ---------------------------------------------------------------------------


VENDOR_DISTRO = """
import os

from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _OTelSDKConfigurator


class AcmeDistro(BaseDistro):
    def _configure(self, **kwargs):
        os.environ.setdefault("OTEL_SERVICE_NAME", "acme-shop")
        os.environ.setdefault("OTEL_TRACES_EXPORTER", "otlp")
        os.environ.setdefault("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")


class AcmeConfigurator(_OTelSDKConfigurator):
    pass
"""


def test_a_vendor_distro_works_as_under_opentelemetry_instrument(servers, tmp_path):
    """A vendor distro (chosen by name, since opentelemetry-distro is installed too) sets its
    own defaults: under posthog-instrument they apply as under opentelemetry-instrument, the
    loader's messages are the same, and PostHog's AI spans carry the vendor's service name."""
    _, posthog, collector = servers
    (tmp_path / "acme_otel.py").write_text(VENDOR_DISTRO)
    dist_info = tmp_path / "acme_otel-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-otel\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[opentelemetry_distro]\nacme = acme_otel:AcmeDistro\n\n"
        "[opentelemetry_configurator]\nacme = acme_otel:AcmeConfigurator\n"
    )
    env = user_env(servers, PYTHONPATH=str(tmp_path), OTEL_PYTHON_DISTRO="acme", OTEL_PYTHON_CONFIGURATOR="acme")
    del env["OTEL_EXPORTER_OTLP_PROTOCOL"]  # the vendor's default

    plain = run([OTEL_INSTRUMENT, "python", APP], env)
    assert plain.returncode == 0, plain.stderr
    assert posthog.requests == []
    assert {span["resource"]["service.name"] for span in collector.spans} == {"acme-shop"}
    collected_plainly = len(collector.spans)

    result = run([LAUNCHER, "python", APP], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == plain.stdout == f"{REPLY}\nprovider TracerProvider\n"
    assert (
        result.stderr == plain.stderr == ("Configuration of configurator not loaded, acme already loaded\n")
    )  # the loader's own notice
    instrumented = collector.spans[collected_plainly:]
    assert names(instrumented) == Counter({"checkout 1": 1, "POST": 1, CHAT: 1})
    assert {span["resource"]["service.name"] for span in instrumented} == {"acme-shop"}
    (span,) = posthog.spans
    assert prompt(span) == "order 1"
    assert span["resource"]["service.name"] == "acme-shop"


def test_a_late_tracer_provider_after_the_users_set_up_is_refused_as_under_opentelemetry_instrument(servers):
    """The provider of the user's OpenTelemetry set-up came first: the app's own is refused,
    with OpenTelemetry's warning, exactly as under opentelemetry-instrument."""
    _, posthog, collector = servers
    command = ["python", APP, "--late-provider", "shop", "--calls", "2"]
    plain = run([OTEL_INSTRUMENT, *command], user_env(servers))
    result = run([LAUNCHER, *command], user_env(servers))
    assert result.returncode == plain.returncode == 0, result.stderr
    assert (
        result.stdout
        == plain.stdout
        == (f"{REPLY}\nglobal provider is the app's: False\n{REPLY}\nprovider TracerProvider\n")
    )
    assert result.stderr == plain.stderr == "Overriding of current TracerProvider is not allowed\n"
    assert sorted(prompt(span) for span in posthog.spans) == ["order 1", "order 2"]
