"""What the provider end-to-end tests share: an unmodified app (``apps/<name>.py``) run with the
same scenarios under ``posthog-instrument`` and plainly, and what a stream the app left early or
that failed midway must leave behind."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from tests.conftest import APPS, LAUNCHER, AppRun, clean_env, run
from tests.e2e.traces import posthog_input, posthog_output


# What the provider apps ask in their plain chat and tool call: the same prompt, settings and tool.
SAY_HELLO = [  # $ai_input, the system prompt first
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello"},
]
CHAT_SETTINGS = {
    "gen_ai.request.temperature": 0.3,
    "gen_ai.request.top_p": 0.9,
    "gen_ai.request.max_tokens": 50,
    "gen_ai.request.seed": 7,
    "gen_ai.request.stop_sequences": ["END"],
    "gen_ai.request.frequency_penalty": 0.1,
    "gen_ai.request.presence_penalty": 0.2,
}
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def text_output(text: str, reasoning: str | None = None) -> list:
    """``$ai_output_choices`` of an answer that is one text, after the model's reasoning if any."""
    items = [{"type": "text", "text": text}]
    if reasoning is not None:
        items.insert(0, {"type": "thinking", "thinking": reasoning})
    return [{"role": "assistant", "content": items}]


def app_env(posthog, own_prefixes, **provider: str) -> dict:
    """The test environment without the provider SDK's own variables (``own_prefixes``, as for
    ``str.startswith``), with the ones given and those that send to the PostHog stand-in."""
    env = {k: v for k, v in clean_env().items() if not k.startswith(own_prefixes)}
    env.update(
        provider, POSTHOG_API_KEY="phc_test_project_token", POSTHOG_HOST=posthog.host, POSTHOG_EXPORT_INTERVAL="0.05"
    )
    return env


def run_scenarios(app: str, scenarios, env: dict, instrumented: bool = True) -> AppRun:
    script = [str(APPS / f"{app}.py"), *scenarios]
    return run([LAUNCHER, "python", *script] if instrumented else [sys.executable, *script], env)


def run_both(app: str, scenarios, env: dict) -> AppRun:
    """Run instrumented, then plainly; both succeed and the app cannot tell the difference."""
    result = run_scenarios(app, scenarios, env)
    assert result.returncode == 0, result.stderr
    plain = run_scenarios(app, scenarios, env, instrumented=False)
    assert plain.returncode == 0, plain.stderr
    assert result.stdout == plain.stdout
    return result


@dataclass
class Recorded:
    """One app run's output and spans, for module fixtures that run every scenario at once."""

    stdout: str
    spans: list
    requests: list  # what the provider's stand-in received, both runs
    steps: list = field(default_factory=list)  # $ai_span steps (reranks), when split from the model calls


def record(app: str, scenarios, env: dict, posthog, provider, span_count: int) -> Recorded:
    """``run_both``, then exactly ``span_count`` spans accepted by PostHog."""
    result = run_both(app, scenarios, env)
    spans = posthog.wait_for_spans(span_count)
    assert posthog.rejections == []
    assert len(posthog.spans) == span_count, [(s["scope_name"], s["name"]) for s in posthog.spans]
    return Recorded(result.stdout, spans, provider.requests)


def assert_has(attrs: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert attrs[key] == value, key


def assert_left_early(span: dict, received: str | None) -> None:
    """A stream the app stopped reading: ended, not an error, with the text received and no usage
    (the final chunk that carries it never came)."""
    assert span["status_code"] != "ERROR"
    assert "gen_ai.usage.output_tokens" not in span["attributes"]
    items = posthog_output(span)[0]["content"]
    assert items == ([{"type": "text", "text": received}] if received else [])


def assert_failed_midway(span: dict, error_type: str, received: str = "Hello from") -> None:
    """A stream whose connection broke: an error whose type ends with ``error_type`` (some SDKs
    bring their own copy of httpx), with the text received before."""
    assert span["status_code"] == "ERROR"
    assert span["attributes"]["error.type"].endswith(error_type), span["attributes"]["error.type"]
    assert [e["name"] for e in span["events"]] == ["exception"]
    assert posthog_output(span)[0]["content"] == [{"type": "text", "text": received}]


def assert_embeddings(
    span: dict,
    model: str,
    input_tokens: int | None,
    dimensions: int,
    texts: tuple | None = ("first text", "second text"),
) -> None:
    """An embeddings call for ``texts`` (the apps' usual two): its tokens as the provider reported
    them (``None``: it reported none, and none are estimated) and the vectors' size."""
    attrs = span["attributes"]
    assert span["name"] == f"embeddings {model}"
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert attrs.get("gen_ai.usage.input_tokens") == input_tokens
    assert attrs["gen_ai.embeddings.dimension.count"] == dimensions
    if texts is not None:
        assert posthog_input(span) == list(texts)
