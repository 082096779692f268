"""End to end: an unmodified boto3 app using Agents for Amazon Bedrock under ``posthog-instrument``,
against a loopback bedrock-agent-runtime (JSON and the binary AWS event-stream) and the PostHog
stand-in. One app run (instrumented, then plainly: stdout must not change) does every scenario."""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.providers import app_env, run_both
from tests.e2e.traces import event_type, posthog_input, posthog_output, tree
from tests.servers import FakePostHog
from tests.servers.bedrock_agent_server import FakeBedrockAgent

SCENARIOS = (
    "agent",
    "agent_without_trace",
    "collaborators",
    "concurrent",
    "agent_errors",
    "retrieve",
    "retrieve_error",
    "retrieve_and_generate",
    "retrieve_and_generate_stream",
    "other_calls",
)


def environment(server, posthog, **extra) -> dict:
    return app_env(
        posthog,
        "AWS_",
        AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME=server.endpoint_url,
        AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY="fake-secret",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_MAX_ATTEMPTS="1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        **extra,
    )


@pytest.fixture(scope="module")
def recorded():
    with FakeBedrockAgent() as server, FakePostHog() as posthog:
        result = run_both("bedrock_agents_app", SCENARIOS, environment(server, posthog))
        return result.stdout, posthog.spans, posthog.rejections


def test_dump(recorded):
    stdout, spans, rejections = recorded
    print(stdout)
    by_trace = {}
    for s in spans:
        by_trace.setdefault(s["trace_id"], []).append(s)
    for t in by_trace.values():
        for depth, kind, name in tree(t):
            print("  " * depth, kind, name)
    print(len(spans), rejections)
    assert 0
