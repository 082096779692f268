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
- Thinking blocks in ``$ai_output_choices`` carry no ``signature`` (Anthropic's opaque token
  for sending the block back to the API; PostHog's trace view does not show it).
- Tool-call arguments in ``$ai_output_choices`` are objects (the OpenAI SDK's are JSON text,
  which PostHog's trace view parses into the same object).
- Richer: ``$ai_time_to_first_token`` on streams, ``$ai_span_id``, W3C trace ids,
  ``$ai_stream`` on every generation (the Gemini wrapper sends none), and Gemini's parameters
  in ``$ai_model_parameters`` (the Gemini wrapper sends ``{}``).

LangChain (``langchain_tools``: ``prompt | ChatOpenAI.bind_tools([get_weather])``, against
``posthog.ai.langchain.CallbackHandler``) makes several events per run, compared on their own;
besides the differences above (served model, stop reason, error, library):

- The same event types, one each: ``$ai_trace`` (the chain), ``$ai_span``, ``$ai_generation``.
  The handler's ``$ai_span`` is the prompt template; ours is LangChain's model step (the LCEL
  composition steps are skipped, their data is in the chain's state and the generation's input),
  and the generation, the openai SDK's own call, nests under that step, not straight under the
  trace: trace -> model step -> generation, one trace id throughout.
- The generation's ``$ai_span_name`` is the span's name (``chat gpt-4o-mini``, which
  PostHog's ingestion writes there), the handler's the class (``ChatOpenAI``); likewise the
  trace's is ``invoke_workflow RunnableSequence``.
- Tool calls in ``$ai_output_choices`` are content items ``{type: function, id, function}`` (the
  OpenAI wrapper's shape, as above), where the handler sends the message's ``tool_calls`` list
  beside ``content: ""``; the same calls, and PostHog's trace view reads both.
- ``$ai_model_parameters`` names ``max_tokens`` where the handler passes LangChain's
  ``max_completion_tokens``, and leaves ``stream`` to ``$ai_stream``: the same ``$ai_max_tokens``
  and ``$ai_stream``.
- The chain's ``$ai_input_state`` / ``$ai_output_state`` are JSON text (an OpenTelemetry
  attribute holds no object); the output is the message (role, content, tool calls), where the
  handler sends LangChain's whole serialised AIMessage (its usage and metadata are ours on the
  generation).
- Richer: ``$ai_base_url`` (the handler sends null), ``$ai_model``/``$ai_provider``/``$ai_tools``
  on the model step too, and W3C trace ids.
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

SCENARIOS = [
    "openai_chat",
    "openai_stream",
    "openai_tools",
    "openai_responses",
    "openai_embeddings",
    "openai_error",
    "anthropic_messages",
    "anthropic_stream",
    "anthropic_tools",
    "anthropic_thinking",
    "gemini_generate",
    "gemini_stream",
]
STREAMS = {"openai_stream", "anthropic_stream", "gemini_stream"}
USER = "parity-user"


@pytest.fixture(scope="module")
def pairs() -> dict:
    """scenario -> (the SDK's event, ours), both as PostHog stores them."""
    with (
        FakeOpenAI() as fake_openai,
        FakeAnthropic() as fake_anthropic,
        FakeGemini() as fake_gemini,
        FakePostHog() as posthog,
    ):
        env = {k: v for k, v in clean_env().items() if not k.startswith(("ANTHROPIC_", "GOOGLE_", "GEMINI_"))}
        env.update(
            OPENAI_BASE_URL=fake_openai.base_url,
            OPENAI_API_KEY="sk-test-key",
            ANTHROPIC_BASE_URL=fake_anthropic.base_url,
            ANTHROPIC_API_KEY="sk-ant-test-key",
            GEMINI_API_KEY="gemini-test-key",
            GOOGLE_GEMINI_BASE_URL=fake_gemini.base_url,
            POSTHOG_HOST=posthog.host,
        )
        script = str(APPS / "parity_app.py")
        wrapped = run([sys.executable, script], {**env, "PARITY_MODE": "wrapper"})
        assert wrapped.returncode == 0, wrapped.stderr
        theirs = [
            process_ai_event(event)
            for request in posthog.sdk_requests
            if request["path"].startswith("/batch")
            for event in request["json"]["batch"]
        ]
        plain = run(
            [LAUNCHER, "python", script],
            {
                **env,
                "PARITY_MODE": "plain",
                "POSTHOG_API_KEY": "phc_test_project_token",
                "POSTHOG_DISTINCT_ID": USER,
                "POSTHOG_EXPORT_INTERVAL": "0.05",
            },
        )
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


def _without_signatures(messages):
    """Thinking blocks without Anthropic's ``signature`` (an opaque token for sending the block
    back to the API, which PostHog's trace view does not show): we leave it out."""
    if isinstance(messages, list):
        return [_without_signatures(m) for m in messages]
    if isinstance(messages, dict):
        return {
            k: _without_signatures(v)
            for k, v in messages.items()
            if not (k == "signature" and messages.get("type") == "thinking")
        }
    return messages


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_input_and_output(pairs, scenario):
    sdk, us = props(pairs, scenario)
    assert us["$ai_input"] == sdk["$ai_input"]
    if sdk.get("$ai_output_choices"):
        assert _arguments_parsed(us["$ai_output_choices"]) == _without_signatures(
            _arguments_parsed(sdk["$ai_output_choices"])
        )
    else:  # a failed call: the SDK sends [], ours none
        assert not us.get("$ai_output_choices")


def _tool(tool: dict) -> dict:
    """A tool as (name, description, parameters), from OpenAI's shape or Anthropic's."""
    function = tool.get("function", tool)
    return {
        "name": function["name"],
        "description": function.get("description"),
        "parameters": function.get("parameters", function.get("input_schema")),
    }


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_tools(pairs, scenario):
    sdk, us = props(pairs, scenario)
    if not sdk.get("$ai_tools"):
        assert not us.get("$ai_tools")
        return
    if scenario.startswith("openai"):
        assert us["$ai_tools"] == sdk["$ai_tools"]
    assert [_tool(t) for t in us["$ai_tools"]] == [_tool(t) for t in sdk["$ai_tools"]]
    assert all(
        t["type"] == "function" and set(t["function"]) <= {"name", "description", "parameters"} for t in us["$ai_tools"]
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_tokens(pairs, scenario):
    sdk, us = props(pairs, scenario)
    for key in (
        "$ai_output_tokens",
        "$ai_cache_read_input_tokens",
        "$ai_cache_creation_input_tokens",
        "$ai_reasoning_tokens",
    ):
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
    keys = (
        "$ai_model",
        "$ai_provider",
        "$ai_input_tokens",
        "$ai_output_tokens",
        "$ai_stream",
        "$ai_time_to_first_token",
        "$ai_http_status",
        "$ai_base_url",
        "$ai_stop_reason",
    )
    with capsys.disabled():
        for scenario, (theirs, ours) in pairs.items():
            print(f"\n{scenario}: {theirs['event']}")
            for key in keys:
                a, b = theirs["properties"].get(key), ours["properties"].get(key)
                print(f"  {key:26} sdk={json.dumps(a)[:48]:50} ours={json.dumps(b)[:48]}")


# -- LangChain: a chain (prompt | ChatOpenAI with a tool), through posthog.ai.langchain --------
# One run makes several events (the chain's, the model's), so it runs on its own: the SDK's
# CallbackHandler in config={"callbacks": [...]} against our LangChain adapter (over our OpenAI
# adapter) under posthog-instrument.

LANGCHAIN_EVENTS = ["$ai_generation", "$ai_span", "$ai_trace"]
TOOL_PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


@pytest.fixture(scope="module")
def langchain_run() -> tuple:
    """(the handler's events, ours) for one run of the chain, both as PostHog stores them."""
    with FakeOpenAI() as fake_openai, FakePostHog() as posthog:
        env = clean_env(OPENAI_BASE_URL=fake_openai.base_url, OPENAI_API_KEY="sk-test-key", POSTHOG_HOST=posthog.host)
        script = str(APPS / "parity_app.py")
        wrapped = run([sys.executable, script, "langchain_tools"], {**env, "PARITY_MODE": "wrapper"})
        assert wrapped.returncode == 0, wrapped.stderr
        theirs = [
            process_ai_event(event)
            for request in posthog.sdk_requests
            if request["path"].startswith("/batch")
            for event in request["json"]["batch"]
        ]
        plain = run(
            [LAUNCHER, "python", script, "langchain_tools"],
            {
                **env,
                "PARITY_MODE": "plain",
                "POSTHOG_API_KEY": "phc_test_project_token",
                "POSTHOG_DISTINCT_ID": USER,
                "POSTHOG_EXPORT_INTERVAL": "0.05",
            },
        )
        assert plain.returncode == 0, plain.stderr
        assert plain.stdout == wrapped.stdout == "get_weather {'city': 'Paris'}\n"
        spans = sorted(posthog.wait_for_spans(len(LANGCHAIN_EVENTS)), key=lambda s: s["start_ns"])
        assert posthog.rejections == []
        ours = events_from_spans(spans)
    return theirs, ours


def _one(events: list, name: str) -> dict:
    found = [e for e in events if e["event"] == name]
    assert len(found) == 1, (name, [e["event"] for e in events])
    return found[0]


def _generations(langchain_run) -> tuple:
    theirs, ours = langchain_run
    return _one(theirs, "$ai_generation")["properties"], _one(ours, "$ai_generation")["properties"]


def test_langchain_event_types_and_person(langchain_run):
    """The same events: the chain as the $ai_trace, one $ai_span, exactly one $ai_generation.
    The handler's $ai_span is the prompt template; ours is LangChain's model step (we skip the
    LCEL composition steps, and the model step's request is the openai SDK's generation)."""
    theirs, ours = langchain_run
    assert sorted(e["event"] for e in ours) == sorted(e["event"] for e in theirs) == LANGCHAIN_EVENTS
    assert {e["distinct_id"] for e in ours} == {e["distinct_id"] for e in theirs} == {USER}
    assert _one(theirs, "$ai_span")["properties"]["$ai_span_name"] == "ChatPromptTemplate"
    step = _one(ours, "$ai_span")["properties"]
    assert step["$ai_framework"] == "langchain" and "$ai_input_tokens" not in step  # a step: never billed
    for event in (*theirs, *ours):
        assert event["properties"]["$ai_framework"] == "langchain"


def test_langchain_generation_model_and_provider(langchain_run):
    sdk, us = _generations(langchain_run)
    assert us["$ai_provider"] == sdk["$ai_provider"] == "openai"
    assert us["$ai_model"] == sdk["$ai_model"] or us["$ai_model"].startswith(sdk["$ai_model"] + "-")
    assert (sdk["$ai_stop_reason"], us["$ai_stop_reason"]) == ("tool_calls", "tool_call")  # the conventions' name
    # The generation is the openai SDK's call, made by LangChain: it names the framework too.
    assert us["$ai_framework"] == sdk["$ai_framework"] == "langchain"


def _said(choices: list) -> list:
    """Each message as (role, text, tool calls), whichever way its tool calls are written: the
    OpenAI message's ``tool_calls`` (the LangChain handler) or content items of type function
    (PostHog's OpenAI wrapper, and ours); PostHog's trace view reads both."""
    said = []
    for message in _arguments_parsed(choices):
        content = message.get("content")
        items = content if isinstance(content, list) else []
        texts = [i.get("text", "") for i in items if i.get("type") == "text"]
        text = content if isinstance(content, str) else "".join(texts)
        calls = list(message.get("tool_calls") or ()) + [i for i in items if i.get("type") == "function"]
        calls = [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls]
        said.append((message["role"], text, calls))
    return said


def test_langchain_generation_input_output_and_tools(langchain_run):
    sdk, us = _generations(langchain_run)
    assert (
        us["$ai_input"]
        == sdk["$ai_input"]
        == [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Weather in Paris?"}]
    )
    assert (
        _said(us["$ai_output_choices"])
        == _said(sdk["$ai_output_choices"])
        == [("assistant", "", [("call_1", "get_weather", {"city": "Paris"})])]
    )
    assert us["$ai_tools"] == sdk["$ai_tools"]
    assert [_tool(t) for t in us["$ai_tools"]] == [
        {"name": "get_weather", "description": "Weather for a city", "parameters": TOOL_PARAMETERS}
    ]


def test_langchain_generation_tokens(langchain_run):
    sdk, us = _generations(langchain_run)
    for key in (
        "$ai_input_tokens",
        "$ai_output_tokens",
        "$ai_cache_read_input_tokens",
        "$ai_cache_creation_input_tokens",
        "$ai_reasoning_tokens",
    ):
        assert (us.get(key) or 0) == (sdk.get(key) or 0), key
    assert sdk["$ai_input_tokens"] > 0 and sdk["$ai_cache_read_input_tokens"] > 0


def _ancestors(events: list, event: dict) -> list:
    """The events from ``event``'s parent up to the root, by ``$ai_parent_id`` -> ``$ai_span_id``
    (the handler's root also answers to the trace id it uses as its span id)."""
    by_id = {e["properties"]["$ai_span_id"]: e for e in events}
    chain, parent = [], event["properties"].get("$ai_parent_id")
    while parent is not None:
        chain.append(by_id[parent])
        assert len(chain) <= len(events), "a cycle"
        parent = chain[-1]["properties"].get("$ai_parent_id")
    return chain


def test_langchain_trace_and_parent_linkage(langchain_run):
    """One trace: every event shares the trace id, every parent id is another event of the run,
    and the generation leads up to the chain's $ai_trace. Ours nests the generation under
    LangChain's model step (the handler puts it straight under the trace)."""
    for events in langchain_run:
        trace_ids = {e["properties"]["$ai_trace_id"] for e in events}
        assert len(trace_ids) == 1
        root = _one(events, "$ai_trace")
        assert "$ai_parent_id" not in root["properties"]
        assert len({e["properties"]["$ai_span_id"] for e in events}) == len(events)
        for event in events:
            if event is not root:
                assert _ancestors(events, event)[-1] is root
    theirs, ours = langchain_run
    assert [e["event"] for e in _ancestors(theirs, _one(theirs, "$ai_generation"))] == ["$ai_trace"]
    assert [e["event"] for e in _ancestors(ours, _one(ours, "$ai_generation"))] == ["$ai_span", "$ai_trace"]
    us = _one(ours, "$ai_generation")["properties"]
    assert re.fullmatch(r"[0-9a-f]{32}", us["$ai_trace_id"]) and re.fullmatch(r"[0-9a-f]{16}", us["$ai_span_id"])
    step = _one(ours, "$ai_span")["properties"]
    for key in ("$ai_model", "$ai_provider", "$ai_tools"):  # LangChain's view of the same request
        assert step[key] == us[key], key


def test_langchain_chain_state(langchain_run):
    """The chain's input and output: the same, ours as JSON text (an OpenTelemetry attribute
    holds no object); its output is the message (role, content, tool calls), where the handler
    sends LangChain's whole AIMessage (metadata and usage: ours are on the generation)."""
    theirs, ours = langchain_run
    sdk, us = _one(theirs, "$ai_trace")["properties"], _one(ours, "$ai_trace")["properties"]
    assert json.loads(us["$ai_input_state"]) == sdk["$ai_input_state"] == {"question": "Weather in Paris?"}
    output = json.loads(us["$ai_output_state"])
    assert output["content"] == sdk["$ai_output_state"]["content"]
    assert output["tool_calls"] == sdk["$ai_output_state"]["tool_calls"]
    assert sdk["$ai_span_name"] == "RunnableSequence" and us["$ai_span_name"].endswith("RunnableSequence")
    for event in (*theirs, *ours):
        assert event["properties"]["$ai_latency"] > 0


# LangChain's invocation parameters name some parameters as the request does.
_PARAMETER_NAMES = {"max_completion_tokens": "max_tokens"}


def test_langchain_generation_stream_and_parameters(langchain_run):
    sdk, us = _generations(langchain_run)
    assert us["$ai_stream"] is sdk["$ai_stream"] is False
    assert "$ai_time_to_first_token" not in us and "$ai_time_to_first_token" not in sdk
    for key in ("$ai_temperature", "$ai_max_tokens", "$ai_service_tier"):
        assert us[key] == sdk[key], key
    mine = us["$ai_model_parameters"]
    for key, value in sdk["$ai_model_parameters"].items():
        if key == "stream":  # ours: $ai_stream, above
            continue
        assert mine[_PARAMETER_NAMES.get(key, key)] == value, key


def test_langchain_errors_base_url_and_library(langchain_run):
    sdk, us = _generations(langchain_run)
    assert us["$ai_http_status"] == sdk["$ai_http_status"] == 200
    for event in (*langchain_run[0], *langchain_run[1]):
        assert not event["properties"].get("$ai_is_error") and not event["properties"].get("$ai_error")
    # The handler sends none (null); ours is the URL the client used.
    assert sdk["$ai_base_url"] is None
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1/?", us["$ai_base_url"])
    assert us["$ai_lib"] == "posthog-autoinstrument" and sdk["$ai_lib"] == "posthog-ai"


def test_langchain_table(langchain_run, capsys):
    """Not an assertion: the parity table of the LangChain run's generation (pytest -s)."""
    sdk, us = _generations(langchain_run)
    with capsys.disabled():
        print("\nlangchain_tools: $ai_generation")
        for key in sorted(k for k in {*sdk, *us} if k.startswith("$ai_")):
            print(f"  {key:32} sdk={json.dumps(sdk.get(key))[:60]:62} ours={json.dumps(us.get(key))[:60]}")
