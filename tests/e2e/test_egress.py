"""End to end: the export behind a corporate proxy and a private CA.

A PostHog stand-in serves HTTPS with a certificate signed by a CA made for the test (trustme),
and a loopback proxy tunnels CONNECT requests and records their targets. The export takes the
CA bundle from SSL_CERT_FILE (or REQUESTS_CA_BUNDLE) and the proxy from HTTPS_PROXY / NO_PROXY,
as httpx-based clients do; without the CA it fails with one clear line and the app is unchanged.
"""

from __future__ import annotations

import json
import ssl
import sys

import pytest
import trustme

from tests.conftest import APPS, LAUNCHER, clean_env, run
from tests.servers import FakeOpenAI, FakePostHog
from tests.servers.connect_proxy import ConnectProxy

APP = str(APPS / "llm_app.py")
COMMAND = [LAUNCHER, "python", APP, "--exit", "2"]
# Anything of the test machine's that would choose a proxy or CA for us.
EGRESS_VARIABLES = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
)


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca, tmp_path_factory):
    path = tmp_path_factory.mktemp("ca") / "corporate-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="module")
def openai_server():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def plain_run(openai_server):
    """The app without us: what every instrumented run must print and exit with."""
    env = egress_env(openai_server, None)
    return run([sys.executable, APP, "--exit", "2"], env)


@pytest.fixture
def tls_posthog(ca):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    server = FakePostHog()
    server.ssl_context = context
    with server:
        yield server


def egress_env(openai_server, posthog, **overrides: str) -> dict:
    env = clean_env(
        OPENAI_BASE_URL=openai_server.base_url,
        OPENAI_API_KEY="sk-test-secret-key",
        POSTHOG_EXPORT_INTERVAL="0.05",
        POSTHOG_FLUSH_TIMEOUT="2",
    )
    if posthog is not None:
        env.update(POSTHOG_API_KEY="phc_test_project_token", POSTHOG_HOST=posthog.host)
    for name in EGRESS_VARIABLES:
        env.pop(name, None)
    env.update(overrides)
    return env


def assert_app_unchanged(result, plain_run) -> None:
    assert plain_run.returncode == 2 and plain_run.stderr == ""
    assert result.returncode == 2, result.stderr
    assert result.stdout == plain_run.stdout


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_events_arrive_over_tls_with_the_private_ca(openai_server, tls_posthog, ca_file, plain_run, variable):
    assert tls_posthog.host.startswith("https://")
    result = run(COMMAND, egress_env(openai_server, tls_posthog, **{variable: ca_file}))
    assert_app_unchanged(result, plain_run)
    assert result.stderr == ""
    (span,) = tls_posthog.spans
    assert span["name"] == "chat gpt-4o-mini"
    assert span["attributes"]["gen_ai.usage.input_tokens"] == 11


def test_export_tunnels_through_the_https_proxy(openai_server, tls_posthog, ca_file, plain_run):
    with ConnectProxy() as proxy:
        result = run(COMMAND, egress_env(openai_server, tls_posthog, SSL_CERT_FILE=ca_file, HTTPS_PROXY=proxy.url))
    assert_app_unchanged(result, plain_run)
    assert result.stderr == ""
    assert proxy.targets and set(proxy.targets) == {f"127.0.0.1:{tls_posthog.port}"}
    assert proxy.other_requests == []
    assert len(tls_posthog.spans) == 1


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost,127.0.0.1:{port}"])
def test_no_proxy_covering_the_host_bypasses_the_proxy(openai_server, tls_posthog, ca_file, plain_run, no_proxy):
    with ConnectProxy() as proxy:
        env = egress_env(
            openai_server,
            tls_posthog,
            SSL_CERT_FILE=ca_file,
            HTTPS_PROXY=proxy.url,
            NO_PROXY=no_proxy.format(port=tls_posthog.port),
        )
        result = run(COMMAND, env)
    assert_app_unchanged(result, plain_run)
    assert result.stderr == ""
    assert proxy.targets == []
    assert len(tls_posthog.spans) == 1


def test_without_the_ca_the_export_fails_in_one_clear_line(openai_server, tls_posthog, plain_run):
    result = run(COMMAND, egress_env(openai_server, tls_posthog))
    assert_app_unchanged(result, plain_run)
    assert tls_posthog.spans == [] and tls_posthog.requests == []
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith(
        "posthog-instrument: LLM events could not be sent to PostHog (its TLS certificate is not trusted ("
    ), lines[0]
    assert "point SSL_CERT_FILE at that CA's certificates" in lines[0]
    assert lines[1] == "posthog-instrument: 1 LLM event(s) could not be delivered to PostHog (0 delivered)."


def test_a_refusing_proxy_fails_in_one_clear_line(openai_server, tls_posthog, ca_file, plain_run):
    with ConnectProxy(refuse=403) as proxy:
        result = run(COMMAND, egress_env(openai_server, tls_posthog, SSL_CERT_FILE=ca_file, HTTPS_PROXY=proxy.url))
    assert_app_unchanged(result, plain_run)
    assert proxy.targets == [f"127.0.0.1:{tls_posthog.port}"]  # refused once, not retried
    assert tls_posthog.requests == []
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith(
        f"posthog-instrument: LLM events could not be sent to PostHog (the proxy {proxy.url} "
        "(from HTTPS_PROXY) refused to connect to 127.0.0.1"
    ), lines[0]
    assert "403" in lines[0]
    assert lines[1] == "posthog-instrument: 1 LLM event(s) could not be delivered to PostHog (0 delivered)."


def test_a_ca_setting_naming_nothing_is_one_line_and_the_app_runs_on(openai_server, tls_posthog, ca_file):
    env = egress_env(openai_server, tls_posthog, SSL_CERT_DIR="/nonexistent/certs", REQUESTS_CA_BUNDLE=ca_file)
    plain = run([sys.executable, APP, "--exit", "2"], env)
    result = run(COMMAND, env)
    assert (result.returncode, result.stdout) == (plain.returncode, plain.stdout) == (2, plain.stdout)
    assert result.stderr.splitlines() == [
        "posthog-instrument: SSL_CERT_DIR='/nonexistent/certs' is not a directory; it is ignored, so HTTPS "
        "exports verify servers with the next CA setting or certifi's bundle."
    ]
    assert len(tls_posthog.spans) == 1  # REQUESTS_CA_BUNDLE, the next setting, trusts the CA


def test_doctor_reports_the_proxy_and_the_ca_bundle(openai_server, tls_posthog, ca_file):
    with ConnectProxy() as proxy:
        env = egress_env(openai_server, tls_posthog, SSL_CERT_FILE=ca_file, HTTPS_PROXY=proxy.url)
        as_json = run([LAUNCHER, "doctor", "--json"], env)
        as_text = run([LAUNCHER, "doctor"], env)
    report = json.loads(as_json.stdout)
    assert report["egress"]["proxy"] == f"{proxy.url} (from HTTPS_PROXY)"
    assert report["egress"]["proxy_variable"] == "HTTPS_PROXY"
    assert report["egress"]["ca_bundle"] == f"{ca_file} (from SSL_CERT_FILE)"
    assert report["destination"] == f"PostHog at {tls_posthog.endpoint}"
    assert report["connectivity"]["ok"], report["connectivity"]
    lines = as_text.stdout.splitlines()
    assert f"Proxy:        {proxy.url} (from HTTPS_PROXY)" in lines
    assert f"CA bundle:    {ca_file} (from SSL_CERT_FILE)" in lines
    assert "Connectivity: OK: PostHog accepted a test span" in as_text.stdout
    # Both test spans went through the proxy.
    assert proxy.targets == [f"127.0.0.1:{tls_posthog.port}"] * 2
    assert len(tls_posthog.spans) == 2


def test_doctor_names_the_default_ca_bundle_and_no_proxy(openai_server, tls_posthog):
    import certifi

    result = run([LAUNCHER, "doctor", "--json", "--no-network"], egress_env(openai_server, tls_posthog))
    report = json.loads(result.stdout)
    assert report["egress"] == {
        "proxy": "none",
        "proxy_url": None,
        "proxy_variable": None,
        "ca_bundle": f"{certifi.where()} (certifi, the default)",
        "ca_variable": None,
    }
