"""MCP: the translation of the protocol's messages (formats/mcp.py), the trace context carried
across the protocol (genai.remote_parent, the export's remote-parent rule), and the adapter's rule of
one tool step per call."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from posthog_autoinstrument import config
from posthog_autoinstrument.export import PostHogSpanProcessor
from posthog_autoinstrument.formats import mcp as f
from posthog_autoinstrument.genai import self_tracing
from posthog_autoinstrument.genai.remote_parent import is_remote_ai_parent, with_ai_parent_mark
from tests.servers.otlp_decode import decode_export
from tests.unit.test_export import RecordingSender

# -- formats/mcp.py --------------------------------------------------------------------------


def test_a_text_tool_result_is_its_text():
    result = {
        "content": [{"type": "text", "text": "Sunny in Paris"}],
        "structuredContent": {"result": "Sunny in Paris"},
        "isError": False,
    }
    assert f.tool_result(result) == f.ToolOutcome("Sunny in Paris")
    two = {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    assert f.tool_result(two).output == "a\nb"


def test_structured_content_stands_in_only_for_missing_content():
    assert f.tool_result({"content": [], "structuredContent": {"temperature": 21}}).output == {"temperature": 21}


def test_an_error_result_gives_its_text_as_the_error():
    result = {"content": [{"type": "text", "text": "cannot do that"}], "isError": True}
    assert f.tool_result(result) == f.ToolOutcome("cannot do that", True, "cannot do that")


def test_media_and_resources_in_results_are_placeholders_never_data():
    data = base64.b64encode(b"x" * 300).decode()
    blocks = [
        {"type": "text", "text": "here"},
        {"type": "image", "data": data, "mimeType": "image/png"},
        {"type": "resource", "resource": {"uri": "file:///a.txt", "text": "hello"}},
        {"type": "resource", "resource": {"uri": "file:///b.bin", "blob": data, "mimeType": "application/pdf"}},
        {"type": "resource_link", "uri": "file:///c", "name": "c"},
    ]
    assert f.content_value(blocks) == [
        "here",
        {"type": "image", "mime_type": "image/png", "size": 300},
        {"type": "resource", "uri": "file:///a.txt", "text": "hello"},
        {"type": "resource", "uri": "file:///b.bin", "mime_type": "application/pdf", "size": 300},
        {"type": "resource_link", "uri": "file:///c", "name": "c"},
    ]


def test_resource_contents():
    assert f.resource_contents({"contents": [{"uri": "greeting://ada", "text": "Hello, ada!"}]}) == "Hello, ada!"
    data = base64.b64encode(b"\x00" * 6).decode()
    both = {"contents": [{"uri": "a://1", "text": "one"}, {"uri": "a://2", "blob": data, "mimeType": "image/png"}]}
    assert f.resource_contents(both) == [
        {"uri": "a://1", "text": "one"},
        {"uri": "a://2", "type": "blob", "mime_type": "image/png", "size": 6},
    ]


def test_prompt_messages_and_tool_names():
    prompt = {
        "messages": [
            {"role": "user", "content": {"type": "text", "text": "Review x = 1"}},
            {"role": "assistant", "content": [{"type": "text", "text": "Sure"}]},
        ]
    }
    assert f.prompt_messages(prompt) == [
        {"role": "user", "content": "Review x = 1"},
        {"role": "assistant", "content": "Sure"},
    ]
    assert f.tool_names({"tools": [{"name": "get_weather", "inputSchema": {}}, {"name": "ask"}]}) == [
        "get_weather",
        "ask",
    ]


def test_the_sdk_models_read_in_their_wire_shape():
    types = pytest.importorskip("mcp.types")
    result = types.CallToolResult(content=[types.TextContent(type="text", text="boom")], is_error=True)
    assert f.tool_result(result) == f.ToolOutcome("boom", True, "boom")


def test_steps_are_named_after_tools_and_prompts_never_resource_uris():
    assert f.step_target("tools/call", "get_weather") == "get_weather"
    assert f.step_target("prompts/get", "review") == "review"
    assert f.step_target("resources/read", "file:///home/ada/notes.txt") is None


def test_the_sdks_own_spans_are_left_out_of_posthogs_copy():
    from posthog_autoinstrument.instrumentation import mcp  # noqa: F401  (registers the completion)

    complete = self_tracing.completion_for(f.SDK_SCOPE)
    assert complete is f.complete_sdk_span
    assert complete({"gen_ai.operation.name": "execute_tool", "mcp.method.name": "tools/call"}) is self_tracing.NOT_AI


# -- the trace context across the protocol ----------------------------------------------------

SPAN_ID = 0x00F067AA0BA902B7


def _remote(span_id=SPAN_ID, trace_state=None, remote=True) -> SpanContext:
    return SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, span_id, remote, TraceFlags(1), trace_state or TraceState())


def test_a_parent_marked_by_the_caller_is_a_remote_ai_parent():
    marked = with_ai_parent_mark(_remote(remote=False))
    assert marked.trace_state.get("posthog") == "00f067aa0ba902b7"
    assert is_remote_ai_parent(_remote(trace_state=marked.trace_state))
    assert not is_remote_ai_parent(_remote())  # a web request's traceparent: no mark
    assert not is_remote_ai_parent(_remote(span_id=SPAN_ID + 1, trace_state=marked.trace_state))  # a grandparent's
    assert not is_remote_ai_parent(_remote(remote=False, trace_state=marked.trace_state))
    assert not is_remote_ai_parent(None)
    # Other vendors' entries stay; an older mark of ours is replaced.
    state = TraceState([("vendor", "v"), ("posthog", "0000000000000001")])
    again = with_ai_parent_mark(_remote(trace_state=state))
    assert again.trace_state.get("vendor") == "v" and again.trace_state.get("posthog") == "00f067aa0ba902b7"


def test_the_export_keeps_a_marked_remote_parent_and_cuts_any_other():
    sender = RecordingSender()
    settings = replace(config.load({"POSTHOG_API_KEY": "phc_x"}), schedule_delay=0.01, flush_timeout=2.0)
    processor = PostHogSpanProcessor(sender, settings)
    marked = with_ai_parent_mark(_remote())
    for span_id, parent in ((11, _remote(trace_state=marked.trace_state)), (12, _remote())):
        context = SpanContext(marked.trace_id, span_id, False, TraceFlags(1))
        processor.on_end(
            ReadableSpan(
                name=f"step {span_id}",
                context=context,
                parent=parent,
                start_time=1,
                end_time=2,
                attributes={"gen_ai.operation.name": "execute_tool"},
            )
        )
    assert processor.force_flush(2000)
    processor.shutdown()
    parents = {span["name"]: span["parent_span_id"] for body in sender.bodies for span in decode_export(body)}
    assert parents == {"step 11": "00f067aa0ba902b7", "step 12": None}


# -- the adapter ------------------------------------------------------------------------------


def _tracer():
    return TracerProvider().get_tracer("test")


def test_a_framework_tool_step_records_the_call_itself():
    from posthog_autoinstrument.instrumentation.mcp import _records_request

    tracer = _tracer()
    tool = tracer.start_span("execute_tool get_weather", attributes={"gen_ai.operation.name": "execute_tool"})
    listing = tracer.start_span("mcp_list_tools weather", attributes={"gen_ai.operation.name": "mcp_list_tools"})
    agent = tracer.start_span("invoke_agent Weather", attributes={"gen_ai.operation.name": "invoke_agent"})
    assert _records_request(tool, "tools/call") and not _records_request(tool, "resources/read")
    assert _records_request(listing, "tools/list") and not _records_request(listing, "tools/call")
    assert not _records_request(agent, "tools/call")
    assert not _records_request(trace.INVALID_SPAN, "tools/call")
    tool.end()
    assert not _records_request(tool, "tools/call")  # ended: not the step of this call


def test_the_request_carries_the_callers_step_marked_and_a_server_reads_it():
    from posthog_autoinstrument.instrumentation.mcp import _CALLER, _caller_context, _carry_caller

    def sdk_inject(meta):  # what the SDK does: its own span's context, through the global propagator
        meta["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01"
        meta["baggage"] = "user=ada"

    meta = {"progressToken": 1}
    _carry_caller(sdk_inject, None, (meta,), {})
    assert meta["traceparent"].endswith("-1111111111111111-01")  # no step of ours: the SDK's stands

    step = NonRecordingSpan(_remote(remote=False))
    token = otel_context.attach(otel_context.set_value(_CALLER, step))
    try:
        _carry_caller(sdk_inject, None, (meta,), {})
    finally:
        otel_context.detach(token)
    assert meta == {
        "progressToken": 1,
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "tracestate": "posthog=00f067aa0ba902b7",
        "baggage": "user=ada",
    }

    parent = trace.get_current_span(_caller_context(meta, otel_context.Context())).get_span_context()
    assert parent.span_id == SPAN_ID and is_remote_ai_parent(parent)
    # No trace context, or a broken one: the server's step nests where it is.
    current = otel_context.Context()
    assert _caller_context({"progressToken": 1}, current) is current
    assert _caller_context({"traceparent": "garbage"}, current) is current
    assert _caller_context(None, current) is current


# -- the low-level Server, in process ---------------------------------------------------------


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_a_low_level_server_handler_is_a_step_under_the_callers_step(mode):
    """The low-level ``Server``'s own ``on_call_tool`` handler (no ``MCPServer``), reached by the
    SDK's ``Client`` in the same process: over JSON-RPC in memory (``legacy``: the context goes
    in ``_meta``), or the SDK's direct in-process dispatch (the context is the caller's own)."""
    import asyncio

    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    pytest.importorskip("mcp.server.lowlevel")
    from mcp import types
    from mcp.client import Client
    from mcp.server.lowlevel import Server

    from posthog_autoinstrument.genai.one_generation import SCOPE_NAME
    from posthog_autoinstrument.instrumentation.mcp import MCPInstrumentor

    async def call_tool(ctx, params):
        if params.name == "broken":
            return types.CallToolResult(content=[types.TextContent(type="text", text="no data")], is_error=True)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=f"Sunny in {params.arguments['city']}")]
        )

    async def list_tools(ctx, params):
        schema = {"type": "object", "properties": {"city": {"type": "string"}}}
        return types.ListToolsResult(
            tools=[types.Tool(name="get_weather", input_schema=schema), types.Tool(name="broken", input_schema=schema)]
        )

    async def calls():
        server = Server("low-level", on_call_tool=call_tool, on_list_tools=list_tools)
        async with Client(server, mode=mode) as client:
            answers = [
                await client.call_tool("get_weather", {"city": "Paris"}),
                await client.call_tool("broken", {"city": "Paris"}),
            ]
            return [(answer.is_error, answer.content[0].text) for answer in answers]

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = MCPInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        assert asyncio.run(calls()) == [(False, "Sunny in Paris"), (True, "no data")]
    finally:
        instrumentor.uninstrument()
    ours = [s for s in exporter.get_finished_spans() if s.instrumentation_scope.name == SCOPE_NAME]
    for tool, result in (("get_weather", "Sunny in Paris"), ("broken", "no data")):
        steps = [s for s in ours if s.name == f"execute_tool {tool}"]
        (client_step,) = [s for s in steps if s.parent is None]
        (server_step,) = [s for s in steps if s is not client_step]
        assert server_step.parent.span_id == client_step.context.span_id
        assert is_remote_ai_parent(server_step.parent) is (mode == "legacy")
        assert server_step.context.trace_id == client_step.context.trace_id
        for step in (client_step, server_step):
            assert step.attributes["gen_ai.tool.call.arguments"] == '{"city":"Paris"}'
            assert step.attributes["gen_ai.tool.call.result"] == result
            assert step.attributes["mcp.method.name"] == "tools/call"
            assert (step.attributes.get("error.type") == "tool_error") is (tool == "broken")
