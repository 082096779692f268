"""Reading a body the app relayed itself: server-sent events, and JSON read like SDK models."""

from posthog_autoinstrument.instrumentation._raw_response import loose, relayed_stream_requested, server_sent_events


def test_server_sent_events_are_read_as_the_sse_format_defines_them():
    body = (
        b'event: message_start\r\ndata: {"type": "message_start"}\r\n\r\n'
        b": a comment\n"
        b'data: {"a":\ndata: 1}\n\n'  # one event's data over two lines
        b'data:{"b": 2}\n\n'  # no space after the colon
        b"data: not json\n\n"
        b"data: [DONE]\n\n"
        b'data: {"last": true}'
    )  # the body ended without the blank line
    assert list(server_sent_events(body)) == [{"type": "message_start"}, {"a": 1}, {"b": 2}, {"last": True}]


def test_loose_json_reads_like_the_sdk_model_with_its_defaults():
    chunk = loose({"choices": [{"index": 0, "delta": {"content": "hi"}}], "usage": None})
    assert chunk.__dict__["model"] is None and chunk.model is None  # left out of the JSON
    (choice,) = chunk.choices
    assert choice.delta.content == "hi" and choice.delta.tool_calls is None
    assert not hasattr(chunk, "__pydantic_fields_set__")


def test_only_with_streaming_response_calls_are_relayable():
    assert relayed_stream_requested({"extra_headers": {"X-Stainless-Raw-Response": "stream"}})
    assert not relayed_stream_requested({"extra_headers": {"X-Stainless-Raw-Response": "raw"}})
    assert not relayed_stream_requested({"extra_headers": None})
    assert not relayed_stream_requested({})
