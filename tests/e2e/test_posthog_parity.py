"""Parity with PostHog's own SDK: what PostHog's LLM analytics shows for the same calls.

One app (``apps/parity_app.py``) makes the same calls twice, in separate processes: through
the ``posthog`` SDK's wrappers, uninstrumented, their ``/batch/`` events captured by the
PostHog stand-in; and with the plain SDKs under ``posthog-instrument``, our spans turned into
events by the model of PostHog's ingestion (``tests/posthog_ingest.py``). Both sides then go
through the steps of PostHog's AI pipeline that every event takes (``process_ai_event``).

For each scenario, property by property: names, shapes and values match, or ours is strictly
richer. The intentional differences (also in the README, "What you will see in PostHog"):

- ``$ai_model``: the model that served the call (``gpt-4o-mini-2024-08-06``), where the SDK
  names the one asked for (``gpt-4o-mini``); PostHog prices both the same.
- Anthropic ``$ai_input_tokens`` include cache reads and writes (the conventions' count) and
  ``$ai_cache_reporting_exclusive`` is false, so PostHog subtracts them: the same cost.
- ``$ai_stop_reason``: the conventions' names (``stop``, ``tool_call``, ``length``) where the
  SDK passes the provider's (``end_turn``, ``tool_calls``, ``STOP``, ``completed``).
- ``$ai_tools`` of Anthropic calls: OpenAI's function shape, the same for every provider;
  the SDK passes Anthropic's ``{name, description, input_schema}``.
- ``$ai_base_url`` of Gemini calls: the URL the client used; the SDK always names the public
  Gemini host.
- ``$ai_error``: prefixed with the exception's type; ``$ai_lib`` names this package.
- Tool-call arguments in ``$ai_output_choices`` are objects (the OpenAI SDK's are JSON text,
  which PostHog's trace view parses into the same object).
- Richer: ``$ai_time_to_first_token`` on streams, ``$ai_span_id``, W3C trace ids,
  ``$ai_stream`` on every generation (the Gemini wrapper sends none), and Gemini's parameters
  in ``$ai_model_parameters`` (the Gemini wrapper sends ``{}``).
"""

from __future__ import annotations

import json
import re
import sys

import pytest

from tests.conftest import APPS, LAUNCHER, clean_env, run
from tests.posthog_ingest import events_from_spans, process_ai_event
from tests.servers import FakeOpenAI, FakePostHog
from tests.servers.anthropic_server import FakeAnthropic
from tests.servers.gemini_server import FakeGemini

SCENARIOS = ["openai_chat", "openai_stream", "openai_tools", "openai_responses", "openai_embeddings", "openai_error",
             "anthropic_messages", "anthropic_stream", "anthropic_tools", "gemini_generate", "gemini_stream"]
STREAMS = {"openai_stream", "anthropic_stream", "gemini_stream"}
USER = "parity-user"


@pytest.fixture(scope="module")
def pairs() -> dict:
    """scenario -> (the SDK's event, ours), both as PostHog stores them."""
    with FakeOpenAI() as fake_openai, FakeAnthropic() as fake_anthropic, FakeGemini() as fake_gemini, \
            FakePostHog() as posthog:
        env = {k: v for k, v in clean_env().items() if not k.startswith(("ANTHROPIC_", "GOOGLE_", "GEMINI_"))}
        env.update(OPENAI_BASE_URL=fake_openai.base_url, OPENAI_API_KEY="sk-test-key",
                   ANTHROPIC_BASE_URL=fake_anthropic.base_url, ANTHROPIC_API_KEY="sk-ant-test-key",
                   GEMINI_API_KEY="gemini-test-key", GOOGLE_GEMINI_BASE_URL=fake_gemini.base_url,
                   POSTHOG_HOST=posthog.host)
        script = str(APPS / "parity_app.py")
        wrapped = run([sys.executable, script], {**env, "PARITY_MODE": "wrapper"})
        assert wrapped.returncode == 0, wrapped.stderr
        theirs = [process_ai_event(event) for request in posthog.sdk_requests if request["path"].startswith("/batch")
                  for event in request["json"]["batch"]]
        plain = run([LAUNCHER, "python", script], {**env, "PARITY_MODE": "plain", "POSTHOG_API_KEY": "phc_test_project_token",
                                                   "POSTHOG_DISTINCT_ID": USER, "POSTHOG_EXPORT_INTERVAL": "0.05"})
        assert plain.returncode == 0, plain.stderr
        assert plain.stdout == wrapped.stdout
        spans = sorted(posthog.wait_for_spans(len(SCENARIOS)), key=lambda s: s["start_ns"])
        assert posthog.rejections == []
        ours = events_from_spans(spans)
    assert len(theirs) == len(ours) == len(SCENARIOS), ([e["event"] for e in theirs], [e["event"] for e in ours])
    return dict(zip(SCENARIOS, zip(theirs, ours)))


def props(pairs, scenario) -> tuple:
    theirs, ours = pairs[scenario]
    return theirs["properties"], ours["properties"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_event_person_model_and_provider(pairs, scenario):
    theirs, ours = pairs[scenario]
    assert ours["event"] == theirs["event"]
    assert ours["distinct_id"] == theirs["distinct_id"] == USER
    sdk, us = theirs["properties"], ours["properties"]
    assert us["$ai_provider"] == sdk["$ai_provider"]
    # The served model: the requested one, or a dated snapshot of it.
    assert us["$ai_model"] == sdk["$ai_model"] or us["$ai_model"].startswith(sdk["$ai_model"] + "-")


def _arguments_parsed(messages):
    """Tool-call arguments as objects: the OpenAI SDK's are JSON text, ours the parsed object
    (PostHog's trace view parses the text: utils.ts, parseOpenAIToolCalls)."""
    if isinstance(messages, list):
        return [_arguments_parsed(m) for m in messages]
    if isinstance(messages, dict):
        parsed = {k: _arguments_parsed(v) for k, v in messages.items()}
        if isinstance(parsed.get("arguments"), str):
            parsed["arguments"] = json.loads(parsed["arguments"])
        return parsed
    return messages


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_input_and_output(pairs, scenario):
    sdk, us = props(pairs, scenario)
    assert us["$ai_input"] == sdk["$ai_input"]
    if sdk.get("$ai_output_choices"):
        assert _arguments_parsed(us["$ai_output_choices"]) == _arguments_parsed(sdk["$ai_output_choices"])
    else:  # a failed call: the SDK sends [], ours none
        assert not us.get("$ai_output_choices")


def _tool(tool: dict) -> dict:
    """A tool as (name, description, parameters), from OpenAI's shape or Anthropic's."""
    function = tool.get("function", tool)
    return {"name": function["name"], "description": function.get("description"),
            "parameters": function.get("parameters", function.get("input_schema"))}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_tools(pairs, scenario):
    sdk, us = props(pairs, scenario)
    if not sdk.get("$ai_tools"):
        assert not us.get("$ai_tools")
        return
    if scenario.startswith("openai"):
        assert us["$ai_tools"] == sdk["$ai_tools"]
    assert [_tool(t) for t in us["$ai_tools"]] == [_tool(t) for t in sdk["$ai_tools"]]
    assert all(t["type"] == "function" and set(t["function"]) <= {"name", "description", "parameters"}
               for t in us["$ai_tools"])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_tokens(pairs, scenario):
    sdk, us = props(pairs, scenario)
    for key in ("$ai_output_tokens", "$ai_cache_read_input_tokens", "$ai_cache_creation_input_tokens",
                "$ai_reasoning_tokens"):
        assert (us.get(key) or 0) == (sdk.get(key) or 0), key  # the SDK leaves out a zero
    if scenario.startswith("anthropic"):
        # Inclusive, and PostHog told so: it subtracts the cache tokens again (same cost).
        cache = sdk.get("$ai_cache_read_input_tokens", 0) + sdk.get("$ai_cache_creation_input_tokens", 0)
        assert us["$ai_input_tokens"] == sdk["$ai_input_tokens"] + cache
        assert us["$ai_cache_reporting_exclusive"] is False
    else:
        assert us.get("$ai_input_tokens") == sdk.get("$ai_input_tokens")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_latency_time_to_first_token_and_ids(pairs, scenario):
    sdk, us = props(pairs, scenario)
    assert us["$ai_latency"] > 0 and sdk["$ai_latency"] > 0
    if scenario in STREAMS:
        assert 0 < us["$ai_time_to_first_token"] <= us["$ai_latency"]
    else:
        assert "$ai_time_to_first_token" not in us
    assert "$ai_time_to_first_token" not in sdk or "$ai_time_to_first_token" in us
    assert re.fullmatch(r"[0-9a-f]{32}", us["$ai_trace_id"]) and sdk["$ai_trace_id"]
    assert re.fullmatch(r"[0-9a-f]{16}", us["$ai_span_id"])
    assert "$ai_parent_id" not in us and "$ai_parent_id" not in sdk  # each call is its own trace


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_stream_flag_and_parameters(pairs, scenario):
    sdk, us = props(pairs, scenario)
    assert us["$ai_stream"] is (scenario in STREAMS)
    assert sdk.get("$ai_stream", us["$ai_stream"]) == us["$ai_stream"]  # the Gemini wrapper sends none
    for key in ("$ai_temperature", "$ai_max_tokens", "$ai_service_tier"):
        if key in sdk:
            assert us[key] == sdk[key], key
    theirs = sdk.get("$ai_model_parameters") or {}
    mine = us.get("$ai_model_parameters") or {}
    assert {k: mine.get(k) for k in theirs} == theirs


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_errors_and_http_status(pairs, scenario):
    sdk, us = props(pairs, scenario)
    assert us["$ai_http_status"] == sdk["$ai_http_status"]
    assert bool(us.get("$ai_is_error")) == bool(sdk.get("$ai_is_error")) == (scenario == "openai_error")
    if sdk.get("$ai_is_error"):
        assert us["$ai_error"].endswith(sdk["$ai_error"])  # prefixed with the exception's type


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_base_url_and_library(pairs, scenario):
    sdk, us = props(pairs, scenario)
    if scenario.startswith("gemini"):
        # The SDK names the public host whatever the client used; ours is the URL it used.
        assert sdk["$ai_base_url"] == "https://generativelanguage.googleapis.com"
        assert us["$ai_base_url"].startswith("http://127.0.0.1:")
    else:
        assert us["$ai_base_url"] == sdk["$ai_base_url"]
    assert us["$ai_lib"] == "posthog-autoinstrument" and us["$ai_lib_version"]
    assert sdk["$ai_lib"] == "posthog-ai"


def test_the_table(pairs, capsys):
    """Not an assertion: the parity table of every scenario, for the record (pytest -s)."""
    keys = ("$ai_model", "$ai_provider", "$ai_input_tokens", "$ai_output_tokens", "$ai_stream",
            "$ai_time_to_first_token", "$ai_http_status", "$ai_base_url", "$ai_stop_reason")
    with capsys.disabled():
        for scenario, (theirs, ours) in pairs.items():
            print(f"\n{scenario}: {theirs['event']}")
            for key in keys:
                a, b = theirs["properties"].get(key), ours["properties"].get(key)
                print(f"  {key:26} sdk={json.dumps(a)[:48]:50} ours={json.dumps(b)[:48]}")
