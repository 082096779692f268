"""End to end: ``posthog-instrument doctor`` and the ``--debug`` run mode.

The doctor runs no app. It prints the effective configuration (token masked) and where each
value came from, the LLM libraries installed with their versions and whether each will be
instrumented (and if not, why), the privacy state, and the result of sending one test span to
the configured host, in plain words; it exits non-zero when the configuration cannot work, and
``--json`` says the same for machines. Each test runs the real console script against the
PostHog stand-in.
"""

from __future__ import annotations

import json
import os
import re
from importlib import metadata

import pytest

from tests.conftest import APPS, LAUNCHER, clean_env, run

TOKEN = "phc_Doctor0Test0Project0Token0abcdefghijkl"  # what a real project token looks like
MASKED = "phc_Do...ijkl"
OPENAI_VERSION = metadata.version("openai")


def doctor(*args: str, **env: str):
    """The real console script, in a subprocess."""
    return run([LAUNCHER, "doctor", *args], clean_env(**env), timeout=60)


def doctor_json(*args: str, **env: str):
    result = doctor("--json", *args, **env)
    assert result.stderr == "", result.stderr
    return result, json.loads(result.stdout)


@pytest.fixture
def in_process(monkeypatch, capsys):
    """``posthog-instrument doctor ARGS`` run in this process (fast) with exactly ``env`` set."""
    from posthog_autoinstrument import cli

    def doctor_here(*args: str, **env: str):
        for name in list(os.environ):
            if name.startswith(("POSTHOG_", "OTEL_", "_POSTHOG")):
                monkeypatch.delenv(name)
        for name, value in env.items():
            if value is not None:
                monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = cli.main(["doctor", *args])
        captured = capsys.readouterr()
        assert captured.err == "", captured.err
        return code, captured.out

    return doctor_here


def in_process_json(in_process, *args: str, **env: str):
    code, out = in_process("--json", *args, **env)
    return code, json.loads(out)


def rows(report: dict) -> dict:
    return {row["variable"]: (row["value"], row["source"]) for row in report["configuration"]}


def library(report: dict, name: str) -> dict:
    (row,) = [row for row in report["libraries"] if row["library"] == name]
    return row


def text_library_line(stdout: str, name: str) -> str:
    (line,) = [line for line in stdout.splitlines() if line.strip().startswith(name + " ")]
    return line


# ---------------------------------------------------------------------------
# A configuration that works
# ---------------------------------------------------------------------------


def test_working_configuration_is_explained_and_the_test_span_is_accepted(posthog):
    result = doctor(
        POSTHOG_API_KEY=TOKEN,
        POSTHOG_HOST=posthog.host,
        POSTHOG_DISTINCT_ID="ops@example.com",
        POSTHOG_FLUSH_TIMEOUT="5",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert TOKEN not in out
    lines = out.splitlines()
    assert re.search(rf"^\s+POSTHOG_API_KEY\s+{re.escape(MASKED)}\s+\(environment\)$", out, re.M), out
    assert re.search(rf"^\s+POSTHOG_HOST\s+{re.escape(posthog.host)}\s+\(environment\)$", out, re.M)
    assert re.search(r"^\s+POSTHOG_FLUSH_TIMEOUT\s+5\s+\(environment\)$", out, re.M)
    assert re.search(r"^\s+POSTHOG_EXPORT_TIMEOUT\s+10\s+\(default\)$", out, re.M)
    assert re.search(rf"^\s+export endpoint\s+{re.escape(posthog.endpoint)}$", out, re.M)
    assert "Person:  POSTHOG_DISTINCT_ID=ops@example.com" in lines
    assert any(line.startswith("Privacy: recording inputs and outputs") for line in lines)
    openai_line = text_library_line(out, "openai")
    assert OPENAI_VERSION in openai_line and "will be instrumented" in openai_line
    (connectivity,) = [line for line in lines if line.startswith("Connectivity:")]
    assert connectivity.startswith(f"Connectivity: OK: PostHog accepted a test span at {posthog.endpoint} (HTTP 200")
    assert lines[-1] == "Everything looks right."
    # Exactly one test span went to the configured host, authenticated with the token, and was valid.
    (request,) = posthog.requests
    assert request["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert posthog.rejections == []
    (span,) = posthog.spans
    assert span["name"] == "posthog-instrument doctor"


def test_json_report_for_machines(posthog):
    result, report = doctor_json(POSTHOG_API_KEY=TOKEN, POSTHOG_HOST=posthog.host + "/")
    assert result.returncode == 0
    assert TOKEN not in result.stdout
    assert report["ok"] is True
    assert report["endpoint"] == posthog.endpoint  # trailing slash normalised
    assert report["problems"] == []
    config = rows(report)
    assert config["POSTHOG_API_KEY"] == (MASKED, "environment")
    assert config["POSTHOG_HOST"] == (posthog.host, "environment")  # the value in effect, normalised
    assert config["POSTHOG_PRIVACY_MODE"] == ("false", "default")
    assert config["POSTHOG_DISTINCT_ID"] == ("none", "default")
    assert library(report, "openai") == {
        "adapter": "posthog_openai",
        "library": "openai",
        "version": OPENAI_VERSION,
        "status": "will be instrumented when the app imports it",
    }
    assert report["connectivity"]["ok"] is True and report["connectivity"]["status"] == 200
    assert "HTTP 200" in report["connectivity"]["message"]
    assert len(posthog.spans) == 1


def test_no_network_checks_nothing(in_process, posthog):
    code, report = in_process_json(in_process, "--no-network", POSTHOG_API_KEY=TOKEN, POSTHOG_HOST=posthog.host)
    assert code == 0
    assert report["connectivity"] == {"ok": True, "message": "not checked"}
    assert posthog.requests == []


# ---------------------------------------------------------------------------
# Configurations that cannot work: plain words, non-zero exit
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env, problem, connectivity",
    [
        ({"POSTHOG_API_KEY": None}, "POSTHOG_API_KEY is not set", "not checked: no valid project token and host"),
        ({"POSTHOG_API_KEY": "phx_personal0key0abcdefghijkl"}, "personal API key (phx_...)", "not checked"),
        ({"POSTHOG_HOST": "eu.posthog.com"}, "POSTHOG_HOST='eu.posthog.com' is not a URL", "not checked"),
        ({"POSTHOG_AUTOINSTRUMENT_DISABLED": "true"}, None, "instrumentation is disabled (kill switch)"),
        ({"OTEL_SDK_DISABLED": "true"}, None, "instrumentation is disabled (kill switch)"),
    ],
    ids=["no token", "personal key", "host not a URL", "kill switch", "OTEL_SDK_DISABLED"],
)
def test_configuration_that_cannot_work_exits_non_zero_and_says_why(in_process, posthog, env, problem, connectivity):
    full = {"POSTHOG_API_KEY": TOKEN, "POSTHOG_HOST": posthog.host}
    full.update(env)
    code, out = in_process(**full)
    assert code == 1, out
    lines = out.splitlines()
    assert lines[-1] == "This configuration cannot deliver LLM events to PostHog; see above."
    (connectivity_line,) = [line for line in lines if line.startswith("Connectivity:")]
    assert connectivity_line.startswith("Connectivity: FAILED: " + connectivity), connectivity_line
    if problem:
        assert any(line.startswith("  - ") and problem in line for line in lines), out
    assert posthog.requests == []  # nothing sent when it cannot work


@pytest.mark.parametrize(
    "plan, words",
    [
        (
            ["401"],
            "PostHog refused the project token (HTTP 401): check POSTHOG_API_KEY and that POSTHOG_HOST is your region",
        ),
        (["400"], "PostHog refused the test span: HTTP 400"),
    ],
)
def test_refusal_by_posthog_is_reported_in_plain_words(in_process, posthog, plan, words):
    posthog.plan = plan
    code, report = in_process_json(in_process, POSTHOG_API_KEY=TOKEN, POSTHOG_HOST=posthog.host)
    assert code == 1
    assert report["ok"] is False
    assert report["connectivity"]["ok"] is False
    assert report["connectivity"]["status"] == int(plan[0])
    assert report["connectivity"]["message"].startswith(words), report["connectivity"]
    assert len(posthog.requests) == 1  # a refusal is final: not retried


# ---------------------------------------------------------------------------
# Privacy state and libraries
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env, privacy, shown",
    [
        (
            {"POSTHOG_PRIVACY_MODE": "true"},
            "privacy mode: no prompts, outputs or error texts are sent; metadata only",
            {"POSTHOG_PRIVACY_MODE": "true"},
        ),
        (
            {"POSTHOG_AI_RECORD_OUTPUTS": "false"},
            "recording inputs; inline media replaced by placeholders; spans capped at 500000 bytes",
            {"POSTHOG_AI_RECORD_OUTPUTS": "false"},
        ),
        (
            {
                "POSTHOG_AI_RECORD_INPUTS": "no",
                "POSTHOG_AI_RECORD_OUTPUTS": "0",
                "POSTHOG_AI_CAPTURE_MEDIA": "yes",
                "POSTHOG_MAX_SPAN_BYTES": "20000",
            },
            "recording no content; inline media kept; spans capped at 20000 bytes",
            {
                "POSTHOG_AI_RECORD_INPUTS": "false",
                "POSTHOG_AI_RECORD_OUTPUTS": "false",
                "POSTHOG_AI_CAPTURE_MEDIA": "true",
                "POSTHOG_MAX_SPAN_BYTES": "20000",
            },
        ),
    ],
)
def test_privacy_state(in_process, env, privacy, shown):
    code, report = in_process_json(in_process, "--no-network", POSTHOG_API_KEY=TOKEN, **env)
    assert code == 0
    assert report["privacy"] == privacy
    for name, value in shown.items():
        assert rows(report)[name] == (value, "environment")


def test_library_disabled_by_the_standard_variable_says_so(in_process):
    code, report = in_process_json(
        in_process,
        "--no-network",
        POSTHOG_API_KEY=TOKEN,
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="posthog_openai,something_else",
    )
    assert library(report, "openai")["status"] == "disabled by OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
    assert library(report, "openai")["version"] == OPENAI_VERSION
    assert library(report, "anthropic")["status"] == "will be instrumented when the app imports it"


def test_unsupported_library_version_is_not_instrumented_and_says_which_versions_are(tmp_path, fake_openai, posthog):
    # An older openai, as far as the metadata of the environment goes.
    dist = tmp_path / "openai-0.28.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: openai\nVersion: 0.28.1\n")
    result, report = doctor_json("--no-network", POSTHOG_API_KEY=TOKEN, PYTHONPATH=str(tmp_path))
    row = library(report, "openai")
    assert row["version"] == "0.28.1"
    assert row["status"].startswith("version not supported (supported: ")
    assert row["status"].endswith("); not instrumented")
    assert "<4" in row["status"] and ">=1.40.0" in row["status"]
    # ... and indeed the launcher does not instrument it (the doctor told the truth).
    env = clean_env(
        OPENAI_BASE_URL=fake_openai.base_url,
        OPENAI_API_KEY="sk-test",
        POSTHOG_API_KEY=TOKEN,
        POSTHOG_HOST=posthog.host,
        PYTHONPATH=str(tmp_path),
    )
    app = run([LAUNCHER, "python", str(APPS / "llm_app.py"), "--show-patch"], env)
    assert app.returncode == 0, app.stderr
    assert app.stdout.splitlines()[0] == "create=function"


# Found by this file (doctor said "will be instrumented" with the kill switch on); fixed in 24c423b.
@pytest.mark.parametrize(
    "env, why",
    [
        ({"POSTHOG_AUTOINSTRUMENT_DISABLED": "true"}, "instrumentation is disabled (kill switch)"),
        ({"OTEL_SDK_DISABLED": "true"}, "instrumentation is disabled (kill switch)"),
        ({"POSTHOG_API_KEY": ""}, "nowhere to send events"),
    ],
    ids=["kill switch", "OTEL_SDK_DISABLED", "no destination"],
)
def test_library_status_says_nothing_will_be_instrumented_and_why(in_process, env, why):
    code, report = in_process_json(in_process, "--no-network", **{"POSTHOG_API_KEY": TOKEN, **env})
    assert code == 1
    row = library(report, "openai")
    assert row["version"] == OPENAI_VERSION
    assert row["status"].startswith("not instrumented: " + why), row["status"]


def test_library_status_with_only_the_users_own_exporter(in_process):
    """No PostHog token, but the app's OpenTelemetry exporter: instrumented, for that exporter."""
    code, report = in_process_json(in_process, "--no-network", POSTHOG_API_KEY=None, OTEL_TRACES_EXPORTER="console")
    assert library(report, "openai")["status"] == "will be instrumented when the app imports it"
    assert code == 1  # but nothing reaches PostHog


# Found by this file (raw values and built-in defaults were shown, not the values in effect); fixed in 24c423b.
@pytest.mark.parametrize(
    "env, variable, effective",
    [
        (
            {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"},
            "POSTHOG_AI_RECORD_INPUTS",
            ("false", "from OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"),
        ),
        (
            {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false", "POSTHOG_AI_RECORD_OUTPUTS": "true"},
            "POSTHOG_AI_RECORD_OUTPUTS",
            ("true", "environment"),
        ),
        (
            {"POSTHOG_FLUSH_TIMEOUT": "soon"},
            "POSTHOG_FLUSH_TIMEOUT",
            ("3", "environment value 'soon' not usable; see problems"),
        ),
        ({"OTEL_SDK_DISABLED": "true"}, "POSTHOG_AUTOINSTRUMENT_DISABLED", ("true", "from OTEL_SDK_DISABLED")),
        (
            {"POSTHOG_HOST": "https://eu.i.posthog.com/i/v0/ai/otel"},
            "POSTHOG_HOST",
            ("https://eu.i.posthog.com", "environment"),
        ),
    ],
    ids=[
        "derived from the OTel variable",
        "own variable wins",
        "invalid value replaced by the default",
        "kill switch from OTEL_SDK_DISABLED",
        "host normalised",
    ],
)
def test_configuration_lists_the_value_in_effect_and_where_it_came_from(in_process, env, variable, effective):
    code, report = in_process_json(in_process, "--no-network", POSTHOG_API_KEY=TOKEN, **env)
    assert rows(report)[variable] == effective


# Found by this file: an unusable token (even a phx_ personal key) was printed in full in the source
# column. Fixed in 1a85a98.
@pytest.mark.parametrize("key", ["phx_personal0key0abcdefghijkl", "phc_project token with spaces"])
def test_unusable_token_is_masked_too(in_process, key):
    code, out = in_process(POSTHOG_API_KEY=key)
    assert code == 1
    assert key not in out


# Found by this file (it exited 127 "doctor: command not found"); fixed in 24c423b.
def test_doctor_after_launcher_options_checks_that_configuration():
    result = run([LAUNCHER, "--api-key", TOKEN, "--privacy-mode", "doctor", "--json", "--no-network"], clean_env())
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["privacy"].startswith("privacy mode")


# ---------------------------------------------------------------------------
# --debug: a summary of each exported event on stderr
# ---------------------------------------------------------------------------


def test_debug_run_logs_a_summary_of_each_exported_event(fake_openai, posthog):
    env = clean_env(
        OPENAI_BASE_URL=fake_openai.base_url,
        OPENAI_API_KEY="sk-test-secret-key",
        POSTHOG_API_KEY=TOKEN,
        POSTHOG_HOST=posthog.host,
        POSTHOG_EXPORT_INTERVAL="0.05",
        POSTHOG_DISTINCT_ID="debug-user",
    )
    app = [str(APPS / "llm_app.py"), "--calls", "2", "--tag", "debug"]
    result = run([LAUNCHER, "--debug", "python", *app], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "debug: calls=2 reply='Hello from fake OpenAI' tokens=36\ndone\n"  # as uninstrumented
    exported = [line for line in result.stderr.splitlines() if "exporting" in line]
    assert len(exported) == 2, result.stderr
    for line in exported:
        assert re.fullmatch(
            r"posthog-instrument DEBUG posthog-instrument: exporting \$ai_generation 'chat gpt-4o-mini' "
            r"model=gpt-4o-mini-2024-08-06 provider=openai in=11 out=7 person=debug-user \d+\.\dms",
            line,
        ), line
    # A summary, not the event: no prompt, no output, no credentials.
    assert "hello from debug" not in result.stderr
    assert "Hello from fake OpenAI" not in result.stderr
    assert TOKEN not in result.stderr and "sk-test-secret-key" not in result.stderr
    assert len(posthog.spans) == 2  # and the events were still sent


# ---------------------------------------------------------------------------
# Issue 18: doctor tells the truth about what will be recorded, and masks every token
# ---------------------------------------------------------------------------


def fake_release(tmp_path, files: dict, name: str = "openai", version: str = "1.59.9") -> str:
    """A directory to put first on PYTHONPATH: an installed ``name`` of that version whose package
    holds only ``files`` (a release whose chat module is not where the adapter looks)."""
    dist = tmp_path / f"{name}-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return str(tmp_path)


EMBEDDINGS_ONLY = {
    "openai/__init__.py": "",
    "openai/resources/__init__.py": "",
    "openai/resources/embeddings.py": "class Embeddings:\n    def create(self): ...\n\n"
    "class AsyncEmbeddings:\n    async def create(self): ...\n",
    # every other endpoint the adapter records, where 1.59 keeps them
    "openai/resources/completions.py": "",
    "openai/resources/images.py": "",
    "openai/resources/audio/__init__.py": "",
    "openai/resources/audio/transcriptions.py": "",
    "openai/resources/audio/translations.py": "",
    "openai/resources/audio/speech.py": "",
}


def test_a_release_whose_chat_calls_will_not_be_recorded_is_named(tmp_path, posthog):
    """Found by issue 18: doctor said "openai 1.59.9 will be instrumented" while its chat calls were
    not recorded. Doctor finds the targets as the adapter does: a release that lacks one is named."""
    path = fake_release(tmp_path, EMBEDDINGS_ONLY)
    result, report = doctor_json(POSTHOG_API_KEY=TOKEN, POSTHOG_HOST=posthog.host, PYTHONPATH=path)
    row = library(report, "openai")
    assert row["version"] == "1.59.9"
    assert row["not_recorded"] == [
        "openai.resources.chat.completions.completions.Completions.create",
        "openai.resources.chat.completions.completions.AsyncCompletions.create",
    ]
    assert "these calls will not be recorded" in row["status"]
    assert any(problem.startswith("openai 1.59.9: ") for problem in report["problems"])
    assert report["ok"] is False and result.returncode == 1  # events can still reach PostHog, but not all
    text = doctor(POSTHOG_API_KEY=TOKEN, POSTHOG_HOST=posthog.host, PYTHONPATH=path).stdout
    assert "Completions.create" in text_library_line(text, "openai")
    assert text.splitlines()[-1] == "LLM events can reach PostHog, but not everything is right; see Problems above."
    # ... and --debug says the same when the app imports that release.
    env = clean_env(POSTHOG_API_KEY=TOKEN, POSTHOG_HOST=posthog.host, PYTHONPATH=path)
    app = run([LAUNCHER, "--debug", "python", "-c", "import openai.resources.embeddings"], env)
    assert app.returncode == 0, app.stderr
    assert (
        "posthog-instrument: openai 1.59.9: Completions.create not found in openai.resources.chat.completions"
        ".completions or openai.resources.chat.completions; these calls will not be recorded"
    ) in app.stderr


def test_a_supported_release_with_every_target_is_instrumented(tmp_path):
    """The same release with chat where openai up to 1.62 keeps it (a module): nothing missing."""
    path = fake_release(
        tmp_path,
        {**EMBEDDINGS_ONLY, "openai/resources/chat/__init__.py": "", "openai/resources/chat/completions.py": ""},
    )
    _, report = doctor_json("--no-network", POSTHOG_API_KEY=TOKEN, PYTHONPATH=path)
    assert library(report, "openai")["status"] == "will be instrumented when the app imports it"
    assert not [p for p in report["problems"] if p.startswith("openai")]


def test_every_adapter_reports_its_library(in_process):
    """Found by issue 18: every report showed "? broken adapter: type object 'PydanticAIInstrumentor'
    has no attribute 'requirements'" and still ended "Everything looks right"."""
    code, report = in_process_json(in_process, "--no-network", POSTHOG_API_KEY=TOKEN)
    assert [row for row in report["libraries"] if "broken" in row["status"] or row["library"] == "?"] == []
    row = library(report, "pydantic-ai-slim")
    assert row["version"] == metadata.version("pydantic-ai-slim")
    assert row["status"] == "will be instrumented when the app imports it"
    assert code == 0 and report["ok"] is True


@pytest.mark.parametrize("variable", ["POSTHOG_PROJECT_API_KEY", "POSTHOG_API_KEY"])
def test_every_token_variable_is_masked_in_text_and_json(in_process, variable):
    """Found by issue 18: POSTHOG_PROJECT_API_KEY (a documented alias) was printed in full."""
    env = (
        {"POSTHOG_PROJECT_API_KEY": TOKEN}
        if variable == "POSTHOG_PROJECT_API_KEY"
        else {"POSTHOG_API_KEY": TOKEN, "POSTHOG_PROJECT_API_KEY": TOKEN[::-1]}
    )
    code, out = in_process("--no-network", **env)
    _, as_json = in_process("--json", "--no-network", **env)
    for shown in (out, as_json):
        assert TOKEN not in shown and TOKEN[::-1] not in shown
    assert rows(json.loads(as_json))["POSTHOG_PROJECT_API_KEY"][0] == mask_of(env["POSTHOG_PROJECT_API_KEY"])
    assert code == 0


def mask_of(token: str) -> str:
    return token[:6] + "..." + token[-4:]


@pytest.mark.parametrize(
    "env, problem",
    [
        ({"POSTHOG_FLUSH_TIMEOUT": "soon"}, "POSTHOG_FLUSH_TIMEOUT='soon' is not a number"),
        ({"POSTHOG_AI_PROPERTIES": "not json"}, "POSTHOG_AI_PROPERTIES must be a JSON object"),
    ],
)
def test_never_everything_looks_right_when_something_is_wrong(in_process, posthog, env, problem):
    """Found by issue 18: a report with problems still ended "Everything looks right"."""
    code, out = in_process(POSTHOG_API_KEY=TOKEN, POSTHOG_HOST=posthog.host, **env)
    lines = out.splitlines()
    assert any(line.startswith("  - ") and problem in line for line in lines), out
    assert "Everything looks right." not in out
    assert lines[-1] == "LLM events can reach PostHog, but not everything is right; see Problems above."
    assert code == 1
    assert len(posthog.spans) == 1  # the test span was still delivered


def test_doctor_imports_none_of_the_libraries_it_checks():
    """Doctor finds the adapters' targets from the installed files: importing the libraries would
    run their import-time code and take seconds."""
    code = (
        "import sys; from posthog_autoinstrument import doctor; doctor.report(check_connectivity=False); "
        "print(sorted(m for m in ('openai', 'anthropic', 'litellm', 'google.genai', 'mistralai', 'cohere') "
        "if m in sys.modules))"
    )
    result = run(["python", "-c", code], clean_env(POSTHOG_API_KEY=TOKEN))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"
