"""End to end: an unmodified Instructor app under ``posthog-instrument``, against the loopback
OpenAI and PostHog stand-ins.

A validated call (``create(response_model=..., max_retries=...)``) is one ``invoke_workflow``
step named after the response model; each of its attempts is one generation below it,
recorded by the OpenAI adapter with the stand-in's tokens; the step records the attempts, the
validation errors and the validated object. The app's validator rejects the first answer of
most calls, so they take two attempts (the stand-in answers every attempt with the forced tool
call Instructor asks for). Instructor 1.x requires jiter < 0.15, which openai 3.x's pins
exclude: these tests run in the openai 2.x environment (tests/requirements-openai2.txt).

One launcher run with content, one in privacy mode and one plain run, all at once.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
from dataclasses import dataclass

import pytest

from tests.conftest import APPS, LAUNCHER, AppRun, BackgroundApp, clean_env
from tests.e2e.traces import event_type, tree
from tests.servers import FakeOpenAI, FakePostHog
from tests.servers.openai_wire import CACHED_TOKENS, COMPLETION_TOKENS, PROMPT_TOKENS

if importlib.util.find_spec("instructor") is None:
    pytest.skip("instructor is not installed (it runs in the openai 2.x environment)", allow_module_level=True)


@dataclass
class Outcome:
    run: AppRun
    spans: list
    rejections: list
    requests: list


class _AppProcess:
    def __init__(self, stack: contextlib.ExitStack, instrumented: bool, **extra_env: str):
        self.openai = stack.enter_context(FakeOpenAI())
        self.posthog = stack.enter_context(FakePostHog())
        env = clean_env(
            OPENAI_BASE_URL=self.openai.base_url,
            OPENAI_API_KEY="sk-test-secret-key",
            POSTHOG_API_KEY="phc_test_project_token",
            POSTHOG_HOST=self.posthog.host,
            POSTHOG_EXPORT_INTERVAL="0.05",
            **extra_env,
        )
        app = str(APPS / "instructor_app.py")
        self.app = BackgroundApp(stack, [LAUNCHER, "python", app] if instrumented else [sys.executable, app], env)

    def outcome(self) -> Outcome:
        run = self.app.result()
        return Outcome(run, self.posthog.spans, self.posthog.rejections, self.openai.requests)


@pytest.fixture(scope="module")
def outcomes() -> dict:
    with contextlib.ExitStack() as stack:
        started = {
            "traced": _AppProcess(stack, True),
            "plain": _AppProcess(stack, False),
            "private": _AppProcess(stack, True, POSTHOG_PRIVACY_MODE="true"),
        }
        return {name: process.outcome() for name, process in started.items()}


@pytest.fixture(scope="module")
def traced(outcomes) -> Outcome:
    return outcomes["traced"]


def run_of(spans: list, label: str) -> list:
    """The spans of the one trace whose validated call asked the question labelled ``label``."""
    roots = [
        s for s in spans if s["parent_span_id"] is None and f"[{label}]" in s["attributes"].get("$ai_input_state", "")
    ]
    assert len(roots) == 1, [r["name"] for r in roots]
    return [s for s in spans if s["trace_id"] == roots[0]["trace_id"]]


def root_of(spans: list) -> dict:
    (root,) = [s for s in spans if s["parent_span_id"] is None]
    return root


def generations(spans: list) -> list:
    return sorted((s for s in spans if event_type(s) == "$ai_generation"), key=lambda s: s["start_ns"])


def assert_attempt(generation: dict, root: dict) -> None:
    attrs = generation["attributes"]
    assert generation["parent_span_id"] == root["span_id"]
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.usage.input_tokens"] == PROMPT_TOKENS
    assert attrs["gen_ai.usage.output_tokens"] == COMPLETION_TOKENS
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == CACHED_TOKENS
    (tool,) = attrs["$ai_tools"]
    assert tool["function"]["name"] in ("Weather", "PartialCity", "City")


def without_usage_request(body: dict) -> dict:
    """A request without the stream usage we ask for (README: streams report their usage)."""
    if body.get("stream") and body.get("stream_options") == {"include_usage": True}:
        return {k: v for k, v in body.items() if k != "stream_options"}
    return body


def test_the_app_is_unchanged(outcomes):
    traced, plain, private = outcomes["traced"], outcomes["plain"], outcomes["private"]
    for outcome in outcomes.values():
        assert outcome.run.returncode == 0, outcome.run.stderr
    assert traced.run.stdout == plain.run.stdout == private.run.stdout
    assert traced.run.stdout.splitlines() == [
        "sync Paris",
        "exhausted InstructorRetryException 2",
        "partial True Paris",
        "with completion Paris 11",
        "patched Paris",
        "async Paris",
        "concurrent ['Paris', 'Paris']",
        "done",
    ]
    assert traced.rejections == [] and private.rejections == []

    def sent(requests):  # what Instructor sent the model, in a comparable form
        return sorted(json.dumps([r["path"], without_usage_request(r["json"])], sort_keys=True) for r in requests)

    assert sent(traced.requests) == sent(plain.requests)


def test_one_generation_per_attempt(traced):
    """Every request the model server answered is one generation, under its validated call."""
    gens = generations(traced.spans)
    assert len(gens) == len(traced.requests) == 14
    steps = {s["span_id"]: s for s in traced.spans if s["attributes"].get("$ai_framework") == "instructor"}
    assert all(g["parent_span_id"] in steps for g in gens)


def test_a_retried_call_is_one_step_with_a_generation_per_attempt(traced):
    spans = run_of(traced.spans, "sync")
    assert tree(spans) == [
        (0, "$ai_trace", "invoke_workflow Weather"),
        (1, "$ai_generation", "chat gpt-4o-mini"),
        (1, "$ai_generation", "chat gpt-4o-mini"),
    ]
    root = root_of(spans)
    attrs = root["attributes"]
    assert attrs["$ai_framework"] == "instructor"
    assert attrs["gen_ai.workflow.name"] == "Weather"
    assert attrs["instructor.mode"] == "tool_call"
    assert attrs["instructor.max_retries"] == 2
    assert attrs["instructor.attempts"] == 2
    (error,) = attrs["instructor.validation_errors"]
    assert "Paris is only a draft, answer again" in error
    assert json.loads(attrs["$ai_input_state"]) == [{"role": "user", "content": "[sync] What is the weather in Paris?"}]
    assert json.loads(attrs["$ai_output_state"]) == {"city": "Paris"}
    first, second = generations(spans)
    for generation in (first, second):
        assert_attempt(generation, root)
    # The second attempt carries the first answer and Instructor's re-ask with the error.
    assert [m["role"] for m in first["attributes"]["$ai_input"]] == ["user"]
    retry_input = second["attributes"]["$ai_input"]
    assert [m["role"] for m in retry_input] == ["user", "assistant", "tool"]
    assert "Paris is only a draft" in json.dumps(retry_input[2])


def test_a_call_out_of_retries_fails_its_step(traced):
    spans = run_of(traced.spans, "exhausted")
    assert [name for _, _, name in tree(spans)] == ["invoke_workflow Weather", "chat gpt-4o-mini", "chat gpt-4o-mini"]
    root = root_of(spans)
    assert root["status_code"] == "ERROR"
    assert root["attributes"]["error.type"] == "instructor.InstructorRetryException"
    assert root["attributes"]["instructor.attempts"] == 2
    assert len(root["attributes"]["instructor.validation_errors"]) == 2
    assert "$ai_output_state" not in root["attributes"]
    for generation in generations(spans):  # each attempt itself succeeded
        assert generation["status_code"] != "ERROR"


def test_a_partial_stream_is_one_generation_under_its_step(traced):
    spans = run_of(traced.spans, "partial")
    assert tree(spans) == [(0, "$ai_trace", "invoke_workflow PartialCity"), (1, "$ai_generation", "chat gpt-4o-mini")]
    (generation,) = generations(spans)
    assert generation["attributes"]["$ai_stream"] is True
    assert_attempt(generation, root_of(spans))
    # Instructor 1.15 reads the stream in its retry loop: the step's output is every partial object.
    partials = json.loads(root_of(spans)["attributes"]["$ai_output_state"])
    assert len(partials) > 1 and partials[-1] == {"city": "Paris"}


def test_a_patched_client_and_create_with_completion(traced):
    """``instructor.patch`` passes no hooks: the step still records the attempts and errors."""
    spans = run_of(traced.spans, "patched")
    assert [name for _, _, name in tree(spans)] == ["invoke_workflow Weather", "chat gpt-4o-mini", "chat gpt-4o-mini"]
    root = root_of(spans)
    assert root["attributes"]["instructor.attempts"] == 2
    assert len(root["attributes"]["instructor.validation_errors"]) == 1
    spans = run_of(traced.spans, "with-completion")
    assert tree(spans) == [(0, "$ai_trace", "invoke_workflow City"), (1, "$ai_generation", "chat gpt-4o-mini")]
    assert json.loads(root_of(spans)["attributes"]["$ai_output_state"]) == {"city": "Paris"}
    assert_attempt(generations(spans)[0], root_of(spans))


def test_async_and_concurrent_calls_are_separate_traces(traced):
    labels = ("async", "concurrent-a", "concurrent-b")
    runs = [run_of(traced.spans, label) for label in labels]
    assert len({spans[0]["trace_id"] for spans in runs}) == 3
    for label, spans in zip(labels, runs):
        assert [name for _, _, name in tree(spans)] == [
            "invoke_workflow Weather",
            "chat gpt-4o-mini",
            "chat gpt-4o-mini",
        ]
        root = root_of(spans)
        assert root["attributes"]["instructor.attempts"] == 2
        for generation in generations(spans):
            assert_attempt(generation, root)
            assert f"[{label}]" in generation["attributes"]["$ai_input"][0]["content"]


def test_privacy_mode_keeps_structure_and_counts_only(outcomes):
    private = outcomes["private"]
    assert len(generations(private.spans)) == 14
    roots = [s for s in private.spans if s["parent_span_id"] is None]
    assert (
        sorted(r["name"] for r in roots)
        == ["invoke_workflow City", "invoke_workflow PartialCity"] + ["invoke_workflow Weather"] * 6
    )
    for span in private.spans:
        attrs = span["attributes"]
        for key in (
            "$ai_input_state",
            "$ai_output_state",
            "instructor.validation_errors",
            "$ai_input",
            "$ai_output_choices",
        ):
            assert key not in attrs, (span["name"], key)
    assert sorted(r["attributes"]["instructor.attempts"] for r in roots) == [1, 1, 2, 2, 2, 2, 2, 2]
