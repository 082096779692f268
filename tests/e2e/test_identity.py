"""End to end: who an LLM call belongs to, outside web requests.

``apps/identity_app.py`` runs unmodified under ``posthog-instrument`` and says who its calls
belong to in each way the identity feature supports: the optional ``context()`` API (nested,
async tasks, threads, decorators, trace names), PostHog's own SDK context and feature flags,
W3C baggage, OpenAI ``user`` / ``safety_identifier``, ``POSTHOG_DISTINCT_ID``, or nothing.
Every call's prompt says ``case=<name>``; the tests find each call's span by it and assert on
the values PostHog's stand-in decoded.

The runs are started together once per module (each with its own PostHog stand-in) because
starting an instrumented interpreter is the slow part.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

import pytest

from tests.conftest import APPS, LAUNCHER, clean_env
from tests.servers import FakeOpenAI, FakePostHog
from tests.e2e.traces import message_text

STATIC_PROPERTIES = {"env": "test", "team": "ai", "nested": {"k": 1}}
STATIC_GROUPS = {"organization": "org-1"}
FLAGS = {"prompt-v2": {"sdk-user": "concise", "someone-else": "verbose"}, "beta-model": True, "new-flow": "treatment"}

RUNS = {
    # Every scenario; no POSTHOG_DISTINCT_ID, so a call nobody names is anonymous.
    "main": (
        [],
        dict(
            POSTHOG_AI_PROPERTIES=json.dumps(STATIC_PROPERTIES),
            POSTHOG_AI_GROUPS=json.dumps(STATIC_GROUPS),
            OTEL_SERVICE_NAME="identity-svc",
            OTEL_RESOURCE_ATTRIBUTES="service.version=1.2.3,deployment.environment=staging",
        ),
    ),
    # A script run for one person.
    "env_user": (
        ["anonymous", "openai_user", "safety_identifier", "explicit"],
        dict(
            POSTHOG_DISTINCT_ID="env-user",
        ),
    ),
    # The request's end user switched off as a source of the person.
    "switch_off": (
        ["anonymous", "openai_user", "safety_identifier", "explicit", "otel_baggage"],
        dict(
            POSTHOG_DISTINCT_ID="env-user",
            POSTHOG_AI_USER_FROM_REQUEST="false",
        ),
    ),
    # The same app without posthog-instrument: the optional API must change nothing.
    "uninstrumented": ([], {}),
}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    spans: list = field(default_factory=list)
    sdk_requests: list = field(default_factory=list)

    def case(self, name: str) -> dict:
        found = [s for s in self.spans if case_of(s) == name]
        assert len(found) == 1, (name, sorted(filter(None, (case_of(s) for s in self.spans))))
        return found[0]

    def attrs(self, name: str) -> dict:
        return self.case(name)["attributes"]

    def named(self, span_name: str) -> list:
        return [s for s in self.spans if s["name"] == span_name]


def case_of(span: dict):
    messages = span["attributes"].get("$ai_input")
    if not messages:
        return None
    text = message_text(messages[-1])
    return text[len("case=") :] if text.startswith("case=") else None


@pytest.fixture(scope="module")
def runs():
    """Start every run at once, wait for all, and keep what each PostHog stand-in received."""
    with FakeOpenAI() as openai_server:
        posthogs = {name: FakePostHog().start() for name in RUNS}
        started = {}
        try:
            for name, (scenarios, overrides) in RUNS.items():
                posthogs[name].feature_flags = FLAGS
                env = clean_env(
                    OPENAI_BASE_URL=openai_server.base_url,
                    OPENAI_API_KEY="sk-test-secret-key",
                    POSTHOG_API_KEY="phc_test_project_token",
                    POSTHOG_HOST=posthogs[name].host,
                    POSTHOG_EXPORT_INTERVAL="0.05",
                    POSTHOG_FLUSH_TIMEOUT="20",
                    **overrides,
                )
                out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
                launcher = [sys.executable] if name == "uninstrumented" else [LAUNCHER, "python"]
                process = subprocess.Popen(
                    [*launcher, str(APPS / "identity_app.py"), *scenarios],
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
                results[name] = Run(
                    returncode, out.read(), err.read(), posthogs[name].spans, posthogs[name].sdk_requests
                )
                assert posthogs[name].rejections == []
            yield results
        finally:
            for process, _, _ in started.values():
                if process.poll() is None:
                    process.kill()
            for server in posthogs.values():
                server.stop()


@pytest.fixture(scope="module")
def main(runs) -> Run:
    run = runs["main"]
    assert run.returncode == 0, run.stderr
    assert run.stdout.rstrip().endswith("done")
    return run


def test_the_app_behaves_the_same_without_instrumentation(main, runs):
    plain = runs["uninstrumented"]
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == main.stdout
    assert plain.spans == []


# -- 7. anonymous, 6. POSTHOG_DISTINCT_ID, 5. the request's end user ---------------------------


def test_a_call_nobody_names_is_anonymous(main):
    attrs = main.attrs("anonymous")
    assert attrs["$process_person_profile"] is False
    assert "posthog.distinct_id" not in attrs
    assert "$session_id" not in attrs


def test_openai_user_and_safety_identifier_name_the_person(main):
    assert main.attrs("openai_user")["posthog.distinct_id"] == "openai-user"
    assert main.attrs("safety_identifier")["posthog.distinct_id"] == "safety-user"
    for case in ("openai_user", "safety_identifier"):
        attrs = main.attrs(case)
        assert "$process_person_profile" not in attrs
        assert "posthog_autoinstrument.end_user_id" not in attrs  # internal key never exported


def test_posthog_distinct_id_names_every_otherwise_unnamed_call(runs):
    run = runs["env_user"]
    assert run.returncode == 0, run.stderr
    assert run.attrs("anonymous")["posthog.distinct_id"] == "env-user"
    assert "$process_person_profile" not in run.attrs("anonymous")
    # The request's end user beats the process-wide person; context() beats both.
    assert run.attrs("openai_user")["posthog.distinct_id"] == "openai-user"
    assert run.attrs("safety_identifier")["posthog.distinct_id"] == "safety-user"
    assert run.attrs("explicit")["posthog.distinct_id"] == "ctx-user"


def test_user_from_request_can_be_switched_off(runs):
    run = runs["switch_off"]
    assert run.returncode == 0, run.stderr
    assert run.attrs("openai_user")["posthog.distinct_id"] == "env-user"
    assert run.attrs("safety_identifier")["posthog.distinct_id"] == "env-user"
    assert run.attrs("anonymous")["posthog.distinct_id"] == "env-user"
    # Only that source is off: context() and baggage still name the person.
    assert run.attrs("explicit")["posthog.distinct_id"] == "ctx-user"
    assert run.attrs("baggage")["posthog.distinct_id"] == "bag-user"


# -- 1. the optional API ------------------------------------------------------------------------


def test_context_sets_person_session_properties_groups_and_flags(main):
    attrs = main.attrs("explicit")
    assert attrs["posthog.distinct_id"] == "ctx-user"  # beats the OpenAI `user` in the same call
    assert attrs["$session_id"] == "ctx-session"
    assert attrs["plan"] == "pro"
    assert attrs["seats"] == 3
    assert json.loads(attrs["tags"]) == ["a", "b"]
    assert attrs["env"] == "ctx-env"  # the call's own property beats the static one
    assert attrs["team"] == "ai"  # static properties still apply
    assert attrs["$groups"] == {"organization": "org-1", "company": "acme"}
    assert attrs["$feature/checkout"] == "v2"
    assert "$process_person_profile" not in attrs


def test_a_session_without_a_person_stays_anonymous(main):
    attrs = main.attrs("session_only")
    assert attrs["$session_id"] == "only-session"
    assert attrs["$process_person_profile"] is False
    assert "posthog.distinct_id" not in attrs


def test_nested_contexts_inner_wins_and_merges_then_outer_is_restored(main):
    before, inner, after = (main.attrs(c) for c in ("nested_outer_before", "nested_inner", "nested_outer_after"))
    assert before["posthog.distinct_id"] == after["posthog.distinct_id"] == "outer"
    assert inner["posthog.distinct_id"] == "inner"
    assert inner["$session_id"] == before["$session_id"] == after["$session_id"] == "outer-session"  # inherited
    assert (inner["a"], inner["b"], inner["shared"]) == (1, 2, "inner")
    assert inner["$groups"] == {"organization": "org-1", "company": "acme", "project": "p1"}
    assert (after["a"], after["shared"]) == (1, "outer")
    assert "b" not in after
    assert after["$groups"] == {"organization": "org-1", "company": "acme"}
    gone = main.attrs("nested_after_all")
    assert gone["$process_person_profile"] is False
    assert not {"a", "shared", "$session_id", "posthog.distinct_id"} & set(gone)


def test_concurrent_async_tasks_keep_their_own_person(main):
    for i in range(4):
        for step in ("a", "b"):
            attrs = main.attrs(f"task_{i}_{step}")
            assert attrs["posthog.distinct_id"] == f"task-{i}", (i, step)
            assert attrs["$session_id"] == f"task-session-{i}"
    assert main.attrs("after_tasks")["$process_person_profile"] is False


def test_threads_keep_their_own_person(main):
    for i in range(4):
        assert main.attrs(f"thread_{i}")["posthog.distinct_id"] == f"thread-{i}"
    assert main.attrs("after_threads")["$process_person_profile"] is False


def test_decorator_on_sync_and_async_functions(main):
    assert "decorators decorated_sync decorated_async True" in main.stdout  # functools.wraps, still a coroutine fn
    for n in (1, 2):
        assert main.attrs(f"deco_sync_{n}")["posthog.distinct_id"] == "deco-sync"
        async_attrs = main.attrs(f"deco_async_{n}")
        assert async_attrs["posthog.distinct_id"] == "deco-async"
        assert async_attrs["$session_id"] == "deco-async-session"
    # Each call of a decorated function with a trace name is its own trace.
    roots = main.named("deco-sync-trace")
    assert len(roots) == 2
    assert {r["trace_id"] for r in roots} == {
        main.case("deco_sync_1")["trace_id"],
        main.case("deco_sync_2")["trace_id"],
    }
    for n, root in zip((1, 2), sorted(roots, key=lambda r: r["start_ns"])):
        assert main.case(f"deco_sync_{n}")["parent_span_id"] == root["span_id"]


def test_decorator_on_generator_functions(main):
    assert main.attrs("deco_generator").get("posthog.distinct_id") == "deco-generator"
    assert main.attrs("deco_async_generator").get("posthog.distinct_id") == "deco-async-generator"


def test_one_context_instance_entered_by_two_threads_is_left_cleanly(main):
    for case in ("shared_after_a", "shared_after_b"):
        assert "feature" not in main.attrs(case), case


def test_trace_name_makes_a_root_span_with_the_generations_as_children(main):
    (root,) = main.named("summarize-ticket")
    first, second = main.case("trace_first"), main.case("trace_second")
    assert root["parent_span_id"] is None  # PostHog promotes a root $ai_span to $ai_trace
    assert root["attributes"]["gen_ai.operation.name"] == "invoke_workflow"
    assert root["attributes"]["gen_ai.workflow.name"] == "summarize-ticket"
    assert root["attributes"]["posthog.distinct_id"] == "trace-user"  # the trace belongs to the person too
    assert root["status_code"] == "UNSET"
    for generation in (first, second):
        assert generation["trace_id"] == root["trace_id"]
        assert generation["parent_span_id"] == root["span_id"]
        assert generation["attributes"]["posthog.distinct_id"] == "trace-user"
        assert root["start_ns"] <= generation["start_ns"] and generation["end_ns"] <= root["end_ns"]
    assert first["span_id"] != second["span_id"]


def test_trace_that_fails_is_recorded_as_an_error_and_the_app_sees_its_exception(main):
    (root,) = main.named("failing-work")
    assert 'trace_name saw ValueError("the app\'s own failure")' in main.stdout
    assert root["status_code"] == "ERROR"
    assert root["parent_span_id"] is None
    assert main.case("trace_failing")["parent_span_id"] == root["span_id"]
    assert [e["attributes"].get("exception.type") for e in root["events"]] == ["ValueError"]


def test_without_a_trace_name_the_calling_function_names_the_call(main):
    attrs = main.attrs("code_function")
    assert attrs["code.function.name"] == "summarize_without_trace_name"
    assert attrs["code.file.path"].endswith("identity_app.py")
    assert main.case("code_function")["parent_span_id"] is None


# -- 2. PostHog's own SDK context, and experiments ----------------------------------------------


def test_posthog_sdk_context_names_person_session_and_tags(main):
    attrs = main.attrs("sdk")
    assert attrs["posthog.distinct_id"] == "sdk-user"
    assert attrs["$session_id"] == "sdk-session"
    assert attrs["tier"] == "gold"
    gone = main.attrs("after_sdk_context")
    assert gone["$process_person_profile"] is False
    assert "tier" not in gone and "$session_id" not in gone


def test_feature_flag_variants_evaluated_for_the_person_are_attached(main):
    assert "posthog_sdk flags concise True verbose" in main.stdout  # the app got the stand-in's answers
    asked = [r["json"]["distinct_id"] for r in main.sdk_requests if r["path"].startswith("/flags")]
    assert asked.count("sdk-user") == 2 and "someone-else" in asked
    attrs = main.attrs("sdk")
    # Evaluated for this person: attached. The later evaluation for someone else does not leak in.
    assert attrs["$feature/prompt-v2"] == "concise"
    assert attrs["$feature/beta-model"] is True


def test_context_beats_posthog_sdk_context_and_flags_follow_the_person(main):
    attrs = main.attrs("ctx_over_sdk")
    assert attrs["posthog.distinct_id"] == "ctx-over-sdk"
    assert attrs["$session_id"] == "sdk-session"  # the SDK still supplies what context() left open
    assert attrs["tier"] == "gold"
    # Flags were evaluated for sdk-user, not for this person.
    assert not [k for k in attrs if k.startswith("$feature/")]


def test_feature_flag_variants_from_evaluate_flags_are_attached(main):
    assert "posthog_sdk evaluate_flags treatment" in main.stdout
    attrs = main.attrs("sdk_evaluate_flags")
    assert attrs["posthog.distinct_id"] == "sdk-new-api"
    assert attrs.get("$feature/new-flow") == "treatment"


# -- 4. W3C baggage ------------------------------------------------------------------------------


def test_baggage_in_the_otel_context_names_person_and_session(main):
    attrs = main.attrs("baggage")
    assert attrs["posthog.distinct_id"] == "bag-user"  # beats the OpenAI `user` of the same call
    assert attrs["$session_id"] == "bag-session"
    assert "other" not in attrs  # unrelated baggage entries are not event properties
    over = main.attrs("ctx_over_baggage")
    assert over["posthog.distinct_id"] == "ctx-over-bag"
    assert over["$session_id"] == "bag-session"


# -- conversation id, static properties and groups, resource -------------------------------------


def test_conversation_id_becomes_ai_session_id(main):
    attrs = main.attrs("conversation")
    assert attrs["gen_ai.conversation.id"] == "conv_abc123"
    assert attrs["$ai_session_id"] == "conv_abc123"
    assert "$session_id" not in attrs  # the replay session is a different thing


def test_static_properties_groups_and_resource_on_every_event(main):
    assert len(main.spans) >= 40
    for span in main.spans:
        attrs = span["attributes"]
        assert attrs["team"] == "ai", span["name"]
        assert json.loads(attrs["nested"]) == {"k": 1}
        assert attrs["$groups"].get("organization") == "org-1"
        assert span["resource"]["service.name"] == "identity-svc"
        assert span["resource"]["service.version"] == "1.2.3"
        assert span["resource"]["deployment.environment"] == "staging"
