"""End to end: what text leaves the process, under every privacy switch.

``apps/privacy_app.py`` runs unmodified under ``posthog-instrument`` with a planted OpenAI key
(``OPENAI_API_KEY=sk-planted-SECRET-123``), an MCP tool whose definition holds credentials,
and content that carries unique markers: OpenAI calls (chat with system prompt, tool history
and an inline image, a stream, the Responses API, an embedding, a rate-limited call, a very
long prompt) and spans from a library that traces itself. The tests scan the RAW decompressed
bytes of every request the PostHog stand-in received, so content hidden under any attribute
key or span event is found, and assert that metadata still arrives.

Precedence under test: POSTHOG_PRIVACY_MODE beats everything, then POSTHOG_AI_RECORD_INPUTS /
POSTHOG_AI_RECORD_OUTPUTS, then OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT, default on.
All runs start together once per module, each with its own PostHog stand-in.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import APPS, LAUNCHER, clean_env
from tests.servers import FakeOpenAI, FakePostHog
from tests.servers.anthropic_server import FakeAnthropic
from tests.e2e.traces import tools

PLANTED_KEY = "sk-planted-SECRET-123"
PLANTED_ANTHROPIC_KEY = "sk-ant-planted-SECRET-456"
COMPLETION = "COMPLETION-PLUGH-77"
OTEL_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
MAX_SPAN_BYTES = 20_000

# Text the app sends to a model (prompts, system instructions, tool arguments and results in
# the history, embedding input), by scenario: our OpenAI adapter, Anthropic's SDK tracing
# itself, and spans of another library that traces itself ("native").
INPUTS = {
    "openai": [
        "PROMPT-XYZZY-42",
        "SYSTEM-FROBOZZ-17",
        "USER-EARLIER-18",
        "TOOLARG-GRUE-66",
        "TOOLRESULT-ZORK-55",
        "STREAM-PROMPT-43",
        "RESPONSES-PROMPT-44",
        "EMBED-INPUT-39",
        "RATE-PROMPT-45",
        "BIG-PROMPT-START",
    ],
    "anthropic": [
        "ANTH-SYSTEM-71",
        "ANTH-EARLIER-72",
        "ANTH-TOOLARG-73",
        "ANTH-TOOLRESULT-74",
        "ANTH-STREAM-76",
        "ANTH-RATE-77",
    ],
    "native": ["NATIVE-PROMPT", "NATIVE-SYSTEM", "NATIVE-TOOLARG", "NATIVE-LEGACY-PROMPT"],
}
# Text a model (or tool) sends back.
OUTPUTS = {
    "openai": [COMPLETION],
    "anthropic": ["Hello from fake Claude"],
    "native": ["NATIVE-COMPLETION", "NATIVE-TOOLRESULT", "NATIVE-LEGACY-COMPLETION"],
}
# Error message text: OpenAI's rate-limit message, and the native spans' exceptions.
ERRORS = {"openai": ["org-fake"], "native": ["NATIVE-ERROR-38", "HUGE-ERROR"]}
SPANS = {"openai": 7, "anthropic": 3, "native": 3, "credential_attributes": 1}
# Never exported, whatever the switches say.
SECRETS = [PLANTED_KEY, "planted-SECRET", "planted-secret", "planted-oauth-token"]
PER_CALL_PRIVATE = ["PERCALL-PRIVATE-51", "PERCALL-REPLY-52", "PERCALL-NATIVE-53"]
MEDIA = "TUVESUEtUEFZTE9BRC1CWVRFUy"  # a stretch of the inline image's base64

ALL = ["openai", "anthropic", "native"]
RUNS = {
    "default": (ALL, {"POSTHOG_MAX_SPAN_BYTES": str(MAX_SPAN_BYTES)}),
    # Privacy mode beats every switch that asks for content.
    "privacy": (
        ALL,
        {
            "POSTHOG_PRIVACY_MODE": "true",
            "POSTHOG_AI_RECORD_INPUTS": "true",
            "POSTHOG_AI_RECORD_OUTPUTS": "true",
            OTEL_CONTENT: "SPAN_AND_EVENT",
        },
    ),
    "inputs_off": (ALL, {"POSTHOG_AI_RECORD_INPUTS": "false"}),
    "outputs_off": (["openai", "native"], {"POSTHOG_AI_RECORD_OUTPUTS": "false"}),
    "otel_no_content": (["openai", "native"], {OTEL_CONTENT: "NO_CONTENT"}),
    # POSTHOG_AI_RECORD_INPUTS beats the OpenTelemetry variable; outputs follow the latter. (And
    # inline media kept, since inputs are on here.)
    "otel_false_inputs_on": (
        ["openai", "native"],
        {OTEL_CONTENT: "false", "POSTHOG_AI_RECORD_INPUTS": "true", "POSTHOG_AI_CAPTURE_MEDIA": "true"},
    ),
    "otel_span_only": (["native"], {OTEL_CONTENT: "SPAN_ONLY"}),
    "otel_False": (["native"], {OTEL_CONTENT: "False"}),
    "otel_0": (["native"], {OTEL_CONTENT: "0"}),
    "credentials": (["credential_attributes"], {}),
    # Spans of a library that traces itself, in an app that imports none of the adapted libraries,
    # ending right before exit with a short exit bound.
    "native_short_exit": (["credential_attributes"], {"POSTHOG_FLUSH_TIMEOUT": "0.05"}),
}


@dataclass
class Run:
    name: str
    returncode: int
    stdout: str
    stderr: str
    spans: list
    requests: list

    @property
    def raw(self) -> str:
        """Everything PostHog received, decompressed, as text (protobuf strings are UTF-8)."""
        return b"".join(r["decompressed"] or b"" for r in self.requests).decode("utf-8", "replace")

    def present(self, markers) -> list:
        raw = self.raw
        return [m for m in markers if m in raw]

    def markers(self, table: dict) -> list:
        """The markers of ``table`` for the scenarios this run ran."""
        return [m for scenario in RUNS[self.name][0] for m in table.get(scenario, [])]

    def by_model(self, model: str) -> list:
        return [s for s in self.spans if s["attributes"].get("gen_ai.request.model") == model]

    def span_sizes(self) -> list:
        sizes = []
        for request in self.requests:
            message = ExportTraceServiceRequest()
            message.ParseFromString(request["decompressed"])
            for resource_spans in message.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    sizes += [(span.name, span.ByteSize()) for span in scope_spans.spans]
        return sizes


@pytest.fixture(scope="module")
def runs():
    with FakeOpenAI(reply_text=COMPLETION) as openai_server, FakeAnthropic() as anthropic_server:
        posthogs = {name: FakePostHog().start() for name in RUNS}
        started = {}
        try:
            for name, (scenarios, overrides) in RUNS.items():
                # A generous exit bound: a dozen interpreters start at once, and these tests are
                # about what is sent, not about how fast (see test_native_spans_at_exit_...).
                env = clean_env(
                    OPENAI_BASE_URL=openai_server.base_url,
                    OPENAI_API_KEY=PLANTED_KEY,
                    POSTHOG_API_KEY="phc_test_project_token",
                    POSTHOG_HOST=posthogs[name].host,
                    POSTHOG_EXPORT_INTERVAL="0.05",
                    POSTHOG_FLUSH_TIMEOUT="20",
                    ANTHROPIC_BASE_URL=anthropic_server.base_url,
                    ANTHROPIC_API_KEY=PLANTED_ANTHROPIC_KEY,
                )
                for key in [k for k in env if k.startswith("ANTHROPIC_OPEN_TELEMETRY")]:
                    del env[key]
                env.update(overrides)
                out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
                process = subprocess.Popen(
                    [LAUNCHER, "python", str(APPS / "privacy_app.py"), *scenarios],
                    env=env,
                    stdout=out,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    text=True,
                )
                started[name] = (process, out, err)
            results = {}
            for name, (process, out, err) in started.items():
                returncode = process.wait(timeout=90)
                out.seek(0), err.seek(0)
                server = posthogs[name]
                results[name] = Run(name, returncode, out.read(), err.read(), server.spans, server.requests)
            yield results
        finally:
            for process, _, _ in started.values():
                if process.poll() is None:
                    process.kill()
            for server in posthogs.values():
                server.stop()


@pytest.fixture(params=list(RUNS))
def each_run(request, runs) -> Run:
    return runs[request.param]


def full(runs, name) -> Run:
    run = runs[name]
    assert run.returncode == 0, run.stderr
    assert run.stdout.rstrip().endswith("done")
    assert run.requests and all(r["status"] == 200 for r in run.requests), [r["rejection"] for r in run.requests]
    return run


def test_every_run_delivered_every_span(each_run):
    run = each_run
    if run.name == "native_short_exit":
        pytest.skip("a deliberately short exit bound: see test_native_spans_at_exit_are_delivered_or_reported")
    assert run.returncode == 0, run.stderr
    expected = sum(SPANS[scenario] for scenario in RUNS[run.name][0])
    assert len(run.spans) == expected, [s["name"] for s in run.spans]
    assert run.requests and all(r["status"] == 200 and r["decompressed"] for r in run.requests)


def test_credentials_never_leave_the_process(each_run):
    if each_run.name in ("credentials", "native_short_exit"):
        pytest.skip("credentials recorded as ordinary attributes: see the test below")
    assert each_run.present(SECRETS) == []
    assert "[REDACTED]" in each_run.raw  # the MCP headers/authorization are there, without their values


def test_credentials_in_other_instrumentations_attributes_are_removed(runs):
    run = runs["credentials"]
    assert run.returncode == 0, run.stderr
    assert len(run.spans) == 1
    assert run.present(SECRETS) == []


def test_default_sends_content_but_no_secrets_no_media_and_nothing_marked_private(runs):
    run = full(runs, "default")
    # The control: with no switch, content does arrive (so the scans below can see it).
    for table in (INPUTS, OUTPUTS, ERRORS):
        assert run.present(run.markers(table)) == run.markers(table)
    assert "sk-[REDACTED]" in run.raw  # the key quoted in an error message is cut out of it
    assert run.present(PER_CALL_PRIVATE) == []  # context(privacy_mode=True)
    assert MEDIA not in run.raw


def test_per_call_privacy_mode_keeps_the_metadata_of_that_call(runs):
    run = full(runs, "default")
    # The one call made inside context(privacy_mode=True) is there, without its content.
    (private,) = [s for s in run.by_model("gpt-4o-mini") if "$ai_input" not in s["attributes"]]
    assert not {"$ai_output_choices", "gen_ai.input.messages", "gen_ai.output.messages"} & set(private["attributes"])
    assert private["attributes"]["gen_ai.response.model"] == "gpt-4o-mini-2024-08-06"
    assert private["attributes"]["gen_ai.usage.input_tokens"] == 11
    native_private = [s for s in run.by_model("acme-large") if s["status_message"] == "error"]
    assert len(native_private) == 1
    assert native_private[0]["attributes"]["gen_ai.usage.output_tokens"] == 6
    assert [e["attributes"] for e in native_private[0]["events"]] == [
        {"exception.type": "RuntimeError", "exception.escaped": "False"}
    ]


def test_privacy_mode_beats_every_content_switch_and_metadata_still_flows(runs):
    run = full(runs, "privacy")
    leaked = run.present(run.markers(INPUTS) + run.markers(OUTPUTS) + run.markers(ERRORS) + SECRETS)
    assert leaked == []
    assert MEDIA not in run.raw and "omitted]" not in run.raw
    # Metadata: model, provider, tokens, tool names, error types, the person.
    chat = [s for s in run.by_model("gpt-4o-mini") if s["attributes"].get("posthog.distinct_id") == "privacy-user"]
    assert len(chat) == 1
    attrs = chat[0]["attributes"]
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini-2024-08-06"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7)
    assert attrs["$ai_stop_reason"] == "tool_call"
    assert not {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "$ai_input",
        "$ai_output_choices",
    } & set(attrs)
    (error,) = [s for s in run.by_model("error-429") if s["attributes"]["gen_ai.provider.name"] == "openai"]
    assert error["status_code"] == "ERROR"
    assert error["status_message"] == "openai.RateLimitError"
    assert error["attributes"]["error.type"] == "openai.RateLimitError"
    assert error["attributes"]["$ai_http_status"] == 429
    assert [e["attributes"]["exception.type"] for e in error["events"]] == ["openai.RateLimitError"]
    (embedding,) = run.by_model("text-embedding-3-small")
    assert embedding["attributes"]["gen_ai.usage.input_tokens"] == 1
    natives = run.by_model("acme-large")
    assert len(natives) == 2
    for span in natives:
        assert span["scope_name"] == "acme.native_llm"
        assert span["attributes"]["gen_ai.usage.input_tokens"] == 5
        assert not [k for k in span["attributes"] if k.startswith(("gen_ai.prompt.", "gen_ai.completion."))]
    anthropic = run.by_model("claude-fake-1")
    assert len(anthropic) == 2
    for span in anthropic:
        # Our adapter's span: with PostHog the only consumer, the SDK's own tracing is off
        # (test_anthropic.py runs privacy on the SDK's span too).
        assert span["scope_name"] == "posthog_autoinstrument"
        assert span["attributes"]["gen_ai.response.model"] == "claude-fake-1-20250101"
        assert span["attributes"]["gen_ai.usage.output_tokens"] == 7
    assert {s["attributes"].get("posthog.distinct_id") for s in anthropic} == {"anthropic-user", None}
    (anthropic_error,) = [
        s for s in run.by_model("error-429") if s["attributes"]["gen_ai.provider.name"] == "anthropic"
    ]
    assert anthropic_error["status_code"] == "ERROR"
    assert anthropic_error["attributes"]["error.type"] == "anthropic.RateLimitError"


def test_privacy_mode_keeps_tool_names(runs):
    run = full(runs, "privacy")
    (chat,) = [s for s in run.by_model("gpt-4o-mini") if s["attributes"].get("posthog.distinct_id") == "privacy-user"]
    assert [t["function"]["name"] for t in tools(chat)] == ["get_weather"]


@pytest.mark.parametrize(
    "name, inputs, outputs",
    [
        ("inputs_off", False, True),
        ("outputs_off", True, False),
        ("otel_no_content", False, False),
        ("otel_false_inputs_on", True, False),
    ],
)
def test_switches_for_inputs_and_outputs(runs, name, inputs, outputs):
    run = full(runs, name)
    all_inputs, all_outputs = run.markers(INPUTS), run.markers(OUTPUTS)
    assert run.present(all_inputs) == (all_inputs if inputs else [])
    assert run.present(all_outputs) == (all_outputs if outputs else [])
    assert run.present(SECRETS + PER_CALL_PRIVATE) == []
    for span in run.by_model("gpt-4o-mini") + run.by_model("acme-large") + run.by_model("claude-fake-1"):
        assert span["attributes"]["gen_ai.usage.input_tokens"] in (11, 5, 19)


@pytest.mark.parametrize(
    "name, content",
    [
        ("otel_span_only", True),
        ("otel_False", False),
        ("otel_0", False),
    ],
)
def test_opentelemetry_capture_content_spellings(runs, name, content):
    run = runs[name]
    assert run.returncode == 0, run.stderr
    assert "not understood" not in run.stderr
    markers = INPUTS["native"] + OUTPUTS["native"]
    assert run.present(markers) == (markers if content else [])
    assert len(run.by_model("acme-large")) == 2


def test_inline_media_is_a_placeholder_unless_capture_media(runs):
    default, media = full(runs, "default"), full(runs, "otel_false_inputs_on")
    (span,) = [
        s for s in default.by_model("gpt-4o-mini") if "PROMPT-XYZZY-42" in json.dumps(s["attributes"].get("$ai_input"))
    ]
    last = span["attributes"]["$ai_input"][-1]
    assert last["content"][1] == {"type": "image", "image": "[image image/png ~8010 bytes omitted]"}
    assert MEDIA in media.raw
    (span,) = [
        s for s in media.by_model("gpt-4o-mini") if "PROMPT-XYZZY-42" in json.dumps(s["attributes"].get("$ai_input"))
    ]
    image = span["attributes"]["$ai_input"][-1]["content"][1]
    assert image["type"] == "image" and image["image"].startswith("data:image/png;base64,") and MEDIA in image["image"]


def test_long_content_is_truncated_as_valid_json_within_the_span_cap(runs):
    run = full(runs, "default")
    (big,) = [
        s for s in run.by_model("gpt-4o-mini") if "BIG-PROMPT-START" in json.dumps(s["attributes"].get("$ai_input"))
    ]
    messages = big["attributes"]["$ai_input"]  # cut as valid JSON, then structured
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"].startswith("BIG-PROMPT-START lorem ipsum")
    assert big["attributes"]["$ai_output_choices"][0]["content"] == [{"type": "text", "text": COMPLETION}]
    assert big["attributes"]["gen_ai.usage.input_tokens"] == 11
    sizes = dict((name, size) for name, size in run.span_sizes() if name == "chat gpt-4o-mini" and size > 5000)
    assert sizes and max(sizes.values()) <= MAX_SPAN_BYTES
    for span in run.spans:
        # Every message attribute was cut as valid JSON, so every one became PostHog's structure.
        assert not {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"} & set(
            span["attributes"]
        )


def test_no_exported_span_exceeds_the_cap_even_with_a_long_error_message(runs):
    run = full(runs, "default")
    oversized = [(name, size) for name, size in run.span_sizes() if size > MAX_SPAN_BYTES]
    assert oversized == []


# Not strict: a race. The in-flight counter being added to processor.py (uncommitted work of
# another engineer at the time of writing) reports most such losses; what remains is the window
# before it is set.
def test_native_spans_at_exit_are_delivered_or_reported(runs):
    run = runs["native_short_exit"]
    assert run.returncode == 0, run.stderr
    assert len(run.spans) == 1 or "could not be delivered" in run.stderr, (len(run.spans), run.stderr)
