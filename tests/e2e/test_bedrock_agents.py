"""End to end: an unmodified boto3 app using Agents for Amazon Bedrock under ``posthog-instrument``,
against a loopback bedrock-agent-runtime (JSON and the binary AWS event-stream) and the PostHog
stand-in. One app run (instrumented, then plainly: stdout must not change) does every scenario;
a second, instrumented only, does some of them again in privacy mode."""

from __future__ import annotations

import pytest

from tests.e2e import bedrock_agent_checks as check
from tests.e2e.bedrock_agent_checks import ANSWER, by_trace, environment, run_of, state
from tests.e2e.providers import run_both, run_scenarios
from tests.servers import FakePostHog
from tests.servers.bedrock_agent_server import FakeBedrockAgent

SCENARIOS = (
    "agent",
    "agent_without_trace",
    "inline_agent",
    "agent_return_control",
    "collaborators",
    "concurrent",
    "agent_errors",
    "retrieve",
    "retrieve_error",
    "retrieve_and_generate",
    "retrieve_and_generate_stream",
    "other_calls",
)
# Spans: four traced runs of five (agent, inline agent, concurrent x2), the supervisor's six, two
# runs without a trace (one handing control back), two failed runs, two retrievals, two
# retrieve-and-generates.
SPAN_COUNT = 4 * 5 + 6 + 2 + 2 + 2 + 2


@pytest.fixture(scope="module")
def recorded():
    with FakeBedrockAgent() as server, FakePostHog() as posthog:
        result = run_both("bedrock_agents_app", SCENARIOS, environment(server, posthog))
        spans = posthog.wait_for_spans(SPAN_COUNT)
        assert posthog.rejections == []
        assert len(spans) == SPAN_COUNT, [s["name"] for s in spans]
        assert server.errors == []
        return result.stdout, by_trace(spans)


def test_an_agent_run_is_a_trace_of_its_model_calls_tools_and_lookups(recorded):
    stdout, traces = recorded
    # The app still gets botocore's event stream, chunks and trace events unchanged.
    assert "agent EventStream session-0001 'It is sunny in Paris.' 10" in stdout
    check.assert_agent_run(run_of(traces, "session-0001"))


def test_a_run_without_its_trace_is_one_step(recorded):
    stdout, traces = recorded
    assert "agent_without_trace 'It is sunny in Paris.' ['chunk', 'chunk']" in stdout
    (agent,) = run_of(traces, "session-0002")
    assert agent["attributes"]["$ai_output_state"] == ANSWER
    assert "$ai_time_to_first_token" in agent["attributes"]


def test_an_inline_agent_is_named_after_its_agent_name(recorded):
    check.assert_inline_agent(*recorded)


def test_control_handed_back_is_the_runs_output(recorded):
    stdout, traces = recorded
    assert "agent_return_control inv-1 get_weather Paris" in stdout
    (agent,) = run_of(traces, "session-0007")
    assert state(agent, "$ai_output_state") == [
        {"type": "tool_call", "name": "get_weather", "arguments": {"city": "Paris"}, "id": "inv-1"}
    ]


def test_a_collaborator_agent_nests_its_own_trace(recorded):
    check.assert_collaborator(recorded[1])


def test_concurrent_runs_are_kept_apart(recorded):
    check.assert_concurrent_runs_apart(recorded[1])


def test_agent_errors_carry_their_http_status(recorded):
    check.assert_agent_errors(*recorded)


def test_retrieve_is_a_retrieval_step(recorded):
    check.assert_retrieve(*recorded)


def test_retrieve_and_generate_records_the_query_the_answer_and_its_references(recorded):
    check.assert_retrieve_and_generate(*recorded)


def test_privacy_mode_keeps_structure_and_usage_and_drops_content():
    with FakeBedrockAgent() as server, FakePostHog() as posthog:
        env = environment(server, posthog, POSTHOG_PRIVACY_MODE="true")
        result = run_scenarios("bedrock_agents_app", check.PRIVACY_SCENARIOS, env)
        assert result.returncode == 0, result.stderr
        check.assert_private(posthog.wait_for_spans(check.PRIVACY_SPAN_COUNT))
