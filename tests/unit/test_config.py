"""Configuration from the environment: defaults, and one clear line per problem."""

from posthog_autoinstrument import config


def test_defaults():
    s = config.load({"POSTHOG_API_KEY": "phc_abc"})
    assert s.endpoint == "https://us.i.posthog.com/i/v0/ai/otel"
    assert s.exports_to_posthog and not s.privacy_mode and s.stream_usage and not s.problems
    assert s.flush_timeout == 3.0


def test_alias_eu_host_and_full_endpoint_url():
    s = config.load({"POSTHOG_PROJECT_API_KEY": "phc_abc", "POSTHOG_HOST": "https://eu.i.posthog.com/"})
    assert s.endpoint == "https://eu.i.posthog.com/i/v0/ai/otel"
    s = config.load({"POSTHOG_API_KEY": "phc_abc", "POSTHOG_HOST": "https://ph.example.com/i/v0/ai/otel"})
    assert s.endpoint == "https://ph.example.com/i/v0/ai/otel"


def problems(env):
    s = config.load(env)
    return s, list(s.problems)


def test_missing_empty_and_personal_keys():
    s, p = problems({})
    assert s.endpoint is None and len(p) == 1 and "POSTHOG_API_KEY is not set" in p[0]
    s, p = problems({"POSTHOG_API_KEY": "  "})
    assert s.endpoint is None and len(p) == 1 and "empty" in p[0]
    s, p = problems({"POSTHOG_API_KEY": "phx_personal"})
    assert s.endpoint is None and len(p) == 1 and "personal API key" in p[0] and "phc_" in p[0]


def test_malformed_host_and_flags():
    s, p = problems({"POSTHOG_API_KEY": "phc_a", "POSTHOG_HOST": "us.i.posthog.com"})
    assert s.endpoint is None and len(p) == 1 and p[0].startswith("POSTHOG_HOST=")
    s, p = problems({"POSTHOG_API_KEY": "phc_a", "POSTHOG_PRIVACY_MODE": "maybe", "POSTHOG_FLUSH_TIMEOUT": "soon"})
    assert s.endpoint and s.privacy_mode and s.flush_timeout == 3.0  # a privacy typo fails closed
    assert [x.split("=")[0] for x in p] == ["POSTHOG_PRIVACY_MODE", "POSTHOG_FLUSH_TIMEOUT"]


def test_dry_run_needs_no_key_and_kill_switches():
    s, p = problems({"POSTHOG_DRY_RUN": "1"})
    assert s.exports_to_posthog and s.endpoint is None and not p
    assert config.load({"POSTHOG_API_KEY": "phc_a", "OTEL_SDK_DISABLED": "true"}).disabled
    assert config.load({"POSTHOG_API_KEY": "phc_a", "POSTHOG_AUTOINSTRUMENT_DISABLED": "yes"}).endpoint is None


def test_dry_run_file_is_read_trimmed_and_needs_no_key():
    assert config.load({}).dry_run_file is None
    assert config.load({"POSTHOG_DRY_RUN_FILE": "  "}).dry_run_file is None
    s, p = problems({"POSTHOG_DRY_RUN": "1", "POSTHOG_DRY_RUN_FILE": " events.jsonl "})
    assert s.dry_run and s.dry_run_file == "events.jsonl" and not p


def test_problems_are_reported_once_per_process_tree(capsys, monkeypatch):
    monkeypatch.setenv(config._WARNED_MARKER, "")  # restored (removed) after the test
    s = config.load({"POSTHOG_API_KEY": "phx_x"})
    config.report_problems(s)
    config.report_problems(s)
    assert capsys.readouterr().err.count("posthog-instrument:") == 1
