"""End to end: an unmodified Ollama app under ``posthog-instrument``, against a loopback Ollama
(JSON and NDJSON streams) and the PostHog stand-in. Several scenarios run per app run; spans are
told apart by model name."""

from __future__ import annotations

import pytest

from tests.e2e.providers import SAY_HELLO, app_env, assert_embeddings, assert_left_early, run_both, text_output
from tests.e2e.traces import by_model, tools as tools_of, posthog_tool, posthog_input, posthog_output
from tests.servers.ollama_server import FakeOllama

REPLY = "Hello from fake Ollama"


@pytest.fixture
def fake_ollama():
    with FakeOllama() as server:
        yield server


@pytest.fixture
def run_ollama(fake_ollama, posthog):
    env = app_env(posthog, "OLLAMA_", OLLAMA_HOST=fake_ollama.host)
    return lambda *scenarios: run_both("ollama_app", scenarios, env)


def test_module_functions_clients_streams_and_embeddings(run_ollama, posthog, fake_ollama):
    run_ollama("module_chat", "imported_functions", "client_tools", "chat_stream", "generate_stream", "images", "embed")
    spans = posthog.spans
    assert len(spans) == 10
    assert posthog.rejections == []

    chat = by_model(spans, "llama3.2")
    attrs = chat["attributes"]
    assert chat["name"] == "chat llama3.2"
    assert attrs["gen_ai.provider.name"] == "ollama"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.response.model"] == "llama3.2"
    assert (
        attrs["gen_ai.request.temperature"],
        attrs["gen_ai.request.max_tokens"],
        attrs["gen_ai.request.top_p"],
        attrs["gen_ai.request.top_k"],
        attrs["gen_ai.request.seed"],
    ) == (0.3, 50, 0.9, 40, 7)
    assert attrs["gen_ai.request.stop_sequences"] == ["END"]
    assert attrs["server.address"] == "127.0.0.1" and attrs["server.port"] == fake_ollama.port
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (
        11,
        7,
    )  # prompt_eval_count, eval_count
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["$ai_stream"] is False
    assert posthog_input(chat) == SAY_HELLO
    assert posthog_output(chat) == text_output(REPLY)

    # Names bound with ``from ollama import ...`` when the app started are recorded too.
    assert by_model(spans, "imported-model")["attributes"]["gen_ai.usage.output_tokens"] == 7
    generate = by_model(spans, "imported-generate")
    assert generate["name"] == "text_completion imported-generate"
    assert generate["attributes"]["gen_ai.operation.name"] == "chat"  # the PostHog dialect's mapping
    assert generate["attributes"]["gen_ai.output.type"] == "json"
    assert posthog_input(generate)[0] == {"role": "system", "content": "Be brief."}
    assert posthog_output(generate) == text_output(REPLY)

    tools = by_model(spans, "tools-model")
    assert tools["attributes"]["gen_ai.response.finish_reasons"] == ["tool_call"]
    assert tools_of(tools) == [
        posthog_tool(
            {
                "type": "function",
                "name": "get_weather",
                "description": "Weather for a city.",
                "parameters": {
                    "type": "object",
                    "required": ["city"],
                    "properties": {"city": {"type": "string", "description": "The city to look up"}},
                },
            }
        )
    ]
    assert posthog_output(tools)[0]["content"] == [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    followup = posthog_input(by_model(spans, "tools-followup"))
    assert followup[1]["content"] == [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    assert followup[2] == {"role": "tool", "name": "get_weather", "content": "sunny"}

    stream = by_model(spans, "stream-model", stream=True)
    attrs = stream["attributes"]
    assert attrs["gen_ai.request.stream"] is True and attrs["$ai_stream"] is True
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7)  # from the done part
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0
    assert posthog_output(stream) == text_output(REPLY, reasoning="Greeting requested.")

    generate_stream = by_model(spans, "generate-stream", stream=True)
    assert generate_stream["attributes"]["gen_ai.request.max_tokens"] == 4  # from an ollama.Options
    assert generate_stream["attributes"]["gen_ai.response.finish_reasons"] == ["length"]
    assert posthog_output(generate_stream) == text_output(REPLY)

    image = posthog_input(by_model(spans, "llava"))[0]["content"][1]
    assert image["type"] == "image" and "omitted" in image["image"]

    assert_embeddings(by_model(spans, "nomic-embed-text"), "nomic-embed-text", 8, 8)
    # /api/embeddings reports no tokens.
    assert_embeddings(by_model(spans, "legacy-embed"), "legacy-embed", None, 8, texts=("first text",))


def test_async_client_early_exit_and_errors(run_ollama, posthog):
    result = run_ollama("async_all", "stream_break", "stream_error", "error_404")
    assert "error_404 404 model 'missing-model' not found" in result.stdout
    spans = posthog.spans
    assert len(spans) == 7

    for model, stream in (("async-model", False), ("async-stream", True), ("async-generate", False)):
        attrs = by_model(spans, model, stream)["attributes"]
        assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7), model
    assert posthog_output(by_model(spans, "async-stream", stream=True)) == text_output(REPLY)
    assert by_model(spans, "async-embed")["attributes"]["gen_ai.usage.input_tokens"] == 4

    assert_left_early(by_model(spans, "break-model", stream=True), "Hello from")

    failed = by_model(spans, "stream-error", stream=True)
    assert failed["status_code"] == "ERROR"
    assert failed["attributes"]["error.type"] == "ollama.ResponseError"
    assert posthog_output(failed)[0]["content"] == [{"type": "text", "text": "Hello from"}]

    missing = by_model(spans, "missing-model")
    assert missing["status_code"] == "ERROR"
    assert missing["attributes"]["error.type"] == "ollama.ResponseError"
    assert missing["attributes"]["$ai_http_status"] == 404
