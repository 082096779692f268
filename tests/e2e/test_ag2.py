"""End to end: an unmodified AG2 app under ``posthog-instrument``, against the loopback OpenAI
and PostHog stand-ins.

The app (``apps/ag2_app.py``) runs a two-agent chat with a registered tool (the user proxy
executes it), an async chat (``a_initiate_chat``, whose model call AG2 makes in an executor
thread), a round-robin ``GroupChat`` under a ``GroupChatManager``, two chats in two threads at
once and a chat whose model call fails. Each model call goes through AG2's ``OpenAIWrapper``
into the openai SDK: the SDK's request is the one generation, AG2's model call a token-less
step above it.

Three processes run at once: instrumented, plain (stdout must be identical) and instrumented in
privacy mode. AG2 runs in the agent frameworks' environment (tests/requirements-agents.txt, see
.ci/run) and these tests skip elsewhere.
"""

from __future__ import annotations

import importlib.util
import re

import pytest

from tests.e2e.app_runs import Outcome, traced_plain_private
from tests.e2e.traces import assert_no_content, event_type, traces_by_root, tree, successful_generations
from tests.servers.openai_wire import CACHED_TOKENS, COMPLETION_TOKENS, PROMPT_TOKENS, TOOL_CALL_ID

if importlib.util.find_spec("autogen") is None or importlib.util.find_spec("autogen.agentchat") is None:
    pytest.skip("ag2 is not installed (tests/requirements-agents.txt)", allow_module_level=True)

GEN = "$ai_generation"
SPAN = "$ai_span"
TRACE = "$ai_trace"
CHAT = "chat gpt-4o-mini"


def tool_chat(agent: str) -> list:
    return [
        (0, TRACE, f"invoke_workflow user -> {agent}"),
        (1, SPAN, f"invoke_agent {agent}"),
        (2, SPAN, CHAT),
        (3, GEN, CHAT),
        (1, SPAN, "invoke_agent user"),
        (2, SPAN, "execute_tool get_weather"),
        (1, SPAN, f"invoke_agent {agent}"),
        (2, SPAN, CHAT),
        (3, GEN, CHAT),
    ]


# (depth, event type, name) for each chat's trace, keyed by its root's name.
EXPECTED_TREES = {
    "invoke_workflow user -> Weather": tool_chat("Weather"),
    "invoke_workflow user -> WeatherA": tool_chat("WeatherA"),
    "invoke_workflow user -> WeatherB": tool_chat("WeatherB"),
    "invoke_workflow asker -> Poet": [
        (0, TRACE, "invoke_workflow asker -> Poet"),
        (1, SPAN, "invoke_agent Poet"),
        (2, SPAN, CHAT),
        (3, GEN, CHAT),
    ],
    "invoke_workflow boss -> Manager": [
        (0, TRACE, "invoke_workflow boss -> Manager"),
        (1, SPAN, "invoke_workflow Manager"),
        (2, SPAN, "invoke_agent Writer"),
        (3, SPAN, CHAT),
        (4, GEN, CHAT),
        (2, SPAN, "invoke_agent Reviewer"),
        (3, SPAN, CHAT),
        (4, GEN, CHAT),
    ],
    "invoke_workflow asker -> Broken": [
        (0, TRACE, "invoke_workflow asker -> Broken"),
        (1, SPAN, "invoke_agent Broken"),
        (2, SPAN, "chat error-400"),
        (3, GEN, "chat error-400"),
    ],
}


@pytest.fixture(scope="module")
def outcomes() -> dict:
    return traced_plain_private("ag2_app.py", base_url_variable="AG2_APP_BASE_URL")


def without_run_ids(output: str) -> list:
    """The output's lines, without what differs from run to run anyway: AG2 prints each chat's
    random run id ("TERMINATING RUN (<uuid>)"), and the two threads' console output interleaves
    in any order (hence sorted)."""
    return sorted(re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", output).splitlines())


def chat_requests(outcome: Outcome) -> list:
    return [r for r in outcome.requests if r["path"].endswith("/chat/completions")]


# -- the app is unchanged ------------------------------------------------------------------------


def test_output_is_unchanged(outcomes):
    plain = outcomes["plain"].run
    assert plain.returncode == 0, plain.stderr
    assert "error BadRequestError" in plain.stdout and "tool" in plain.stdout
    for name in ("traced", "private"):
        run = outcomes[name].run
        assert run.returncode == 0, run.stderr
        assert without_run_ids(run.stdout) == without_run_ids(plain.stdout)
        assert outcomes[name].rejections == []
    # The same model requests, with or without us.
    assert len(chat_requests(outcomes["traced"])) == len(chat_requests(outcomes["plain"]))


# -- the trees -----------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome_name", ["traced", "private"])
def test_each_chat_is_one_trace_with_its_steps(outcomes, outcome_name):
    found = traces_by_root(outcomes[outcome_name].spans)
    assert set(found) == set(EXPECTED_TREES)
    for root, expected in EXPECTED_TREES.items():
        assert tree(found[root]) == expected, root
    for span in outcomes[outcome_name].spans:
        assert span["attributes"]["$ai_framework"] == "ag2", span["name"]


def test_one_generation_per_model_call_with_the_servers_tokens(outcomes):
    outcome = outcomes["traced"]
    generations = [s for s in outcome.spans if event_type(s) == GEN]
    assert len(generations) == len(chat_requests(outcome)) == 10
    by_id = {s["span_id"]: s for s in outcome.spans}
    for generation in generations:
        attrs = generation["attributes"]
        assert attrs["gen_ai.provider.name"] == "openai"
        if attrs["gen_ai.request.model"] == "error-400":
            assert generation["status_code"] == "ERROR" and attrs["error.type"] == "openai.BadRequestError"
            continue
        assert attrs["gen_ai.usage.input_tokens"] == PROMPT_TOKENS
        assert attrs["gen_ai.usage.output_tokens"] == COMPLETION_TOKENS
        assert attrs["gen_ai.usage.cache_read.input_tokens"] == CACHED_TOKENS
        # AG2's model call above it: a step without tokens.
        step = by_id[generation["parent_span_id"]]
        assert event_type(step) == SPAN and step["name"] == generation["name"]
        assert not any(key.startswith("gen_ai.usage.") for key in step["attributes"]), step["attributes"]


def test_chats_turns_and_tools_carry_their_inputs_and_outputs(outcomes):
    found = traces_by_root(outcomes["traced"].spans)
    chat = found["invoke_workflow user -> Weather"]
    root = next(s for s in chat if s["parent_span_id"] is None)
    assert root["attributes"]["$ai_input_state"] == "[tool] What is the weather in Paris?"
    assert root["attributes"]["$ai_output_state"] == "Hello from fake OpenAI"
    (tool,) = [s for s in chat if s["name"] == "execute_tool get_weather"]
    attrs = tool["attributes"]
    assert attrs["gen_ai.tool.call.arguments"] == '{"city":"Paris"}'
    assert attrs["gen_ai.tool.call.result"] == "Sunny in Paris"
    assert attrs["gen_ai.tool.call.id"] == TOOL_CALL_ID
    first, second = sorted((s for s in chat if event_type(s) == GEN), key=lambda s: s["start_ns"])
    assert first["attributes"]["$ai_output_choices"][0]["content"][0]["type"] == "function"
    assert first["end_ns"] <= tool["start_ns"] and tool["end_ns"] <= second["start_ns"]
    turns = [s for s in chat if s["name"] == "invoke_agent Weather"]
    assert [t["attributes"]["gen_ai.agent.name"] for t in turns] == ["Weather", "Weather"]
    assert "Hello from fake OpenAI" in {t["attributes"].get("$ai_output_state") for t in turns}

    group = found["invoke_workflow boss -> Manager"]
    writer = next(s for s in group if s["name"] == "invoke_agent Writer")
    assert writer["attributes"]["$ai_output_state"] == "A haiku"
    poem = found["invoke_workflow asker -> Poet"]
    assert next(s for s in poem if s["parent_span_id"] is None)["attributes"]["$ai_output_state"] == "Roses are red"


def test_concurrent_chats_are_separate_traces(outcomes):
    found = traces_by_root(outcomes["traced"].spans)
    first, second = found["invoke_workflow user -> WeatherA"], found["invoke_workflow user -> WeatherB"]
    assert {s["trace_id"] for s in first}.isdisjoint({s["trace_id"] for s in second})
    for spans, label in ((first, "[thread-a]"), (second, "[thread-b]")):
        for generation in (s for s in spans if event_type(s) == GEN):
            assert any(label in str(m["content"]) for m in generation["attributes"]["$ai_input"])


def test_a_failed_model_call_fails_its_chat(outcomes):
    failed = traces_by_root(outcomes["traced"].spans)["invoke_workflow asker -> Broken"]
    assert all(s["status_code"] == "ERROR" for s in failed)


def test_privacy_mode_keeps_the_tree_and_tokens_but_no_content(outcomes):
    spans = outcomes["private"].spans
    assert_no_content(spans)
    generations = successful_generations(spans)
    assert generations and all(g["attributes"]["gen_ai.usage.input_tokens"] == PROMPT_TOKENS for g in generations)
