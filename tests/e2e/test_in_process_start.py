"""End to end: ``posthog_autoinstrument.start()`` and ``%load_ext posthog_autoinstrument`` in
programs ``posthog-instrument`` did not launch: a real Jupyter kernel run by nbclient, a plain
script, and a dry run under pytest's output capture. The OpenAI SDK is always imported (and a
client made) before the start, as in a notebook whose first cell imports it."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from tests.conftest import LAUNCHER, clean_env, run
from tests.e2e.traces import posthog_input, posthog_output
from tests.e2e.providers import text_output

MODEL = "gpt-4o-mini"

IMPORT_OPENAI = "import openai\nclient = openai.OpenAI()"
CHAT_CALL = textwrap.dedent(f"""\
    reply = client.chat.completions.create(model={MODEL!r}, messages=[{{"role": "user", "content": "hi"}}])
    print(reply.choices[0].message.content)""")


def provider_env(fake_openai, posthog=None, **overrides: str) -> dict:
    env = clean_env(OPENAI_BASE_URL=fake_openai.base_url, OPENAI_API_KEY="sk-test-secret-key")
    if posthog is not None:
        env.update(POSTHOG_API_KEY="phc_test_project_token", POSTHOG_HOST=posthog.host)
    env.update(overrides)
    return {name: value for name, value in env.items() if value is not None}


def assert_generations(posthog, count: int = 1) -> list:
    """``count`` complete generations, no more: one per call, whatever started us how often."""
    assert posthog.rejections == []
    spans = posthog.spans
    assert [s["name"] for s in spans] == [f"chat {MODEL}"] * count
    for span in spans:
        attrs = span["attributes"]
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.provider.name"] == "openai"
        assert attrs["gen_ai.request.model"] == MODEL
        assert attrs["gen_ai.response.model"] == "gpt-4o-mini-2024-08-06"
        assert attrs["gen_ai.usage.input_tokens"] == 11
        assert attrs["gen_ai.usage.output_tokens"] == 7
        assert attrs["$ai_lib"] == "posthog-autoinstrument"
        assert posthog_input(span) == [{"role": "user", "content": "hi"}]
        assert posthog_output(span) == text_output("Hello from fake OpenAI")
    return [span["attributes"] for span in spans]


# -- a real Jupyter kernel ---------------------------------------------------------------------


@pytest.fixture
def kernel_name(tmp_path, monkeypatch):
    """A kernelspec of this test's Python, in a directory of the test's own: nothing depends on
    the kernels installed for the user or the system."""
    name = "posthog-autoinstrument-test"
    spec_dir = tmp_path / "jupyter" / "kernels" / name
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "test",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    return name


def run_notebook(cells: list, kernel_name: str, env: dict, tmp_path) -> list:
    """Execute the cells in a new kernel, shut it down (gracefully: our exit flush runs), and
    return each cell's text output."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    env = {**env, "IPYTHONDIR": str(tmp_path / "ipython")}
    NotebookClient(notebook, kernel_name=kernel_name, timeout=60, startup_timeout=60).execute(env=env)
    return ["".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream") for cell in notebook.cells]


@pytest.mark.parametrize(
    "start",
    [
        "import posthog_autoinstrument\nprint(posthog_autoinstrument.start())\nprint(posthog_autoinstrument.start())",
        "%load_ext posthog_autoinstrument\nimport posthog_autoinstrument\nprint(posthog_autoinstrument.start())",
    ],
    ids=["start-twice", "load_ext"],
)
def test_notebook_records_one_generation_per_call(start, kernel_name, fake_openai, posthog, tmp_path):
    # The first event is sent at once; with this export interval, the second reaches PostHog
    # only through the flush at kernel shutdown.
    env = provider_env(fake_openai, posthog, POSTHOG_EXPORT_INTERVAL="600")
    outputs = run_notebook([IMPORT_OPENAI, start, CHAT_CALL, CHAT_CALL], kernel_name, env, tmp_path)
    assert outputs[1] in ("True\nTrue\n", "True\n")
    assert outputs[2:] == ["Hello from fake OpenAI\n"] * 2
    for attrs in assert_generations(posthog, 2):
        assert attrs["code.function.name"] == "<module>"  # a cell made the call


def test_notebook_dry_run_appends_to_the_dry_run_file(kernel_name, fake_openai, posthog, tmp_path):
    events = tmp_path / "events.jsonl"
    env = provider_env(fake_openai, POSTHOG_DRY_RUN_FILE=str(events), POSTHOG_EXPORT_INTERVAL="600")
    start = "import posthog_autoinstrument\nposthog_autoinstrument.start(dry_run=True)"
    outputs = run_notebook([IMPORT_OPENAI, start, CHAT_CALL, CHAT_CALL], kernel_name, env, tmp_path)
    assert outputs == ["", "", "Hello from fake OpenAI\n", "Hello from fake OpenAI\n"]  # nothing in the cells
    lines = events.read_text().splitlines()
    assert len(lines) == 2 and len(generations(events.read_text())) == 2
    assert all(event["attributes"]["gen_ai.usage.output_tokens"] == 7 for event in generations(events.read_text()))
    assert posthog.requests == []


# -- a plain script ----------------------------------------------------------------------------

SCRIPT = f"""\
{IMPORT_OPENAI}
import posthog_autoinstrument
print("started", posthog_autoinstrument.start())
print("again", posthog_autoinstrument.start())
{CHAT_CALL}
"""


def test_script_started_in_process_records_one_generation(tmp_path, fake_openai, posthog):
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    result = run([sys.executable, str(script)], provider_env(fake_openai, posthog))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "started True\nagain True\nHello from fake OpenAI\n"
    assert "posthog-instrument" not in result.stderr
    assert_generations(posthog)


def test_start_under_the_launcher_adds_nothing(tmp_path, fake_openai, posthog):
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    result = run([LAUNCHER, "python", str(script)], provider_env(fake_openai, posthog))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "started True\nagain True\nHello from fake OpenAI\n"
    assert_generations(posthog)


def test_start_arguments_override_the_environment(tmp_path, fake_openai, posthog):
    script = tmp_path / "app.py"
    script.write_text(
        SCRIPT.replace(
            'posthog_autoinstrument.start())\nprint("again"',
            f"posthog_autoinstrument.start(api_key='phc_from_code', host={posthog.host!r}, distinct_id='ada'))\n"
            'print("again"',
            1,
        )
    )
    env = provider_env(fake_openai, POSTHOG_HOST="https://nowhere.invalid")
    result = run([sys.executable, str(script)], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "started True\nagain True\nHello from fake OpenAI\n"
    (attrs,) = assert_generations(posthog)
    assert attrs["posthog.distinct_id"] == "ada"
    assert posthog.requests[0]["headers"]["authorization"] == "Bearer phc_from_code"


def test_bad_configuration_is_one_line_and_the_script_runs_on(tmp_path, fake_openai, posthog):
    script = tmp_path / "app.py"
    script.write_text(
        SCRIPT.replace(
            'posthog_autoinstrument.start())\nprint("again"',
            "posthog_autoinstrument.start(host='not a url'))\nprint(\"again\"",
            1,
        )
    )
    result = run([sys.executable, str(script)], provider_env(fake_openai, posthog, POSTHOG_HOST=None))
    assert result.returncode == 0, result.stderr
    # The second start() (no arguments) reads the environment start() left: the same bad host.
    assert result.stdout == "started False\nagain False\nHello from fake OpenAI\n"
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("posthog-instrument: POSTHOG_HOST='not a url' is not a URL") for line in lines)
    assert posthog.requests == []


def test_an_unknown_argument_is_one_line_and_a_later_start_with_a_key_works(tmp_path, fake_openai, posthog):
    script = tmp_path / "app.py"
    script.write_text(f"""\
{IMPORT_OPENAI}
import posthog_autoinstrument
print("no key", posthog_autoinstrument.start(apikey="phc_typo"))
print("key", posthog_autoinstrument.start(api_key="phc_test_project_token", host={posthog.host!r}))
{CHAT_CALL}
""")
    result = run([sys.executable, str(script)], provider_env(fake_openai))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "no key False\nkey True\nHello from fake OpenAI\n"
    assert result.stderr.splitlines() == [
        "posthog-instrument: start() has no option apikey; use api_key, host, distinct_id, privacy_mode, "
        "dry_run, debug (ignored).",
        "posthog-instrument: POSTHOG_API_KEY is not set, so LLM calls are not sent to PostHog; set it to your "
        "project token (phc_..., Project settings in PostHog).",
    ]
    assert_generations(posthog)


def test_a_call_in_flight_at_start_is_left_alone(tmp_path, fake_openai, posthog):
    # The first call is inside the SDK, its request held by the transport, when start() runs.
    script = tmp_path / "app.py"
    script.write_text(f"""\
import threading
import httpx
import openai
import posthog_autoinstrument

entered, go = threading.Event(), threading.Event()


class HeldTransport(httpx.HTTPTransport):
    def handle_request(self, request):
        if not go.is_set():
            entered.set()
            go.wait()
        return super().handle_request(request)


client = openai.OpenAI(http_client=httpx.Client(transport=HeldTransport()))


def chat():
{textwrap.indent(CHAT_CALL, "    ")}


first = threading.Thread(target=chat)
first.start()
entered.wait()
print("started", posthog_autoinstrument.start())
go.set()
first.join()
chat()
""")
    result = run([sys.executable, str(script)], provider_env(fake_openai, posthog))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "started True\nHello from fake OpenAI\nHello from fake OpenAI\n"
    assert result.stderr == ""
    assert len(fake_openai.requests) == 2
    (attrs,) = assert_generations(posthog)  # the second call only
    assert attrs["code.function.name"] == "chat"


def test_otel_exporter_variables_apply_without_a_provider(tmp_path, fake_openai, posthog):
    from tests.servers.otlp_collector import FakeCollector

    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    with FakeCollector() as collector:
        env = provider_env(
            fake_openai,
            posthog,
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_BSP_SCHEDULE_DELAY="50",
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        )
        result = run([sys.executable, str(script)], env)
        assert result.returncode == 0, result.stderr
        assert [span["name"] for span in collector.spans] == [f"chat {MODEL}"]
    assert_generations(posthog)


def test_unwritable_dry_run_file_is_one_line_and_events_print_to_stderr(tmp_path, fake_openai):
    script = tmp_path / "app.py"
    script.write_text(SCRIPT.replace("start())", "start(dry_run=True))"))
    missing = tmp_path / "no-such-directory" / "events.jsonl"
    result = run([sys.executable, str(script)], provider_env(fake_openai, POSTHOG_DRY_RUN_FILE=str(missing)))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "started True\nagain True\nHello from fake OpenAI\n"
    ours = [line for line in result.stderr.splitlines() if line.startswith("posthog-instrument:")]
    assert ours == [
        f"posthog-instrument: POSTHOG_DRY_RUN_FILE={str(missing)!r} cannot be written "
        "(No such file or directory); printing events to stderr instead."
    ]
    assert len(generations(result.stderr)) == 1


# -- a dry run under pytest's output capture -----------------------------------------------------

INNER_TEST = f"""\
{IMPORT_OPENAI}
import posthog_autoinstrument
from opentelemetry import trace


def test_chat():
    posthog_autoinstrument.start(dry_run=True)
{textwrap.indent(CHAT_CALL, "    ")}
    trace.get_tracer_provider().force_flush()  # exported now, while pytest captures this test's output
"""


def inner_pytest(tmp_path, test_source: str) -> list:
    (tmp_path / "test_inner.py").write_text(test_source)
    return [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(tmp_path),
        str(tmp_path / "test_inner.py"),
    ]


def generations(text: str) -> list:
    """The dry run's generation events among other lines of output."""
    events = []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("posthog_event") == "$ai_generation":
            events.append(event)
    return events


def test_dry_run_file_keeps_events_made_under_pytest_capture(tmp_path, fake_openai):
    events = tmp_path / "events.jsonl"
    command = inner_pytest(tmp_path, INNER_TEST)
    result = run(command, provider_env(fake_openai, POSTHOG_DRY_RUN_FILE=str(events)), cwd=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    (event,) = generations(events.read_text())
    assert event["attributes"]["gen_ai.request.model"] == MODEL


def test_dry_run_under_the_launcher_reaches_stderr_past_pytest_capture(tmp_path, fake_openai):
    # The test makes its call without start(): the launcher started everything.
    source = INNER_TEST.replace("    posthog_autoinstrument.start(dry_run=True)\n", "")
    command = [LAUNCHER, "--dry-run", *inner_pytest(tmp_path, source)]
    result = run(command, provider_env(fake_openai), cwd=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    (event,) = generations(result.stderr)
    assert event["attributes"]["gen_ai.request.model"] == MODEL
    assert "1 passed" in result.stdout
