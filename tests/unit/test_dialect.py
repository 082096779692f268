"""The copy PostHog receives: AI-span filter, privacy, media, size cap and PostHog's dialect."""

import json
from dataclasses import replace

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Status, StatusCode

from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from posthog_autoinstrument import config
from posthog_autoinstrument.export import dialect
from posthog_autoinstrument.export.dialect import for_posthog, is_ai_span

SETTINGS = config.load({"POSTHOG_API_KEY": "phc_x"})


def span(attributes, events=(), status=Status(StatusCode.UNSET)):
    return ReadableSpan(name="chat m", attributes=attributes, events=events, status=status)


def messages(*texts):
    return json.dumps([{"role": "user", "parts": [{"type": "text", "content": t}]} for t in texts])


def test_ai_span_filter_follows_posthog_acceptance_rule():
    assert is_ai_span(span({"gen_ai.operation.name": "chat"}))
    assert is_ai_span(span({"llm.request.type": "chat"}))
    assert is_ai_span(span({"pydantic_ai.all_messages": "[]"}))
    assert not is_ai_span(span({"http.request.method": "GET", "llm.model_name": "x"}))
    assert not is_ai_span(span({}))


def test_operation_names_are_mapped_to_what_posthog_classifies():
    assert for_posthog(span({"gen_ai.operation.name": "generate_content"}), SETTINGS).attributes["gen_ai.operation.name"] == "chat"
    assert for_posthog(span({"gen_ai.operation.name": "text_completion"}), SETTINGS).attributes["gen_ai.operation.name"] == "chat"
    assert for_posthog(span({"gen_ai.operation.name": "embedding"}), SETTINGS).attributes["gen_ai.operation.name"] == "embeddings"
    assert for_posthog(span({"gen_ai.operation.name": "invoke_agent"}), SETTINGS).attributes["gen_ai.operation.name"] == "invoke_agent"


def test_posthog_properties_added():
    attrs = for_posthog(span({
        "gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 10, "gen_ai.usage.cache_write.input_tokens": 4,
        "gen_ai.usage.reasoning.output_tokens": 3, "gen_ai.request.temperature": 0.1, "gen_ai.request.max_tokens": 9,
        "gen_ai.request.stream": True, "gen_ai.response.finish_reasons": ("length",), "http.response.status_code": 500,
    }), SETTINGS).attributes
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == 4
    assert attrs["$ai_cache_reporting_exclusive"] is False
    assert attrs["$ai_reasoning_tokens"] == 3
    assert (attrs["$ai_temperature"], attrs["$ai_max_tokens"], attrs["$ai_stream"]) == (0.1, 9, True)
    assert attrs["$ai_stop_reason"] == "length"
    assert attrs["$ai_http_status"] == 500
    assert attrs["$process_person_profile"] is False


def test_person_from_environment_or_span():
    with_id = replace(SETTINGS, distinct_id="user-7")
    attrs = for_posthog(span({"gen_ai.operation.name": "chat"}), with_id).attributes
    assert attrs["posthog.distinct_id"] == "user-7" and "$process_person_profile" not in attrs
    attrs = for_posthog(span({"gen_ai.operation.name": "chat", "user.id": "u1"}), with_id).attributes
    assert attrs.get("posthog.distinct_id") is None and "$process_person_profile" not in attrs


def test_privacy_mode_removes_all_content_and_error_text_but_keeps_metadata():
    private = replace(SETTINGS, privacy_mode=True)
    original = span(
        {"gen_ai.operation.name": "chat", "gen_ai.input.messages": messages("secret prompt"),
         "gen_ai.output.messages": messages("secret answer"), "gen_ai.system_instructions": "[]",
         "gen_ai.prompt.0.content": "secret", "gen_ai.prompt.name": "greeting", "input.value": "secret",
         "gen_ai.usage.input_tokens": 3, "gen_ai.tool.definitions": '[{"name":"f"}]', "error.type": "X"},
        events=[Event("exception", {"exception.message": "secret prompt", "exception.type": "X"}), Event("other", {"a": 1})],
        status=Status(StatusCode.ERROR, "secret prompt"),
    )
    copy = for_posthog(original, private)
    dumped = json.dumps(dict(copy.attributes)) + repr([dict(e.attributes) for e in copy.events]) + copy.status.description
    assert "secret" not in dumped
    assert copy.attributes["gen_ai.usage.input_tokens"] == 3
    assert copy.attributes["gen_ai.prompt.name"] == "greeting"
    assert copy.attributes["gen_ai.tool.definitions"] == '[{"name":"f"}]'
    assert [e.name for e in copy.events] == ["exception"] and copy.events[0].attributes["exception.type"] == "X"
    assert original.attributes["gen_ai.input.messages"]  # the original is untouched


def test_credentials_in_tool_definitions_are_redacted():
    tools = json.dumps([{"type": "mcp", "server_url": "https://m", "headers": {"Authorization": "Bearer sk-1"}}])
    attrs = for_posthog(span({"gen_ai.operation.name": "chat", "gen_ai.tool.definitions": tools}), SETTINGS).attributes
    assert "sk-1" not in attrs["gen_ai.tool.definitions"]
    assert json.loads(attrs["gen_ai.tool.definitions"])[0]["server_url"] == "https://m"


SECRETS = ["Bearer abcdef123456", "sk-proj-abcdefgh1234", "api_key=abcdef123456", "AKIAABCDEFGH1234",
           "https://user:pw@proxy.local", "xai-abcdefgh1234", "gsk_abcdefgh1234", "phx_abcdefgh1234"]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(texts=st.lists(st.one_of(st.text(max_size=40), st.sampled_from(SECRETS),
                                st.builds(lambda a, secret, b: a + secret + b, st.text(max_size=8),
                                          st.sampled_from(SECRETS), st.text(max_size=8))), max_size=6),
       header=st.booleans())
def test_the_one_pass_credential_check_scrubs_exactly_what_the_full_scan_does(texts, header):
    # The fast path (one joined search) may only skip spans the attribute-by-attribute scan
    # would leave unchanged.
    attrs = {f"custom.attribute.{i}": text for i, text in enumerate(texts)}
    attrs["gen_ai.input.messages"] = messages("my key is sk-abcdefgh1234")  # content: never scrubbed
    if header:
        attrs["http.request.header.authorization"] = ("Bearer abcdef123456",)
    fast, full = dict(attrs), dict(attrs)
    dialect._scrub_credentials(fast)
    with patch.object(dialect, "_may_hold_credentials", lambda _attrs: True):
        dialect._scrub_credentials(full)
    assert fast == full
    assert not any(secret in str(value) for value in fast.values() if value is not attrs["gen_ai.input.messages"]
                   for secret in ("abcdef123456", "abcdefgh1234", "user:pw"))


def test_inline_media_becomes_a_placeholder_unless_allowed():
    image = "A" * 4000
    value = json.dumps([{"role": "user", "parts": [{"type": "blob", "modality": "image", "mime_type": "image/png", "content": image}]}])
    attrs = for_posthog(span({"gen_ai.operation.name": "chat", "gen_ai.input.messages": value}), SETTINGS).attributes
    (part,) = json.loads(attrs["gen_ai.input.messages"])[0]["parts"]
    assert image not in part["content"] and "image/png" in part["content"] and "3000 bytes" in part["content"]
    kept = for_posthog(span({"gen_ai.operation.name": "chat", "gen_ai.input.messages": value}),
                       replace(SETTINGS, capture_media=True)).attributes
    assert image in kept["gen_ai.input.messages"]


def test_oversized_content_is_truncated_to_valid_json_under_the_cap():
    capped = replace(SETTINGS, max_span_bytes=20_000)
    big = messages("x" * 50_000, "y" * 50_000)
    attrs = for_posthog(span({"gen_ai.operation.name": "chat", "gen_ai.input.messages": big,
                              "gen_ai.output.messages": messages("short")}), capped).attributes
    parsed = json.loads(attrs["gen_ai.input.messages"])
    assert len(parsed) == 2 and parsed[0]["parts"][0]["content"].endswith("...[truncated]")
    assert sum(len(k) + len(v) for k, v in attrs.items() if isinstance(v, str)) <= 20_000
    assert json.loads(attrs["gen_ai.output.messages"])[0]["parts"][0]["content"] == "short"
