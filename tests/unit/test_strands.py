"""Strands Agents' own spans (attributes and events as strands-agents 1.65 records them, in both of
its conventions styles), completed for PostHog by the export pipeline."""

import json
from dataclasses import replace

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

import posthog_autoinstrument.instrumentation.strands  # noqa: F401  (registers formats/strands.py)
from posthog_autoinstrument import config
from posthog_autoinstrument.export.dialect import for_posthog
from posthog_autoinstrument.formats.strands import tool_output

SETTINGS = config.load({"POSTHOG_API_KEY": "phc_x"})
SCOPE = InstrumentationScope("strands.telemetry.tracer")

BLOCKS_PROMPT = '[{"text": "What is the weather in Paris?"}]'
BLOCKS_TOOL_USE = '[{"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}}}]'
BLOCKS_TOOL_RESULT = (
    '[{"toolResult": {"toolUseId": "call_1", "status": "success", "content": [{"text": "Sunny in Paris"}]}}]'
)
PARTS_PROMPT = {"role": "user", "parts": [{"type": "text", "content": "What is the weather in Paris?"}]}
PARTS_TOOL_USE = {
    "role": "assistant",
    "parts": [{"type": "tool_call", "name": "get_weather", "id": "call_1", "arguments": {"city": "Paris"}}],
}
PARTS_TOOL_RESULT = {  # Strands sends tool results as a user message
    "role": "user",
    "parts": [{"type": "tool_call_response", "id": "call_1", "response": [{"text": "Sunny in Paris"}]}],
}
STRANDS_KEYS = {
    "gen_ai.event.start_time": "2026-12-07T18:31:17.914201+00:00",
    "gen_ai.event.end_time": "2026-12-07T18:31:18.075967+00:00",
}
MODEL_USAGE = {
    "gen_ai.usage.prompt_tokens": 11,
    "gen_ai.usage.input_tokens": 11,
    "gen_ai.usage.completion_tokens": 7,
    "gen_ai.usage.output_tokens": 7,
    "gen_ai.usage.total_tokens": 18,
    "gen_ai.usage.cache_read.input_tokens": 3,
    "gen_ai.usage.cache_read_input_tokens": 3,
    "gen_ai.server.time_to_first_token": 150,
}
RUN_USAGE = {
    "gen_ai.usage.prompt_tokens": 22,
    "gen_ai.usage.input_tokens": 22,
    "gen_ai.usage.output_tokens": 14,
    "gen_ai.usage.cache_read.input_tokens": 6,
    "gen_ai.usage.cache_creation.input_tokens": 0,
}


def event(name, **attributes):
    return Event(name, attributes)


def details(**attributes):
    """The latest conventions' event; keyword names use "_" for "." (gen_ai_input_messages)."""
    return Event(
        "gen_ai.client.inference.operation.details",
        {
            key.replace("gen_ai_", "gen_ai.").replace("_messages", ".messages"): value
            for key, value in attributes.items()
        },
    )


# The second model request of a run (the tool result in its input), by default (legacy events).
LEGACY_CHAT = (
    {
        **STRANDS_KEYS,
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "strands-agents",
        "gen_ai.request.model": "gpt-4o-mini",
        **MODEL_USAGE,
    },
    [
        event("gen_ai.system.message", content='[{"text": "Answer in one sentence."}]'),
        event("gen_ai.user.message", content=BLOCKS_PROMPT),
        event("gen_ai.assistant.message", content=BLOCKS_TOOL_USE),
        event("gen_ai.tool.message", content=BLOCKS_TOOL_RESULT),
        event("gen_ai.choice", finish_reason="end_turn", message='[{"text": "Hello from fake OpenAI"}]'),
    ],
)
LEGACY_TOOL = (
    {
        **STRANDS_KEYS,
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.system": "strands-agents",
        "gen_ai.tool.name": "get_weather",
        "gen_ai.tool.call.id": "call_1",
        "gen_ai.tool.description": "The weather in a city.",
        "gen_ai.tool.status": "success",
    },
    [
        event("gen_ai.tool.message", role="tool", content='{"city": "Paris"}', id="call_1"),
        event("gen_ai.choice", message='[{"text": "Sunny in Paris"}]', id="call_1"),
    ],
)
LEGACY_CYCLE = (
    {
        **STRANDS_KEYS,
        "gen_ai.operation.name": "execute_event_loop_cycle",
        "gen_ai.system": "strands-agents",
        "event_loop.cycle_id": "430088dc",
    },
    [
        event("gen_ai.user.message", content=BLOCKS_PROMPT),
        event("gen_ai.choice", message=BLOCKS_TOOL_USE, **{"tool.result": BLOCKS_TOOL_RESULT}),
    ],
)
LEGACY_AGENT = (
    {
        **STRANDS_KEYS,
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.system": "strands-agents",
        "gen_ai.agent.name": "weather",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.agent.tools": '["get_weather"]',
        **RUN_USAGE,
    },
    [
        event("gen_ai.system.message", content='[{"text": "Answer in one sentence."}]'),
        event("gen_ai.user.message", content=BLOCKS_PROMPT),
        event("gen_ai.choice", message="Hello from fake OpenAI\n", finish_reason="end_turn"),
    ],
)

# The same spans with OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental.
LATEST_CHAT = (
    {**LEGACY_CHAT[0], "gen_ai.provider.name": "strands-agents"},
    [
        details(gen_ai_system_instructions='[{"type": "text", "content": "Answer in one sentence."}]'),
        details(gen_ai_input_messages=json.dumps([PARTS_PROMPT, PARTS_TOOL_USE, PARTS_TOOL_RESULT])),
        details(
            gen_ai_output_messages=json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [{"type": "text", "content": "Hello from fake OpenAI"}],
                        "finish_reason": "end_turn",
                    }
                ]
            )
        ),
    ],
)
LATEST_TOOL = (
    {
        **{k: v for k, v in LEGACY_TOOL[0].items() if k != "gen_ai.system"},
        "gen_ai.provider.name": "strands-agents",
        "gen_ai.tool.call.arguments": '{"city": "Paris"}',
        "gen_ai.tool.call.result": '[{"text": "Sunny in Paris"}]',
    },
    [
        details(gen_ai_input_messages=json.dumps([{**PARTS_TOOL_USE, "role": "tool"}])),
        details(gen_ai_output_messages=json.dumps([{**PARTS_TOOL_RESULT, "role": "tool"}])),
    ],
)
LATEST_CYCLE = (
    {**{k: v for k, v in LEGACY_CYCLE[0].items() if k != "gen_ai.system"}, "gen_ai.provider.name": "strands-agents"},
    [
        details(gen_ai_input_messages=json.dumps([PARTS_PROMPT])),
        details(gen_ai_input_messages=json.dumps([PARTS_TOOL_RESULT])),
    ],
)
LATEST_AGENT = (
    {
        **{k: v for k, v in LEGACY_AGENT[0].items() if k != "gen_ai.system"},
        "gen_ai.provider.name": "strands-agents",
        "gen_ai.system_instructions": '[{"type": "text", "content": "Answer in one sentence."}]',
    },
    [
        details(gen_ai_input_messages=json.dumps([PARTS_PROMPT])),
        details(
            gen_ai_output_messages=json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [{"type": "text", "content": "Hello from fake OpenAI\n"}],
                        "finish_reason": "end_turn",
                    }
                ]
            )
        ),
    ],
)
EVERY_SPAN = (
    LEGACY_CHAT,
    LEGACY_TOOL,
    LEGACY_CYCLE,
    LEGACY_AGENT,
    LATEST_CHAT,
    LATEST_TOOL,
    LATEST_CYCLE,
    LATEST_AGENT,
)


def exported(recorded, settings=SETTINGS, name="span", **more):
    attributes, events = recorded
    span = ReadableSpan(name=name, attributes={**attributes, **more}, events=events, instrumentation_scope=SCOPE)
    return for_posthog(span, settings)


def test_a_model_request_nothing_else_recorded_is_the_generation():
    for recorded in (LEGACY_CHAT, LATEST_CHAT):
        copy = exported(recorded)
        attrs = copy.attributes
        assert copy.events == ()  # PostHog ignores span events: their content is in the attributes now
        assert attrs["gen_ai.operation.name"] == "chat" and attrs["$ai_framework"] == "strands"
        assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7)
        assert attrs["gen_ai.usage.cache_read.input_tokens"] == 3
        assert attrs["$ai_stream"] is True and attrs["$ai_time_to_first_token"] == 0.15
        assert list(attrs["gen_ai.response.finish_reasons"]) == ["stop"] and attrs["$ai_stop_reason"] == "stop"
        for gone in ("gen_ai.system", "gen_ai.provider.name", "gen_ai.usage.prompt_tokens", "gen_ai.event.start_time"):
            assert gone not in attrs, gone
        assert attrs["$ai_input"] == [
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "function",
                        "id": "call_1",
                        "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                    }
                ],
            },
            {"role": "tool", "content": "Sunny in Paris", "tool_call_id": "call_1"},
        ]
        assert attrs["$ai_output_choices"] == [
            {"role": "assistant", "content": [{"type": "text", "text": "Hello from fake OpenAI"}]}
        ]


def test_a_model_request_a_provider_span_recorded_is_a_step_without_tokens():
    for recorded in (LEGACY_CHAT, LATEST_CHAT):
        attrs = exported(recorded, **{"posthog_autoinstrument.delegated": True}).attributes
        assert "gen_ai.operation.name" not in attrs
        assert not [k for k in attrs if k.startswith("gen_ai.usage.") or k == "$ai_time_to_first_token"]
        assert "$ai_input" not in attrs  # the instructions: the generation has them
        assert json.loads(attrs["$ai_input_state"])[-1] == {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "response": "Sunny in Paris", "id": "call_1"}],
        }
        assert json.loads(attrs["$ai_output_state"]) == [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": "Hello from fake OpenAI"}],
                "finish_reason": "stop",
            }
        ]


def test_a_tool_call_is_a_step_with_arguments_and_result():
    for recorded in (LEGACY_TOOL, LATEST_TOOL):
        copy = exported(recorded, name="execute_tool get_weather")
        attrs = copy.attributes
        assert attrs["gen_ai.operation.name"] == "execute_tool" and attrs["gen_ai.tool.name"] == "get_weather"
        assert attrs["gen_ai.tool.call.id"] == "call_1" and attrs["$ai_framework"] == "strands"
        assert json.loads(attrs["$ai_input_state"]) == {"city": "Paris"}
        assert attrs["$ai_output_state"] == "Sunny in Paris"
        assert not [k for k in attrs if k.startswith(("$ai_input", "$ai_output_choices")) and k != "$ai_input_state"]
        assert copy.events == ()


def test_a_cycle_is_a_step_with_what_it_decided_and_the_tool_results():
    legacy, latest = (exported(recorded).attributes for recorded in (LEGACY_CYCLE, LATEST_CYCLE))
    tool_results = {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "response": "Sunny in Paris", "id": "call_1"}],
    }
    assert json.loads(legacy["$ai_output_state"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_1"}],
            "finish_reason": "",
        },
        tool_results,
    ]
    assert json.loads(latest["$ai_output_state"]) == [tool_results]  # the newer style records no assistant message here
    for attrs in (legacy, latest):
        assert "$ai_input_state" not in attrs and "gen_ai.operation.name" in attrs
        assert attrs["event_loop.cycle_id"] == "430088dc"


def test_an_agent_run_is_a_step_with_the_prompt_and_answer_and_no_tokens():
    for recorded in (LEGACY_AGENT, LATEST_AGENT):
        attrs = exported(recorded, name="invoke_agent weather").attributes
        assert attrs["gen_ai.operation.name"] == "invoke_agent" and attrs["gen_ai.agent.name"] == "weather"
        assert json.loads(attrs["$ai_input_state"]) == [PARTS_PROMPT]
        assert attrs["$ai_output_state"] == "Hello from fake OpenAI\n"
        assert not [k for k in attrs if "usage" in k or k in ("$ai_input", "gen_ai.system_instructions")]
        assert attrs["gen_ai.request.model"] == "gpt-4o-mini" and attrs["$ai_framework"] == "strands"


def test_privacy_leaves_no_content_in_attributes_or_events():
    private = replace(SETTINGS, privacy_mode=True)
    for recorded in EVERY_SPAN:
        copy = exported(recorded, private)
        text = json.dumps({k: str(v) for k, v in copy.attributes.items()})
        assert "Paris" not in text and "Sunny" not in text and "one sentence" not in text and "fake" not in text
        assert copy.events == ()


def test_inputs_and_outputs_apart():
    outputs_off = exported(LEGACY_AGENT, replace(SETTINGS, record_outputs=False)).attributes
    assert "$ai_input_state" in outputs_off and "$ai_output_state" not in outputs_off
    inputs_off = exported(LEGACY_TOOL, replace(SETTINGS, record_inputs=False)).attributes
    assert "$ai_input_state" not in inputs_off and inputs_off["$ai_output_state"] == "Sunny in Paris"


def test_an_exception_event_stays():
    attributes, events = LEGACY_TOOL
    failure = Event("exception", {"exception.type": "RuntimeError", "exception.message": "no station"})
    copy = exported((attributes, [*events, failure]))
    assert [e.name for e in copy.events] == ["exception"]


def test_content_the_app_redacted_stays_redacted():
    # Strands' own redaction (gen_ai_unredacted_attributes=...) replaces content with a marker.
    attributes, _ = LEGACY_AGENT
    redacted = [
        event("gen_ai.user.message", content="[REDACTED]"),
        event("gen_ai.choice", message="[REDACTED]", finish_reason="end_turn"),
    ]
    attrs = exported((attributes, redacted)).attributes
    assert json.loads(attrs["$ai_input_state"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "[REDACTED]"}]}
    ]
    assert attrs["$ai_output_state"] == "[REDACTED]"
    tool = exported((LEGACY_TOOL[0], [event("gen_ai.tool.message", content="[REDACTED]")])).attributes
    assert tool["$ai_input_state"] == "[REDACTED]"


def test_tool_results_as_our_adapters_record_them():
    assert tool_output([{"text": "a"}, {"text": "b"}]) == "a\nb"
    assert tool_output([{"json": {"temperature": 21}}]) == {"temperature": 21}
    mixed = [{"text": "a"}, {"json": {"b": 1}}]
    assert tool_output(mixed) == mixed
    assert tool_output("plain") == "plain"


def test_content_recorded_as_attributes_is_completed_the_same():
    # OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental,gen_ai_span_attributes_only
    attributes, events = LATEST_CHAT
    as_attributes = {**attributes}
    for recorded in events:
        as_attributes.update(recorded.attributes)
    attrs = exported((as_attributes, [])).attributes
    assert attrs["$ai_input"] == exported(LATEST_CHAT).attributes["$ai_input"]
    assert attrs["$ai_input"][-1] == {"role": "tool", "content": "Sunny in Paris", "tool_call_id": "call_1"}


def test_a_memory_query_is_a_step_without_its_content():
    memory = {"gen_ai.operation.name": "memory.search", "gen_ai.system": "strands-agents", "memory.store.count": 1}
    for recorded in ((memory, [event("memory.query", content="Paris")]), ({**memory, "content": "Paris"}, [])):
        copy = exported(recorded, name="memory.search")
        assert "Paris" not in json.dumps({k: str(v) for k, v in copy.attributes.items()}) and copy.events == ()
        assert copy.attributes["memory.store.count"] == 1


def test_a_swarm_run_is_a_step_with_its_task_and_result():
    # Strands' multi-agent spans record the task and result as plain text.
    swarm = {"gen_ai.operation.name": "invoke_swarm", "gen_ai.system": "strands-agents"}
    events = [event("gen_ai.user.message", content="Plan a trip"), event("gen_ai.choice", message="Done")]
    attrs = exported((swarm, events), name="invoke_swarm").attributes
    assert json.loads(attrs["$ai_input_state"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Plan a trip"}]}
    ]
    assert attrs["$ai_output_state"] == "Done" and attrs["$ai_framework"] == "strands"
