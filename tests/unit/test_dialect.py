"""The copy PostHog receives: AI-span filter, privacy, media, size cap and PostHog's dialect."""

import json
from dataclasses import replace

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Status, StatusCode

from unittest.mock import patch

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from posthog_autoinstrument import config
from posthog_autoinstrument.export import dialect
from posthog_autoinstrument.genai import semconv
from posthog_autoinstrument.export.dialect import for_posthog, is_ai_span

SETTINGS = config.load({"POSTHOG_API_KEY": "phc_x"})


def span(attributes, events=(), status=Status(StatusCode.UNSET)):  # noqa: B008 (immutable)
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
    assert (
        for_posthog(span({"gen_ai.operation.name": "generate_content"}), SETTINGS).attributes["gen_ai.operation.name"]
        == "chat"
    )
    assert (
        for_posthog(span({"gen_ai.operation.name": "text_completion"}), SETTINGS).attributes["gen_ai.operation.name"]
        == "chat"
    )
    assert (
        for_posthog(span({"gen_ai.operation.name": "embedding"}), SETTINGS).attributes["gen_ai.operation.name"]
        == "embeddings"
    )
    assert (
        for_posthog(span({"gen_ai.operation.name": "invoke_agent"}), SETTINGS).attributes["gen_ai.operation.name"]
        == "invoke_agent"
    )


def test_posthog_properties_added():
    attrs = for_posthog(
        span(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.usage.input_tokens": 10,
                "gen_ai.usage.cache_write.input_tokens": 4,
                "gen_ai.usage.reasoning.output_tokens": 3,
                "gen_ai.request.temperature": 0.1,
                "gen_ai.request.max_tokens": 9,
                "gen_ai.request.stream": True,
                "gen_ai.response.finish_reasons": ("length",),
                "http.response.status_code": 500,
            }
        ),
        SETTINGS,
    ).attributes
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
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.input.messages": messages("secret prompt"),
            "gen_ai.output.messages": messages("secret answer"),
            "gen_ai.system_instructions": "[]",
            "gen_ai.prompt.0.content": "secret",
            "gen_ai.prompt.name": "greeting",
            "input.value": "secret",
            "gen_ai.usage.input_tokens": 3,
            "gen_ai.tool.definitions": '[{"name":"f"}]',
            "error.type": "X",
        },
        events=[
            Event("exception", {"exception.message": "secret prompt", "exception.type": "X"}),
            Event("other", {"a": 1}),
        ],
        status=Status(StatusCode.ERROR, "secret prompt"),
    )
    copy = for_posthog(original, private)
    dumped = (
        json.dumps(dict(copy.attributes)) + repr([dict(e.attributes) for e in copy.events]) + copy.status.description
    )
    assert "secret" not in dumped
    assert copy.attributes["gen_ai.usage.input_tokens"] == 3
    assert copy.attributes["gen_ai.prompt.name"] == "greeting"
    assert copy.attributes["$ai_tools"] == [{"type": "function", "function": {"name": "f"}}]
    assert [e.name for e in copy.events] == ["exception"] and copy.events[0].attributes["exception.type"] == "X"
    assert original.attributes["gen_ai.input.messages"]  # the original is untouched


def test_credentials_in_tool_definitions_are_redacted():
    tools = json.dumps([{"type": "mcp", "server_url": "https://m", "headers": {"Authorization": "Bearer sk-1"}}])
    attrs = for_posthog(span({"gen_ai.operation.name": "chat", "gen_ai.tool.definitions": tools}), SETTINGS).attributes
    assert "sk-1" not in json.dumps(attrs["$ai_tools"])
    assert attrs["$ai_tools"][0]["server_url"] == "https://m"


SECRETS = [
    "Bearer abcdef123456",
    "sk-proj-abcdefgh1234",
    "api_key=abcdef123456",
    "AKIAABCDEFGH1234",
    "https://user:pw@proxy.local",
    "xai-abcdefgh1234",
    "gsk_abcdefgh1234",
    "phx_abcdefgh1234",
]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    texts=st.lists(
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(SECRETS),
            st.builds(
                lambda a, secret, b: a + secret + b, st.text(max_size=8), st.sampled_from(SECRETS), st.text(max_size=8)
            ),
        ),
        max_size=6,
    ),
    header=st.booleans(),
)
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
    assert not any(
        secret in str(value)
        for value in fast.values()
        if value is not attrs["gen_ai.input.messages"]
        for secret in ("abcdef123456", "abcdefgh1234", "user:pw")
    )


def test_inline_media_becomes_a_placeholder_unless_allowed():
    image = "A" * 4000
    value = json.dumps(
        [{"role": "user", "parts": [{"type": "blob", "modality": "image", "mime_type": "image/png", "content": image}]}]
    )
    attrs = for_posthog(span({"gen_ai.operation.name": "chat", "gen_ai.input.messages": value}), SETTINGS).attributes
    (item,) = attrs["$ai_input"][0]["content"]
    assert item["type"] == "image" and image not in item["image"]
    assert "image/png" in item["image"] and "3000 bytes" in item["image"]
    kept = for_posthog(
        span({"gen_ai.operation.name": "chat", "gen_ai.input.messages": value}), replace(SETTINGS, capture_media=True)
    ).attributes
    assert kept["$ai_input"][0]["content"][0]["image"] == f"data:image/png;base64,{image}"


def test_oversized_content_is_truncated_to_valid_json_under_the_cap():
    capped = replace(SETTINGS, max_span_bytes=20_000)
    big = messages("x" * 50_000, "y" * 50_000)
    attrs = for_posthog(
        span(
            {"gen_ai.operation.name": "chat", "gen_ai.input.messages": big, "gen_ai.output.messages": messages("short")}
        ),
        capped,
    ).attributes
    parsed = attrs["$ai_input"]
    assert len(parsed) == 2 and parsed[0]["content"].endswith("...[truncated]")
    assert len(json.dumps(dict(attrs))) <= 20_000
    assert attrs["$ai_output_choices"][0]["content"] == [{"type": "text", "text": "short"}]


def test_the_cap_measures_what_media_replacement_and_completions_leave(monkeypatch):
    # The size is measured with the credentials check; steps after it that grow the attributes
    # (a placeholder longer than a tiny image, an SDK's completion) must be measured again.
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from posthog_autoinstrument.genai import self_tracing

    capped = replace(SETTINGS, max_span_bytes=1000)
    tiny_image = {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "QQ=="}
    text = {"type": "text", "content": "x" * 800}
    value = json.dumps([{"role": "user", "parts": [text, tiny_image]}])
    attrs = for_posthog(span({"gen_ai.operation.name": "chat", "gen_ai.input.messages": value}), capped).attributes
    assert attrs["$ai_input"][0]["content"][0]["text"].endswith("...[truncated]")

    monkeypatch.setattr(self_tracing, "_exact", {})

    monkeypatch.setattr(self_tracing, "_resolved", {})  # what was looked up with the registrations replaced
    self_tracing.register("example.sdk", lambda attributes: attributes.update({"example.output": "y" * 1500}))
    grown = ReadableSpan(
        name="chat m",
        attributes={"gen_ai.operation.name": "chat"},
        status=Status(StatusCode.UNSET),
        instrumentation_scope=InstrumentationScope("example.sdk"),
    )
    assert for_posthog(grown, capped).attributes["example.output"] == "y" * 1024 + "...[truncated]"


# -- PostHog's own property names (issue 17, items 1 and 3 to 6) ------------------------------


def test_tools_are_sent_as_the_structured_list_posthog_sdk_sends():
    definitions = json.dumps(
        [
            {"type": "function", "name": "get_weather", "description": "Weather", "parameters": {"type": "object"}},
            {"type": "web_search"},
        ]
    )
    attrs = for_posthog(
        span({"gen_ai.operation.name": "chat", "gen_ai.tool.definitions": definitions}), SETTINGS
    ).attributes
    assert attrs["$ai_tools"] == [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object"}},
        },
        {"type": "web_search"},
    ]
    # One branch of PostHog's mapping would overwrite $ai_tools from the semconv key.
    assert "gen_ai.tool.definitions" not in attrs


def test_tools_survive_the_otlp_encoding_as_arrays_and_objects():
    from posthog_autoinstrument.export.otlp import encode_request
    from tests.servers.otlp_decode import decode_export

    schema = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 2**70, "default": None}}}
    definitions = json.dumps([{"type": "function", "name": "f", "parameters": schema}])
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.trace import SpanContext

    original = ReadableSpan(
        name="chat m",
        context=SpanContext(1, 2, False),
        resource=Resource({}),
        start_time=1,
        end_time=2,
        attributes={"gen_ai.operation.name": "chat", "gen_ai.tool.definitions": definitions},
    )
    (decoded,) = decode_export(encode_request([for_posthog(original, SETTINGS)]))
    assert decoded["attributes"]["$ai_tools"] == [
        {
            "type": "function",
            "function": {
                "name": "f",
                "parameters": {"type": "object", "properties": {"n": {"type": "integer", "maximum": str(2**70)}}},
            },
        }
    ]


def test_time_to_first_token_is_posthogs_property_in_seconds():
    attrs = for_posthog(
        span(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.stream": True,
                "gen_ai.response.time_to_first_chunk": 0.25,
            }
        ),
        SETTINGS,
    ).attributes
    assert attrs["$ai_time_to_first_token"] == 0.25


def test_groups_are_an_object():
    grouped = replace(SETTINGS, groups=(("company", "acme"),))
    attrs = for_posthog(span({"gen_ai.operation.name": "chat"}), grouped).attributes
    assert attrs["$groups"] == {"company": "acme"}


def test_the_library_is_named_on_the_span():
    from posthog_autoinstrument import __version__

    attrs = for_posthog(span({"gen_ai.operation.name": "chat"}), SETTINGS).attributes
    assert (attrs["$ai_lib"], attrs["$ai_lib_version"], attrs["$lib_version"]) == (
        "posthog-autoinstrument",
        __version__,
        __version__,
    )


def test_http_status_200_on_success_and_left_to_capture_on_failure():
    ok = for_posthog(span({"gen_ai.operation.name": "chat"}), SETTINGS).attributes
    assert ok["$ai_http_status"] == 200
    known = for_posthog(span({"gen_ai.operation.name": "embeddings", "http.response.status_code": 201}), SETTINGS)
    assert known.attributes["$ai_http_status"] == 201
    failed = for_posthog(span({"gen_ai.operation.name": "chat"}, status=Status(StatusCode.ERROR, "boom")), SETTINGS)
    assert "$ai_http_status" not in failed.attributes
    step = for_posthog(span({"gen_ai.operation.name": "invoke_agent"}), SETTINGS).attributes
    assert "$ai_http_status" not in step


def test_base_url_is_the_full_url_and_server_address_does_not_overwrite_it():
    attrs = for_posthog(
        span(
            {
                "gen_ai.operation.name": "chat",
                "server.address": "127.0.0.1",
                "server.port": 8080,
                "posthog_autoinstrument.base_url": "http://127.0.0.1:8080/v1/",
            }
        ),
        SETTINGS,
    ).attributes
    assert attrs["$ai_base_url"] == "http://127.0.0.1:8080/v1/"
    assert "server.address" not in attrs and "posthog_autoinstrument.base_url" not in attrs
    default_port = for_posthog(
        span({"gen_ai.operation.name": "chat", "server.address": "api.mistral.ai", "server.port": 443}), SETTINGS
    ).attributes
    assert default_port["$ai_base_url"] == "https://api.mistral.ai"
    unknown_scheme = for_posthog(
        span({"gen_ai.operation.name": "chat", "server.address": "h", "server.port": 9}), SETTINGS
    ).attributes
    assert unknown_scheme["server.address"] == "h" and "$ai_base_url" not in unknown_scheme


def _priced_provider(provider):
    from tests.posthog_ingest import event_from_span, resolve_cost_provider

    copy = for_posthog(span({"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider}), SETTINGS)
    sent = copy.attributes["gen_ai.provider.name"]
    event = event_from_span(
        {
            "name": "chat m",
            "trace_id": "0" * 32,
            "span_id": "1" * 16,
            "parent_span_id": None,
            "status_code": "UNSET",
            "status_message": "",
            "start_ns": 1,
            "end_ns": 2,
            "attributes": dict(copy.attributes),
            "events": [],
            "resource": {},
            "scope_version": "",
        }
    )
    assert event["properties"]["$ai_provider"] == sent
    return resolve_cost_provider(sent)


# Providers PostHog has no price row of its own for (its cost matcher then uses the model's
# "default" row, the right outcome): local models, IBM, and OpenRouter (aliased to "default").
UNPRICED_PROVIDERS = {"ollama", "ibm.watsonx.ai", "openrouter"}


@pytest.mark.parametrize(
    "provider",
    sorted(
        {v for k, v in vars(semconv.Provider).items() if k.isupper()} | set(getattr(dialect, "POSTHOG_PROVIDERS", ()))
    ),
)
def test_every_provider_we_emit_is_one_posthog_prices_with(provider):
    from tests.posthog_ingest import CANONICAL_PROVIDERS

    resolved = _priced_provider(provider)
    if provider in UNPRICED_PROVIDERS:
        assert resolved == "default"
    else:
        assert resolved in CANONICAL_PROVIDERS and resolved != "default", (provider, resolved)


def test_gemini_is_named_as_posthog_sdk_names_it():
    assert (
        for_posthog(span({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "gcp.gemini"}), SETTINGS).attributes[
            "gen_ai.provider.name"
        ]
        == "gemini"
    )


def test_messages_are_sent_in_posthogs_shape_and_not_as_the_semconv_keys():
    attrs = for_posthog(
        span(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.system_instructions": '[{"type":"text","content":"Be terse."}]',
                "gen_ai.input.messages": messages("Say hello"),
                "gen_ai.output.messages": '[{"role":"assistant","parts":[{"type":"text","content":"Hi"}],"finish_reason":"stop"}]',
            }
        ),
        SETTINGS,
    ).attributes
    assert attrs["$ai_input"] == [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Say hello"}]
    assert attrs["$ai_output_choices"] == [{"role": "assistant", "content": [{"type": "text", "text": "Hi"}]}]
    # PostHog would write $ai_input over ours from these, and prepend the system prompt again.
    assert not {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"} & set(attrs)
    from tests.posthog_ingest import event_from_span

    event = event_from_span(
        {
            "name": "chat m",
            "trace_id": "0" * 32,
            "span_id": "1" * 16,
            "parent_span_id": None,
            "status_code": "UNSET",
            "status_message": "",
            "start_ns": 1,
            "end_ns": 2,
            "attributes": dict(attrs),
            "events": [],
            "resource": {},
            "scope_version": "",
        }
    )
    assert event["properties"]["$ai_input"] == attrs["$ai_input"]


def test_embedding_input_is_its_texts():
    attrs = for_posthog(
        span({"gen_ai.operation.name": "embeddings", "gen_ai.input.messages": messages("a", "b")}), SETTINGS
    ).attributes
    assert attrs["$ai_input"] == ["a", "b"]
