"""POSTHOG_OTLP_ENDPOINT settings, and the proxy and CA bundle the export chooses."""

import pytest

from posthog_autoinstrument import config
from posthog_autoinstrument.export import egress
from posthog_autoinstrument.export.exporter import PostHogSender

PROXY_VARIABLES = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
)


@pytest.fixture
def no_proxy_env(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_otlp_endpoint_needs_no_token_and_is_used_as_given():
    settings = config.load({"POSTHOG_OTLP_ENDPOINT": " http://collector:4318/v1/traces "})
    assert settings.endpoint == settings.otlp_endpoint == "http://collector:4318/v1/traces"
    assert settings.api_key is None and settings.problems == () and settings.exports_to_posthog


def test_a_token_set_beside_the_otlp_endpoint_is_sent_as_bearer():
    settings = config.load({"POSTHOG_OTLP_ENDPOINT": "https://c/v1/traces", "POSTHOG_API_KEY": "phc_abc"})
    assert settings.api_key == "phc_abc"
    assert PostHogSender(settings.endpoint, settings.api_key, 1)._headers["Authorization"] == "Bearer phc_abc"
    assert "Authorization" not in PostHogSender(settings.endpoint, None, 1)._headers


def test_a_malformed_token_beside_the_otlp_endpoint_is_left_out_not_fatal():
    settings = config.load({"POSTHOG_OTLP_ENDPOINT": "https://c/v1/traces", "POSTHOG_API_KEY": "phx_personal"})
    assert settings.endpoint == "https://c/v1/traces" and settings.api_key is None
    (problem,) = settings.problems
    assert problem.endswith("It is left out of the requests to POSTHOG_OTLP_ENDPOINT.")


@pytest.mark.parametrize("value", ["collector:4318", "ftp://collector/v1/traces", "http://", "http://c:port/x"])
def test_a_bad_otlp_endpoint_sends_nothing_anywhere(value):
    settings = config.load({"POSTHOG_OTLP_ENDPOINT": value, "POSTHOG_API_KEY": "phc_abc"})
    assert settings.endpoint is None and settings.otlp_endpoint is None
    (problem,) = settings.problems
    assert problem.startswith(f"POSTHOG_OTLP_ENDPOINT={value!r} is not a URL")


def test_ca_bundle_precedence(tmp_path):
    bundle, other = tmp_path / "a.pem", tmp_path / "b.pem"
    bundle.write_text("x")
    other.write_text("x")
    assert config.ca_bundle({}) == (None, None, [])
    assert config.ca_bundle({"REQUESTS_CA_BUNDLE": str(other), "SSL_CERT_FILE": str(bundle)})[:2] == (
        str(bundle),
        "SSL_CERT_FILE",
    )
    assert config.ca_bundle({"REQUESTS_CA_BUNDLE": str(other), "SSL_CERT_DIR": str(tmp_path)})[:2] == (
        str(tmp_path),
        "SSL_CERT_DIR",
    )
    path, name, problems = config.ca_bundle(
        {"SSL_CERT_FILE": str(tmp_path / "missing.pem"), "REQUESTS_CA_BUNDLE": str(other)}
    )
    assert (path, name) == (str(other), "REQUESTS_CA_BUNDLE") and len(problems) == 1


def test_ca_problems_only_matter_for_https_exports():
    env = {"POSTHOG_API_KEY": "phc_abc", "SSL_CERT_FILE": "/missing.pem"}
    assert len(config.load(env).problems) == 1
    assert config.load({**env, "POSTHOG_HOST": "http://localhost:8000"}).problems == ()


def test_route_names_the_proxy_and_its_variable(no_proxy_env):
    no_proxy_env.setenv("https_proxy", "proxy.corp:3128")
    chosen = egress.route("https://us.i.posthog.com/i/v0/ai/otel", {})
    assert (chosen.proxy, chosen.proxy_variable, chosen.bypassed) == ("http://proxy.corp:3128", "https_proxy", False)
    assert egress.route("http://collector:4318/v1/traces", {}).proxy is None  # only HTTPS is proxied
    no_proxy_env.setenv("ALL_PROXY", "http://all.corp:1080")
    assert (
        egress.route("http://collector:4318/v1/traces", {}).describe_proxy() == "http://all.corp:1080 (from ALL_PROXY)"
    )
    no_proxy_env.setenv("NO_PROXY", "collector:4318,.posthog.com")
    assert egress.route("http://collector:4318/v1/traces", {}).describe_proxy() == "none (NO_PROXY covers the host)"
    assert egress.route("https://us.i.posthog.com/i/v0/ai/otel", {}).proxy is None


def test_proxy_passwords_are_masked():
    assert egress.masked_url("http://me:s3cret@proxy:3128") == "http://me:***@proxy:3128"
    assert egress.masked_url("http://proxy:3128") == "http://proxy:3128"


def test_sender_names_its_destination():
    assert PostHogSender("https://h/i/v0/ai/otel", "phc_x", 1).destination == "PostHog"
    settings = config.load({"POSTHOG_OTLP_ENDPOINT": "http://c:4318/v1/traces"})
    from posthog_autoinstrument.configurator import sender_for

    assert sender_for(settings).destination == "http://c:4318/v1/traces"
