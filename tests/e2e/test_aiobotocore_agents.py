"""End to end: an unmodified async app using Agents for Amazon Bedrock through aiobotocore under
``posthog-instrument``, against the loopback bedrock-agent-runtime of the boto3 tests and the
PostHog stand-in. Its runs must be recorded exactly as boto3's are (the checks of
bedrock_agent_checks.py, shared with test_bedrock_agents.py).

aiobotocore pins botocore to a narrow range older than the main environment's: these tests run
in the environment of tests/requirements-vertex-watsonx.txt (a block of .ci/run) and skip in the
main one. Every scenario runs in one app process, once instrumented and once plainly (stdout must
not change); a second process, instrumented only, runs some of them in privacy mode."""

from __future__ import annotations

import pytest

pytest.importorskip("aiobotocore")

from tests.e2e import bedrock_agent_checks as check  # noqa: E402
from tests.e2e.bedrock_agent_checks import by_trace, environment, run_of  # noqa: E402
from tests.e2e.providers import run_both, run_scenarios  # noqa: E402
from tests.servers import FakePostHog  # noqa: E402
from tests.servers.bedrock_agent_server import FakeBedrockAgent  # noqa: E402

APP = "aiobotocore_agents_app"
SCENARIOS = (
    "agent",
    "inline_agent",
    "collaborators",
    "concurrent",
    "agent_closed",
    "agent_errors",
    "retrieve",
    "retrieve_error",
    "retrieve_and_generate",
    "retrieve_and_generate_stream",
    "other_calls",
)
# Spans: four traced runs of five (agent, inline agent, concurrent x2), the supervisor's six, a
# run closed early, two failed runs, two retrievals, two retrieve-and-generates.
SPAN_COUNT = 4 * 5 + 6 + 1 + 2 + 2 + 2


@pytest.fixture(scope="module")
def recorded():
    with FakeBedrockAgent() as server, FakePostHog() as posthog:
        result = run_both(APP, SCENARIOS, environment(server, posthog))
        spans = posthog.wait_for_spans(SPAN_COUNT)
        assert posthog.rejections == []
        assert len(spans) == SPAN_COUNT, [s["name"] for s in spans]
        assert server.errors == []
        return result.stdout, by_trace(spans)


def test_an_agent_run_is_a_trace_of_its_model_calls_tools_and_lookups(recorded):
    stdout, traces = recorded
    # The app still gets aiobotocore's async event stream, chunks and trace events unchanged.
    assert "agent AioEventStream session-0001 'It is sunny in Paris.' 10" in stdout
    check.assert_agent_run(run_of(traces, "session-0001"))


def test_an_inline_agent_is_named_after_its_agent_name(recorded):
    check.assert_inline_agent(*recorded)


def test_a_collaborator_agent_nests_its_own_trace(recorded):
    check.assert_collaborator(recorded[1])


def test_runs_interleaved_in_one_event_loop_are_kept_apart(recorded):
    assert "concurrent ['It is sunny in Paris.', 'It is sunny in Paris.']" in recorded[0]
    check.assert_concurrent_runs_apart(recorded[1])


def test_a_stream_closed_early_ends_the_run_with_what_the_app_read(recorded):
    stdout, traces = recorded
    assert "agent_closed It is sunny \n" in stdout
    (agent,) = run_of(traces, "session-0008")
    assert agent["status_code"] != "ERROR"
    assert agent["attributes"]["$ai_output_state"] == "It is sunny "


def test_agent_errors_carry_their_http_status(recorded):
    check.assert_agent_errors(*recorded)


def test_retrieve_is_a_retrieval_step(recorded):
    check.assert_retrieve(*recorded)


def test_retrieve_and_generate_records_the_query_the_answer_and_its_references(recorded):
    check.assert_retrieve_and_generate(*recorded)


def test_privacy_mode_keeps_structure_and_usage_and_drops_content():
    with FakeBedrockAgent() as server, FakePostHog() as posthog:
        env = environment(server, posthog, POSTHOG_PRIVACY_MODE="true")
        result = run_scenarios(APP, check.PRIVACY_SCENARIOS, env)
        assert result.returncode == 0, result.stderr
        check.assert_private(posthog.wait_for_spans(check.PRIVACY_SPAN_COUNT))
