"""When start-up may skip OpenTelemetry's loader (``fast_start.loader_not_needed``): only when
the user's OpenTelemetry set-up, run by that loader, would export nothing."""

from __future__ import annotations

import pytest

from posthog_autoinstrument import fast_start

OTEL_DISTRO = [("distro", "opentelemetry.distro:OpenTelemetryDistro")]
OTEL_CONFIGURATOR = [("configurator", "opentelemetry.distro:OpenTelemetryConfigurator")]
NO_EXPORT = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}


@pytest.fixture
def installed(monkeypatch):
    """Pretend these entry points of other distributions are installed."""

    def install(**groups: list) -> None:
        plugins = {group: [] for group in fast_start._LOADER_GROUPS}
        plugins.update(groups)
        monkeypatch.setattr(fast_start, "_scanned", True)
        monkeypatch.setattr(fast_start, "_registry", {fast_start.TRIGGERS: {}})
        monkeypatch.setattr(fast_start, "_plugins", plugins)

    return install


def test_nothing_else_installed_and_no_export_skips_the_loader(installed):
    installed()
    assert fast_start.loader_not_needed({}) == {}
    assert fast_start.loader_not_needed({"OTEL_PYTHON_DISTRO": "posthog"}) == {}  # names nothing installed


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_TRACES_EXPORTER": "console"},
        {"OTEL_METRICS_EXPORTER": "otlp"},
        {"OTEL_CONFIG_FILE": "otel.yaml"},
        {"OTEL_PYTHON_AUTO_INSTRUMENTATION_EXPERIMENTAL_GEVENT_PATCH": "patch_all"},
    ],
)
def test_an_export_of_the_users_own_needs_the_loader(installed, env):
    installed()
    assert fast_start.loader_not_needed(env) is None


def test_opentelemetry_distro_defaults_export_so_need_the_loader(installed):
    installed(opentelemetry_distro=OTEL_DISTRO, opentelemetry_configurator=OTEL_CONFIGURATOR)
    assert fast_start.loader_not_needed({}) is None
    assert fast_start.loader_not_needed({"OTEL_TRACES_EXPORTER": "none"}) is None  # metrics and logs still on


def test_opentelemetry_distro_with_every_export_off_skips_the_loader_but_keeps_its_defaults(installed):
    installed(opentelemetry_distro=OTEL_DISTRO, opentelemetry_configurator=OTEL_CONFIGURATOR)
    assert fast_start.loader_not_needed(NO_EXPORT) == {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    assert fast_start.loader_not_needed({**NO_EXPORT, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}) == {}
    # a distro named that is not installed: the loader would use none, so no defaults either
    assert fast_start.loader_not_needed({**NO_EXPORT, "OTEL_PYTHON_DISTRO": "other"}) == {}


@pytest.mark.parametrize(
    "groups, env",
    [
        ({"opentelemetry_distro": [("acme", "acme.otel:AcmeDistro")]}, {}),
        ({"opentelemetry_configurator": [("acme", "acme.otel:AcmeConfigurator")]}, {}),
        ({"opentelemetry_configurator": OTEL_CONFIGURATOR + [("acme", "acme.otel:AcmeConfigurator")]}, {}),
        ({"opentelemetry_configurator": OTEL_CONFIGURATOR}, {"OTEL_PYTHON_CONFIGURATOR": "acme"}),  # the loader warns
        ({"opentelemetry_post_instrument": [("acme", "acme.otel:after")]}, {}),
        ({"opentelemetry_pre_instrument": [("acme", "acme.otel:before")]}, {}),
    ],
    ids=["vendor distro", "vendor configurator", "two configurators", "configurator named", "post hook", "pre hook"],
)
def test_anything_else_the_loader_would_run_needs_it(installed, groups, env):
    installed(**groups)
    assert fast_start.loader_not_needed({**NO_EXPORT, **env}) is None


def test_the_sdk_configuration_is_ours_to_apply_only_without_a_configurator(installed):
    installed()
    assert not fast_start.configurator_would_run({})
    installed(opentelemetry_configurator=OTEL_CONFIGURATOR)
    assert fast_start.configurator_would_run({})
    assert not fast_start.configurator_would_run({"OTEL_PYTHON_CONFIGURATOR": "acme"})
