"""The conventions' messages in the shapes PostHog's SDKs send (export/posthog_messages.py)."""

from posthog_autoinstrument.export.posthog_messages import embedding_input, input_messages, output_messages
from posthog_autoinstrument.genai import messages as m


def test_text_messages_become_role_and_content_with_the_system_prompt_first():
    history = [m.message("user", [m.text("Say hello")]), m.message("assistant", [m.text("Hi")])]
    assert input_messages(history, [m.text("Be terse.")]) == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Say hello"},
        {"role": "assistant", "content": "Hi"},
    ]


def test_tool_calls_and_results_are_rendered_as_posthog_renders_openai_tools():
    history = [
        m.message("user", [m.text("Weather?")]),
        m.message("assistant", [m.tool_call("call_1", "get_weather", {"city": "Paris"})]),
        m.message("tool", [m.tool_call_response("call_1", {"temp": 21})]),
    ]
    assert input_messages(history) == [
        {"role": "user", "content": "Weather?"},
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
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp":21}'},
    ]


def test_output_is_one_assistant_message_of_typed_items_as_the_sdk_sends_it():
    output = [m.output_message([m.text("Calling"), m.tool_call("call_1", "f", {})], "tool_call")]
    assert output_messages(output) == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Calling"},
                {"type": "function", "id": "call_1", "function": {"name": "f", "arguments": {}}},
            ],
        }
    ]


def test_reasoning_uses_anthropic_blocks_which_posthog_renders_with_thinking():
    output = [m.output_message([m.reasoning("hmm"), m.text("ok"), m.tool_call("t1", "f", {"a": 1})], "tool_call")]
    assert output_messages(output) == [
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm"},
                {"type": "text", "text": "ok"},
                {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
            ],
        }
    ]


def test_images_are_typed_items_by_reference_or_placeholder():
    history = [
        m.message(
            "user",
            [
                m.text("What is this?"),
                m.uri("image", "https://x/cat.png"),
                m.blob("image", "image/png", "[image image/png ~3000 bytes omitted]"),
            ],
        )
    ]
    assert input_messages(history) == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image", "image": "https://x/cat.png"},
                {"type": "image", "image": "[image image/png ~3000 bytes omitted]"},
            ],
        }
    ]


def test_other_shapes_pass_unchanged_and_embeddings_are_their_texts():
    assert input_messages([{"role": "user", "content": "already"}]) == [{"role": "user", "content": "already"}]
    assert input_messages("not a list") is None
    assert embedding_input([m.message("user", [m.text("first")]), m.message("user", [m.text("second")])]) == [
        "first",
        "second",
    ]
