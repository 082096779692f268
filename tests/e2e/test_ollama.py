"""End to end: an unmodified Ollama app under ``posthog-instrument``, against a loopback Ollama
(JSON and NDJSON streams) and the PostHog stand-in. Several scenarios run per app run; spans are
told apart by model name."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import APPS, LAUNCHER, clean_env, run
from tests.servers.ollama_server import FakeOllama

REPLY = "Hello from fake Ollama"
SYSTEM_AND_USER = [
    {"role": "system", "parts": [{"type": "text", "content": "You are terse."}]},
    {"role": "user", "parts": [{"type": "text", "content": "Say hello"}]},
]


@pytest.fixture
def fake_ollama():
    with FakeOllama() as server:
        yield server


@pytest.fixture
def run_ollama(fake_ollama, posthog):
    def runner(*scenarios: str, instrumented: bool = True):
        env = {k: v for k, v in clean_env().items() if not k.startswith("OLLAMA_")}
        env.update(OLLAMA_HOST=fake_ollama.host, POSTHOG_API_KEY="phc_test_project_token", POSTHOG_HOST=posthog.host,
                   POSTHOG_EXPORT_INTERVAL="0.05")
        script = [str(APPS / "ollama_app.py"), *scenarios]
        return run([LAUNCHER, "python", *script] if instrumented else [sys.executable, *script], env)

    return runner


def run_both(runner, *scenarios: str):
    result = runner(*scenarios)
    plain = runner(*scenarios, instrumented=False)
    assert result.returncode == plain.returncode == 0, result.stderr
    assert result.stdout == plain.stdout
    return result


def content(span: dict, key: str):
    return json.loads(span["attributes"][key])


def by_model(spans: list, model: str) -> dict:
    found = [s for s in spans if s["attributes"].get("gen_ai.request.model") == model]
    assert len(found) == 1, [s["name"] for s in spans]
    return found[0]


def reply(finish_reason: str = "stop", *extra_parts: dict) -> list:
    return [{"role": "assistant", "parts": [*extra_parts, {"type": "text", "content": REPLY}], "finish_reason": finish_reason}]


def test_module_functions_clients_streams_and_embeddings(run_ollama, posthog, fake_ollama):
    run_both(run_ollama, "module_chat", "imported_functions", "client_tools", "chat_stream", "generate_stream", "images", "embed")
    spans = posthog.spans
    assert len(spans) == 10
    assert posthog.rejections == []

    chat = by_model(spans, "llama3.2")
    attrs = chat["attributes"]
    assert chat["name"] == "chat llama3.2"
    assert attrs["gen_ai.provider.name"] == "ollama"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.response.model"] == "llama3.2"
    assert (attrs["gen_ai.request.temperature"], attrs["gen_ai.request.max_tokens"], attrs["gen_ai.request.top_p"],
            attrs["gen_ai.request.top_k"], attrs["gen_ai.request.seed"]) == (0.3, 50, 0.9, 40, 7)
    assert attrs["gen_ai.request.stop_sequences"] == ["END"]
    assert attrs["server.address"] == "127.0.0.1" and attrs["server.port"] == fake_ollama.port
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7)  # prompt_eval_count, eval_count
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["$ai_stream"] is False
    assert content(chat, "gen_ai.input.messages") == SYSTEM_AND_USER
    assert content(chat, "gen_ai.output.messages") == reply()

    # Names bound with ``from ollama import ...`` when the app started are recorded too.
    assert by_model(spans, "imported-model")["attributes"]["gen_ai.usage.output_tokens"] == 7
    generate = by_model(spans, "imported-generate")
    assert generate["name"] == "text_completion imported-generate"
    assert generate["attributes"]["gen_ai.operation.name"] == "chat"  # the PostHog dialect's mapping
    assert generate["attributes"]["gen_ai.output.type"] == "json"
    assert content(generate, "gen_ai.system_instructions") == [{"type": "text", "content": "Be brief."}]
    assert content(generate, "gen_ai.output.messages") == reply()

    tools = by_model(spans, "tools-model")
    assert tools["attributes"]["gen_ai.response.finish_reasons"] == ["tool_call"]
    assert content(tools, "gen_ai.tool.definitions") == [{
        "type": "function", "name": "get_weather", "description": "Weather for a city.",
        "parameters": {"type": "object", "required": ["city"],
                       "properties": {"city": {"type": "string", "description": "The city to look up"}}}}]
    assert content(tools, "gen_ai.output.messages")[0]["parts"] == [
        {"type": "tool_call", "name": "get_weather", "arguments": {"city": "Paris"}}]
    followup = content(by_model(spans, "tools-followup"), "gen_ai.input.messages")
    assert followup[1]["parts"] == [{"type": "tool_call", "name": "get_weather", "arguments": {"city": "Paris"}}]
    assert followup[2] == {"role": "tool", "name": "get_weather", "parts": [{"type": "tool_call_response", "response": "sunny"}]}

    stream = by_model(spans, "stream-model")
    attrs = stream["attributes"]
    assert attrs["gen_ai.request.stream"] is True and attrs["$ai_stream"] is True
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7)  # from the done part
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0
    assert content(stream, "gen_ai.output.messages") == reply("stop", {"type": "reasoning", "content": "Greeting requested."})

    generate_stream = by_model(spans, "generate-stream")
    assert generate_stream["attributes"]["gen_ai.request.max_tokens"] == 4  # from an ollama.Options
    assert generate_stream["attributes"]["gen_ai.response.finish_reasons"] == ["length"]
    assert content(generate_stream, "gen_ai.output.messages") == reply("length")

    image = content(by_model(spans, "llava"), "gen_ai.input.messages")[0]["parts"][1]
    assert image["type"] == "blob" and image["modality"] == "image" and "omitted" in image["content"]

    embed = by_model(spans, "nomic-embed-text")
    assert embed["name"] == "embeddings nomic-embed-text"
    assert embed["attributes"]["gen_ai.operation.name"] == "embeddings"
    assert embed["attributes"]["gen_ai.usage.input_tokens"] == 8
    assert embed["attributes"]["gen_ai.embeddings.dimension.count"] == 8
    legacy = by_model(spans, "legacy-embed")
    assert legacy["attributes"]["gen_ai.embeddings.dimension.count"] == 8
    assert "gen_ai.usage.input_tokens" not in legacy["attributes"]  # /api/embeddings reports none


def test_async_client_early_exit_and_errors(run_ollama, posthog):
    result = run_both(run_ollama, "async_all", "stream_break", "stream_error", "error_404")
    assert "error_404 404 model 'missing-model' not found" in result.stdout
    spans = posthog.spans
    assert len(spans) == 7

    for model in ("async-model", "async-stream", "async-generate"):
        attrs = by_model(spans, model)["attributes"]
        assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7), model
    assert content(by_model(spans, "async-stream"), "gen_ai.output.messages") == reply()
    assert by_model(spans, "async-embed")["attributes"]["gen_ai.usage.input_tokens"] == 4

    broke = by_model(spans, "break-model")
    assert broke["status_code"] != "ERROR"
    assert "gen_ai.usage.output_tokens" not in broke["attributes"]
    assert content(broke, "gen_ai.output.messages")[0]["parts"] == [{"type": "text", "content": "Hello from"}]

    failed = by_model(spans, "stream-error")
    assert failed["status_code"] == "ERROR"
    assert failed["attributes"]["error.type"] == "ollama.ResponseError"
    assert content(failed, "gen_ai.output.messages")[0]["parts"] == [{"type": "text", "content": "Hello from"}]

    missing = by_model(spans, "missing-model")
    assert missing["status_code"] == "ERROR"
    assert missing["attributes"]["error.type"] == "ollama.ResponseError"
    assert missing["attributes"]["$ai_http_status"] == 404
