"""End to end: an unmodified Agno app under ``posthog-instrument``, against the loopback OpenAI
and PostHog stand-ins.

Agent and team runs (``run``, ``arun``) are ``invoke_agent`` traces, tool calls ``execute_tool``
spans with arguments, results and errors (a team's delegation to a member included, the
member's run below the team), and each model call exactly one generation, the openai SDK's
(``OpenAIChat``); streamed runs (sync and async) are steps too. One launcher run with content, one in privacy mode and one plain run, all at
once.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.e2e.app_runs import Outcome, traced_plain_private
from tests.e2e.traces import assert_no_content, event_type, named, run_of, tree
from tests.servers.openai_wire import CACHED_TOKENS, COMPLETION_TOKENS, PROMPT_TOKENS

if importlib.util.find_spec("agno") is None:
    pytest.skip("agno is not installed", allow_module_level=True)

MODEL_REQUESTS = 15


@pytest.fixture(scope="module")
def outcomes() -> dict:
    return traced_plain_private("agno_app.py", AGNO_TELEMETRY="false")


@pytest.fixture(scope="module")
def traced(outcomes) -> Outcome:
    return outcomes["traced"]


def assert_generation(span: dict) -> None:
    attrs = span["attributes"]
    assert event_type(span) == "$ai_generation"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.usage.input_tokens"] == PROMPT_TOKENS
    assert attrs["gen_ai.usage.output_tokens"] == COMPLETION_TOKENS
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == CACHED_TOKENS


def agent_tree(agent: str, tool: str) -> list:
    return [
        (0, "$ai_trace", f"invoke_agent {agent}"),
        (1, "$ai_generation", "chat gpt-4o-mini"),
        (1, "$ai_span", f"execute_tool {tool}"),
        (1, "$ai_generation", "chat gpt-4o-mini"),
    ]


def test_the_app_is_unchanged(outcomes):
    traced, plain, private = outcomes["traced"], outcomes["plain"], outcomes["private"]
    for outcome in outcomes.values():
        assert outcome.run.returncode == 0, outcome.run.stderr
    assert traced.run.stdout == plain.run.stdout == private.run.stdout
    assert traced.run.stdout.endswith("done\n")
    assert traced.rejections == [] and private.rejections == []

    def sent(requests):
        return sorted(json.dumps([r["path"], r["json"]], sort_keys=True) for r in requests)

    assert sent(traced.requests) == sent(plain.requests)


def test_one_generation_per_model_call(traced):
    generations = [s for s in traced.spans if event_type(s) == "$ai_generation"]
    assert len(traced.requests) == MODEL_REQUESTS == len(generations)
    for generation in generations:
        assert_generation(generation)


def test_an_agent_run_with_a_tool(traced):
    spans = run_of(traced.spans, "agent")
    assert tree(spans) == agent_tree("Weather", "get_weather")
    (root,) = named(spans, "invoke_agent Weather")
    assert root["attributes"]["$ai_framework"] == "agno"
    assert root["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
    assert root["attributes"]["$ai_output_state"] == "Hello from fake OpenAI"
    (tool,) = named(spans, "execute_tool get_weather")
    assert json.loads(tool["attributes"]["gen_ai.tool.call.arguments"]) == {"city": "Paris"}
    assert tool["attributes"]["gen_ai.tool.call.result"] == "Sunny in Paris"
    assert tool["attributes"]["gen_ai.tool.call.id"] == "call_1"


def test_a_failing_tool_is_an_error_span(traced):
    spans = run_of(traced.spans, "failing")
    assert tree(spans) == agent_tree("Failing", "broken_lookup")
    (tool,) = named(spans, "execute_tool broken_lookup")
    assert tool["status_code"] == "ERROR"
    assert "gen_ai.tool.call.result" not in tool["attributes"]
    assert tool["attributes"]["error.type"] == "RuntimeError"  # the tool's own exception
    assert named(spans, "invoke_agent Failing")[0]["status_code"] != "ERROR"


def test_a_team_run_with_its_member(traced):
    spans = run_of(traced.spans, "team")
    assert tree(spans) == [
        (0, "$ai_trace", "invoke_agent Desk"),
        (1, "$ai_generation", "chat gpt-4o-mini"),
        (1, "$ai_span", "execute_tool delegate_task_to_member"),
        (1, "$ai_span", "invoke_agent Reporter"),
        (2, "$ai_generation", "chat gpt-4o-mini"),
        (1, "$ai_generation", "chat gpt-4o-mini"),
    ]
    (root,) = named(spans, "invoke_agent Desk")
    assert root["attributes"]["agno.run.type"] == "team"
    (delegation,) = named(spans, "execute_tool delegate_task_to_member")
    assert json.loads(delegation["attributes"]["gen_ai.tool.call.arguments"]) == {
        "member_id": "sample",
        "task": "sample",
    }


@pytest.mark.parametrize("label", ["stream", "astream"])
def test_a_streamed_run_is_one_step_while_it_is_read(traced, label):
    spans = run_of(traced.spans, label)
    assert tree(spans) == agent_tree("Weather", "get_weather")
    (root,) = named(spans, "invoke_agent Weather")
    assert root["attributes"]["$ai_output_state"] == "Hello from fake OpenAI"  # put together from the streamed events
    for generation in named(spans, "chat gpt-4o-mini"):
        assert generation["attributes"]["$ai_stream"] is True
        assert generation["end_ns"] <= root["end_ns"]


def test_concurrent_async_runs_are_separate_traces(traced):
    runs = [run_of(traced.spans, label) for label in ("async-a", "async-b")]
    assert runs[0][0]["trace_id"] != runs[1][0]["trace_id"]
    for spans in runs:
        assert tree(spans) == agent_tree("Weather", "get_weather")


def test_privacy_mode_keeps_the_tree_without_content(outcomes):
    private = outcomes["private"]
    assert len([s for s in private.spans if event_type(s) == "$ai_generation"]) == MODEL_REQUESTS
    roots = [s for s in private.spans if s["parent_span_id"] is None]
    assert (
        sorted(r["name"] for r in roots) == ["invoke_agent Desk", "invoke_agent Failing"] + ["invoke_agent Weather"] * 5
    )
    assert_no_content(private.spans)
