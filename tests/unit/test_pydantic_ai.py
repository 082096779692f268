"""Pydantic AI's own spans, completed for PostHog; and how its instrumentation is switched on."""

import json
from dataclasses import replace

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from posthog_autoinstrument import config
from posthog_autoinstrument.export.dialect import for_posthog
from posthog_autoinstrument.instrumentation.pydantic_ai import content_capture, instrumentation_settings

SETTINGS = config.load({"POSTHOG_API_KEY": "phc_x"})
SCOPE = InstrumentationScope("pydantic-ai", "2.68.0")

# Attribute sets as pydantic-ai 2.68 (format version 6) records them.
CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.agent.name": "weather",
    "gen_ai.agent.call.id": "run-1",
    "gen_ai.conversation.id": "conv-1",
    "gen_ai.provider.name": "openai",
    "gen_ai.system": "openai",
    "server.address": "127.0.0.1",
    "gen_ai.request.model": "gpt-4o-mini",
    "model_request_parameters": '{"function_tools":[]}',
    "gen_ai.tool.definitions": '[{"type":"function","name":"get_weather"}]',
    "gen_ai.input.messages": json.dumps(
        [
            {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
            {
                "role": "assistant",
                "parts": [
                    {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}
                ],
                "finish_reason": "tool_call",
            },
            {
                "role": "tool",
                "parts": [{"type": "tool_call_response", "id": "call_1", "name": "get_weather", "result": "Sunny"}],
            },
        ]
    ),
    "gen_ai.output.messages": json.dumps(
        [{"role": "assistant", "parts": [{"type": "text", "content": "Sunny."}], "finish_reason": "stop"}]
    ),
    "gen_ai.system_instructions": '[{"type":"text","content":"Be brief.","visible":false}]',
    "logfire.json_schema": "{}",
    "gen_ai.usage.input_tokens": 11,
    "gen_ai.usage.output_tokens": 7,
    "gen_ai.usage.cache_read.input_tokens": 3,
    "gen_ai.usage.details.reasoning_tokens": 2,
    "gen_ai.usage.details.cache_read_tokens": 3,
    "gen_ai.response.model": "gpt-4o-mini-2024-08-06",
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.client.operation.time_to_first_chunk": 0.01,
    "pydantic_ai.cache.hit_ratio": 0.27,
    "operation.cost": 0.0001,
}
AGENT = {
    "model_name": "gpt-4o-mini",
    "agent_name": "weather",
    "gen_ai.agent.name": "weather",
    "gen_ai.agent.call.id": "run-1",
    "gen_ai.conversation.id": "conv-1",
    "gen_ai.operation.name": "invoke_agent",
    "logfire.msg": "weather run",
    "final_result": "Sunny.",
    "gen_ai.aggregated_usage.input_tokens": 22,
    "pydantic_ai.all_messages": json.dumps(
        [
            {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
            {"role": "assistant", "parts": [{"type": "text", "content": "Sunny."}], "finish_reason": "stop"},
        ]
    ),
    "gen_ai.system_instructions": '[{"type":"text","content":"Be brief."}]',
    "logfire.json_schema": "{}",
}
TOOL = {
    "gen_ai.operation.name": "execute_tool",
    "gen_ai.tool.name": "get_weather",
    "gen_ai.tool.call.id": "call_1",
    "gen_ai.tool.call.arguments": '{"city":"Paris"}',
    "gen_ai.agent.name": "weather",
    "logfire.msg": "running tool: get_weather",
    "logfire.json_schema": "{}",
    "gen_ai.tool.call.result": "Sunny",
}


def exported(attributes, settings=SETTINGS, name="span"):
    span = ReadableSpan(name=name, attributes=attributes, instrumentation_scope=SCOPE)
    return for_posthog(span, settings)


def recognised_by_posthog_as_pydantic_ai(attrs):
    """PostHog's capture classifies any span with a pydantic_ai.* key as $ai_span, and its
    pydantic-ai middleware rewrites spans with these marker keys."""
    markers = {"pydantic_ai.all_messages", "logfire.msg", "logfire.json_schema", "model_request_parameters"}
    return any(k.startswith("pydantic_ai.") or k in markers for k in attrs)


def test_a_model_request_is_a_generation_in_our_shape():
    attrs = dict(exported(CHAT, name="chat gpt-4o-mini").attributes)
    assert not recognised_by_posthog_as_pydantic_ai(attrs)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7)
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 3
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 2 and attrs["$ai_reasoning_tokens"] == 2
    assert attrs["$ai_framework"] == "pydantic-ai"
    assert attrs["$ai_stream"] is True and attrs["gen_ai.response.time_to_first_chunk"] == 0.01
    assert not [k for k in attrs if k.startswith(("gen_ai.usage.details.", "logfire."))]
    for gone in ("gen_ai.system", "gen_ai.agent.call.id", "model_request_parameters", "operation.cost"):
        assert gone not in attrs
    # In PostHog's shape (export/posthog_messages.py), the system prompt first.
    assert attrs["$ai_input"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
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
        {"role": "tool", "content": "Sunny", "tool_call_id": "call_1"},
    ]
    assert attrs["$ai_output_choices"] == [{"role": "assistant", "content": [{"type": "text", "text": "Sunny."}]}]


def test_a_delegated_model_request_is_a_step_without_tokens():
    attrs = exported({**CHAT, "posthog_autoinstrument.delegated": True}).attributes
    assert "gen_ai.operation.name" not in attrs
    assert not [k for k in attrs if k.startswith("gen_ai.usage.")]
    assert not recognised_by_posthog_as_pydantic_ai(attrs)
    assert attrs["$ai_framework"] == "pydantic-ai"


def test_an_agent_run_is_a_step_with_the_prompt_and_result_as_state():
    attrs = exported(AGENT).attributes
    assert not recognised_by_posthog_as_pydantic_ai(attrs)
    assert attrs["gen_ai.operation.name"] == "invoke_agent" and attrs["gen_ai.agent.name"] == "weather"
    assert json.loads(attrs["$ai_input_state"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}
    ]
    assert attrs["$ai_output_state"] == "Sunny."
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    for gone in (
        "final_result",
        "model_name",
        "agent_name",
        "gen_ai.aggregated_usage.input_tokens",
        "gen_ai.system_instructions",
    ):
        assert gone not in attrs


def test_with_history_the_prompt_is_the_last_user_message():
    history = json.dumps(
        [
            {"role": "user", "parts": [{"type": "text", "content": "earlier"}]},
            {"role": "assistant", "parts": [{"type": "text", "content": "ok"}]},
            {"role": "user", "parts": [{"type": "text", "content": "now"}]},
            {"role": "assistant", "parts": [{"type": "text", "content": "done"}]},
        ]
    )
    attrs = exported({**AGENT, "pydantic_ai.all_messages": history, "pydantic_ai.new_message_index": 2}).attributes
    assert json.loads(attrs["$ai_input_state"])[0]["parts"][0]["content"] == "now"


def test_a_tool_call_is_a_step_with_arguments_and_result():
    attrs = exported(TOOL).attributes
    assert not recognised_by_posthog_as_pydantic_ai(attrs)
    assert attrs["$ai_input_state"] == '{"city":"Paris"}' and attrs["$ai_output_state"] == "Sunny"
    assert attrs["$ai_framework"] == "pydantic-ai"


def test_privacy_leaves_no_content():
    private = replace(SETTINGS, privacy_mode=True)
    for source in (CHAT, AGENT, TOOL):
        attrs = exported(source, private).attributes
        text = json.dumps({k: str(v) for k, v in attrs.items()})
        assert "Paris" not in text and "Sunny" not in text and "Be brief" not in text, attrs


def test_outputs_off_keeps_the_prompt_but_not_the_result():
    attrs = exported(AGENT, replace(SETTINGS, record_outputs=False)).attributes
    assert "$ai_input_state" in attrs and "$ai_output_state" not in attrs


def test_an_unknown_span_keeps_what_makes_it_an_ai_span():
    attrs = exported({"pydantic_ai.something": 1, "logfire.msg": "x"}).attributes
    assert attrs["pydantic_ai.something"] == 1


def test_content_capture_follows_our_privacy_settings():
    assert content_capture(SETTINGS)
    assert not content_capture(replace(SETTINGS, privacy_mode=True))
    assert not content_capture(replace(SETTINGS, record_inputs=False, record_outputs=False))
    assert content_capture(replace(SETTINGS, record_inputs=False))


class _Settings:
    """Stands in for InstrumentationSettings of a release that knows format versions up to 3."""

    def __init__(self, *, version, **options):
        if version > 3:
            raise ValueError("Instrumentation version must be one of 1, 2, or 3.")
        self.version, self.options = version, options


def test_the_newest_format_version_the_release_accepts():
    settings = instrumentation_settings(_Settings, "provider", replace(SETTINGS, privacy_mode=True))
    assert settings.version == 3
    assert settings.options == {
        "tracer_provider": "provider",
        "include_content": False,
        "include_binary_content": False,
    }


def test_the_installed_release_gets_format_version_6():
    instrumented = pytest.importorskip("pydantic_ai.models.instrumented")
    settings = instrumentation_settings(instrumented.InstrumentationSettings, None, SETTINGS)
    assert settings.version == 6 and settings.include_content and not settings.include_binary_content


@pytest.fixture
def agent_class():
    pydantic_ai = pytest.importorskip("pydantic_ai")
    saved = pydantic_ai.Agent._instrument_default
    yield pydantic_ai.Agent
    pydantic_ai.Agent._instrument_default = saved


def hooked_instrumentor():
    from opentelemetry.sdk.trace import TracerProvider

    from posthog_autoinstrument.instrumentation.pydantic_ai import PydanticAIInstrumentor

    instrumentor = object.__new__(PydanticAIInstrumentor)  # not the singleton: nothing global is registered
    instrumentor._active, instrumentor._installed, instrumentor._tracer_provider = True, None, TracerProvider()
    return instrumentor


def test_on_import_every_agent_that_chose_nothing_is_instrumented_for_us(agent_class):
    import pydantic_ai

    agent_class._instrument_default = False
    instrumentor = hooked_instrumentor()
    instrumentor._on_import(pydantic_ai)
    settings = agent_class._instrument_default
    assert settings is instrumentor._installed and settings.version == 6
    instrumentor._uninstrument()
    assert agent_class._instrument_default is False


def test_a_default_someone_else_chose_first_is_left_alone(agent_class):
    import pydantic_ai

    agent_class._instrument_default = True  # e.g. logfire.instrument_pydantic_ai() before our hook ran
    instrumentor = hooked_instrumentor()
    instrumentor._on_import(pydantic_ai)
    assert agent_class._instrument_default is True and instrumentor._installed is None
    instrumentor._uninstrument()
    assert agent_class._instrument_default is True
