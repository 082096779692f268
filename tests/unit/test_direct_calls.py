"""Direct calls: when PostHog's processor is the only consumer of spans, a model call's span is
built on the export thread. It must be the span an SDK span would have been, nest the same,
and take the adapter's deferred translation along, from arguments as they were at the call."""

import gc
import json
import threading
from dataclasses import replace

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind, StatusCode

from posthog_autoinstrument import config, identity
from posthog_autoinstrument.export import PostHogSpanProcessor
from posthog_autoinstrument.export.exporter import PostHogSender
from posthog_autoinstrument.genai import InferenceRequest, Recorder, Usage
from posthog_autoinstrument.genai import messages as m
from posthog_autoinstrument.genai.inference_call import translate_pending


class DirectCollector(SpanProcessor):
    """Stands in for PostHog's processor: takes direct calls and builds their spans, as the
    export thread does, on whichever thread ``build`` is called."""

    def __init__(self):
        self.calls = []
        self.sdk_spans = []
        self.ended_span_ids = []  # as the processor is told them

    def on_start(self, span, parent_context=None):
        pass

    def on_end(self, span):
        self.sdk_spans.append(span)

    def on_direct_start(self, span_id, parent_context=None):
        return None

    def on_direct_end(self, call, span_id, parent, identity):
        self.calls.append(call)
        self.ended_span_ids.append(span_id)

    def build(self) -> list:
        return [call.build_span() for call in self.calls]

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30000):
        return True


def sdk_recorder():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Recorder(provider.get_tracer("posthog_autoinstrument"), capture_content=True), exporter.get_finished_spans


def direct_recorder(**provider_options):
    collector = DirectCollector()
    provider = TracerProvider(**provider_options)
    provider.add_span_processor(collector)
    return Recorder(provider.get_tracer("posthog_autoinstrument"), capture_content=True), collector


def full_call(recorder, fail=False):
    call = recorder.start(
        InferenceRequest(
            provider="openai",
            model="gpt-4o",
            server_address="api.openai.com",
            server_port=443,
            stream=True,
            temperature=0.5,
            max_tokens=100,
            stop_sequences=["END"],
            choice_count=2,
            seed=3,
        )
    )
    call.later(
        call.set_input,
        [m.message("user", [m.text("hi")])],
        [m.text("be nice")],
        [m.function_tool("lookup", "Look up", {"type": "object"})],
    )
    call.chunk_received()
    if fail:
        try:
            raise TimeoutError("the model took too long")
        except TimeoutError as exc:
            call.fail(exc, 504)
        return
    call.later(
        lambda: call.set_response(
            model="gpt-4o-2024",
            response_id="r1",
            finish_reasons=["stop"],
            usage=Usage(input_tokens=10, output_tokens=5),
        )
    )
    call.set_output([m.output_message([m.text("hello")], "stop")])
    call.end()


def comparable(span: ReadableSpan) -> dict:
    attrs = dict(span.attributes)
    attrs.pop("gen_ai.response.time_to_first_chunk", None)  # a duration: differs between any two calls
    attrs.pop("code.line.number")  # the two calls are made from different lines
    return {
        "name": span.name,
        "kind": span.kind,
        "attributes": attrs,
        "status": (span.status.status_code, span.status.description),
        "events": [
            (e.name, {k: v for k, v in e.attributes.items() if k != "exception.stacktrace"}) for e in span.events
        ],
        "scope": span.instrumentation_scope.name,
    }


@pytest.mark.parametrize("fail", [False, True], ids=["completed", "failed"])
def test_a_direct_span_is_the_span_the_sdk_would_have_recorded(fail):
    sdk, finished = sdk_recorder()
    full_call(sdk, fail)
    direct, collector = direct_recorder()
    full_call(direct, fail)

    assert collector.sdk_spans == [] and len(collector.calls) == 1
    (built,) = collector.build()
    (expected,) = finished()
    assert comparable(built) == comparable(expected)
    assert built.kind == SpanKind.CLIENT and built.parent is None
    assert built.start_time <= built.end_time
    if fail:
        assert built.status.status_code == StatusCode.ERROR
        assert built.attributes["http.response.status_code"] == 504
        assert "TimeoutError: the model took too long" in built.events[0].attributes["exception.stacktrace"]
    else:
        assert json.loads(built.attributes["gen_ai.input.messages"])[0]["parts"][0]["content"] == "hi"


def test_a_direct_call_nests_like_an_sdk_span():
    direct, collector = direct_recorder()
    tracer = direct.tracer
    with tracer.start_as_current_span("invoke_agent planner") as outer:
        call = direct.start(InferenceRequest(provider="openai", model="gpt-4o"))
        token = call.attach()
        try:
            with tracer.start_as_current_span("POST /v1/chat/completions") as inner:
                pass
        finally:
            call.detach(token)
        call.end()
    (built,) = collector.build()
    agent, http = sorted(collector.sdk_spans, key=lambda s: s.name)
    assert built.context.trace_id == outer.get_span_context().trace_id
    assert built.parent.span_id == outer.get_span_context().span_id
    assert inner.parent.span_id == built.context.span_id  # work inside the call nests under it
    assert built.context.trace_flags.sampled


def test_work_inside_a_root_direct_call_nests_under_it():
    # No enclosing span: the call's span context is made only when something reads it.
    direct, collector = direct_recorder()
    call = direct.start(InferenceRequest(provider="openai", model="gpt-4o"))
    token = call.attach()
    try:
        with direct.tracer.start_as_current_span("POST /v1/chat/completions") as inner:
            pass
    finally:
        call.detach(token)
    call.end()
    (built,) = collector.build()
    assert built.parent is None and built.context.is_valid and built.context.trace_flags.sampled
    assert inner.parent.span_id == built.context.span_id == collector.ended_span_ids[0]
    assert inner.get_span_context().trace_id == built.context.trace_id
    assert call.span.get_span_context() == built.context
    assert "NonRecordingSpan(SpanContext(" in repr(call.span)


def test_the_recorder_records_direct_only_when_nobody_else_could_see_the_span():
    # A second processor (the user's own OpenTelemetry export) must see a live SDK span.
    recorder, collector = direct_recorder()
    exporter = InMemorySpanExporter()
    recorder.tracer.span_processor.add_span_processor(SimpleSpanProcessor(exporter))
    recorder.start(InferenceRequest(provider="openai", model="gpt-4o")).end()
    assert collector.calls == [] and [s.name for s in exporter.get_finished_spans()] == ["chat gpt-4o"]

    # A sampler the user chose decides: the SDK path applies it.
    recorder, collector = direct_recorder(sampler=ALWAYS_ON)
    recorder.start(InferenceRequest(provider="openai", model="gpt-4o")).end()
    assert collector.calls == [] and len(collector.sdk_spans) == 1

    # Frameworks' model calls use their span's API (update_name, set_status): SDK spans.
    recorder, collector = direct_recorder()
    recorder.start(InferenceRequest(provider="openai", model="gpt-4o", layer="framework")).end()
    assert collector.calls == [] and len(collector.sdk_spans) == 1


def framework_call(recorder):
    """A framework's model call (LiteLLM's), with a provider call of ours inside it."""
    call = recorder.start(InferenceRequest(provider="openai", model="gpt-4o", layer="framework", temperature=0.2))
    token = call.attach()
    try:
        inner = recorder.start(InferenceRequest(provider="openai", model="gpt-4o"))
        inner.set_response(model="gpt-4o-2024", usage=Usage(input_tokens=3, output_tokens=2))
        inner.end()
    finally:
        call.detach(token)
    call.set_output([m.output_message([m.text("hello")], "stop")])
    call.end()
    return call


def test_a_framework_call_is_direct_when_its_adapter_drives_it_only_through_the_call():
    sdk, finished = sdk_recorder()
    framework_call(sdk)
    provider = TracerProvider()
    collector = DirectCollector()
    provider.add_span_processor(collector)
    direct = Recorder(provider.get_tracer("posthog_autoinstrument"), capture_content=True, direct_frameworks=True)
    call = framework_call(direct)

    assert call.layer == "framework" and collector.sdk_spans == [] and len(collector.calls) == 2
    inner, outer = collector.build()
    expected_inner, expected_outer = finished()
    assert comparable(outer) == comparable(expected_outer)
    assert comparable(inner) == comparable(expected_inner)
    # The provider call inside is the generation; the framework's call a step around it.
    assert outer.attributes["posthog_autoinstrument.delegated"] is True
    assert inner.parent.span_id == outer.context.span_id


def test_a_description_that_may_wait_is_made_where_the_span_is_built():
    made = []

    def describe(sent):
        made.append(threading.current_thread().name)
        return InferenceRequest(provider="openai", model="gpt-4o", temperature=0.2)

    direct, collector = direct_recorder()
    direct.start(describe).end()
    assert made == []  # a direct call describes itself when its span is built
    (built,) = collector.build()
    assert len(made) == 1 and built.name == "chat gpt-4o"
    assert built.attributes["gen_ai.request.temperature"] == 0.2

    # A call with a live SDK span (a second processor sees it) is described at once.
    recorder, collector = direct_recorder()
    exporter = InMemorySpanExporter()
    recorder.tracer.span_processor.add_span_processor(SimpleSpanProcessor(exporter))
    recorder.start(describe).end()
    (span,) = exporter.get_finished_spans()
    assert len(made) == 2 and collector.calls == []
    assert span.name == "chat gpt-4o" and span.attributes["gen_ai.request.temperature"] == 0.2


def test_a_call_expecting_its_request_body_is_translated_from_the_body_as_sent():
    arguments = {"model": "gpt-4o", "messages": [{"role": "user", "content": "as called"}]}
    seen = []

    def describe(sent):
        seen.append(("describe", sent))
        return InferenceRequest(provider="openai", model=(sent or arguments)["model"])

    direct, collector = direct_recorder()
    call = direct.start(describe)
    call.expect_request_body(arguments)
    call.later(lambda: seen.append(("input", call.arguments_as_sent())))
    call.request_body(b'{"model": "gpt-4o-sent", "messages": [{"role": "user", "content": "as sent"}]}')
    call.request_body(b'{"model": "a retry"}')  # the first body is the one kept
    call.app_resumes()
    # A queued call keeps the body, not the arguments (nor a copy of them).
    assert call.recording.arguments is None
    arguments["messages"][0]["content"] = "edited after the call"
    call.end()
    (built,) = collector.build()
    sent = {"model": "gpt-4o-sent", "messages": [{"role": "user", "content": "as sent"}]}
    assert seen == [("input", sent), ("describe", sent)]
    assert built.name == "chat gpt-4o-sent"

    # No body (the call failed before the SDK sent it): a copy of the arguments, taken as the
    # app resumes, stands in; what the app changes afterwards is not seen.
    direct, collector = direct_recorder()
    call = direct.start(describe)
    called = {"model": "gpt-4o", "messages": [{"role": "user", "content": "as called"}]}
    call.expect_request_body(called)
    call.request_body("not bytes")
    call.app_resumes()
    called["messages"].append({"role": "user", "content": "appended after the call"})
    called["model"] = "changed after the call"
    call.end()
    (built,) = collector.build()
    assert seen[-1] == ("describe", {"model": "gpt-4o", "messages": [{"role": "user", "content": "as called"}]})

    # A body that is not JSON (or not UTF-8): the copy stands in too.
    direct, collector = direct_recorder()
    call = direct.start(describe)
    called = {"model": "gpt-4o", "messages": []}
    call.expect_request_body(called)
    call.request_body(b"\xff not json")
    call.app_resumes()
    called["model"] = "changed after the call"
    call.end()
    collector.build()
    assert seen[-1] == ("describe", {"model": "gpt-4o", "messages": []})

    # A body nobody expects is ignored.
    direct, collector = direct_recorder()
    call = direct.start(describe)
    call.request_body(b'{"model": "unexpected"}')
    call.end()
    (built,) = collector.build()
    assert seen[-1] == ("describe", {}) and built.name == "chat gpt-4o"


def test_values_that_are_not_plain_are_cleaned_as_the_sdk_cleans_them():
    def call_with_odd_values(recorder):
        call = recorder.start(InferenceRequest(provider="openai", model="gpt-4o"))
        call.set_attribute("app.tags", ["a", "b"])
        call.set_attribute("app.numbers", [1, 2])
        call.set_attribute("app.object", object())
        call.end()

    sdk, finished = sdk_recorder()
    call_with_odd_values(sdk)
    direct, collector = direct_recorder()
    call_with_odd_values(direct)
    (built,) = collector.build()
    (expected,) = finished()
    assert built.attributes["app.tags"] == ("a", "b") and built.attributes["app.numbers"] == (1, 2)
    assert comparable(built) == comparable(expected)


def test_a_batch_translates_a_column_at_a_time_each_call_in_its_order():
    # The export thread runs every call's first translation, then every call's second (see
    # genai.recording.run_pending_translations); one that fails, or leaves more, changes nothing.
    direct, collector = direct_recorder()
    ran = []
    for name, records in (("a", 3), ("b", 1), ("c", 2)):
        call = direct.start(InferenceRequest(provider="openai", model=name))
        for index in range(records):
            call.later(ran.append, (name, index))
        if name == "b":
            call.later(lambda: 1 / 0)
            call.later(lambda call=call: call.later(ran.append, ("b", "left by a record")))
        call.end()
    recorded_through_its_span = sdk_recorder()[0].start(InferenceRequest(provider="openai", model="d"))
    translate_pending([*collector.calls, recorded_through_its_span])
    assert ran == [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("c", 1), ("a", 2), ("b", "left by a record")]
    ran.clear()
    assert [span.attributes["gen_ai.request.model"] for span in collector.build()] == ["a", "b", "c"]
    assert ran == []  # each ran once


def test_deferred_translation_that_fails_leaves_the_rest_of_the_call():
    direct, collector = direct_recorder()
    call = direct.start(InferenceRequest(provider="openai", model="gpt-4o"))
    call.later(lambda: 1 / 0)
    call.later(lambda: call.set_response(response_id="r1"))
    call.end()
    (built,) = collector.build()
    assert built.attributes["gen_ai.response.id"] == "r1"


def test_openai_calls_are_translated_on_the_export_thread_from_the_arguments_as_they_were(fake_openai, posthog):
    """The real processor and the OpenAI adapter: the request (its description and messages)
    and response are translated on the export thread, the person is the one current at the call, and the app appending to its
    conversation right after the call does not change what the call recorded. The queued call keeps the response's
    bytes, not the SDK's objects (which collections would walk): the app editing the result does not change it either."""
    import openai

    from posthog_autoinstrument.instrumentation.openai import OpenAIInstrumentor

    settings = replace(
        config.load({"POSTHOG_API_KEY": "phc_x", "POSTHOG_HOST": posthog.host}),
        schedule_delay=3600.0,
        flush_timeout=5.0,
    )
    processor = PostHogSpanProcessor(PostHogSender(settings.endpoint, settings.api_key, 5.0), settings)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    instrumentor = OpenAIInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        pytest.skip("openai is already instrumented in this process")

    translated_on = []
    from posthog_autoinstrument.instrumentation import openai as adapter

    original = adapter._record_chat_completion

    translated_from = []

    def spy(call, completion, *usage):
        translated_on.append(threading.current_thread().name)
        translated_from.append(type(completion))
        original(call, completion, *usage)

    adapter._record_chat_completion = spy
    original_describe = adapter.ChatCompletions.describe

    def describe_spy(self, instance, kwargs):
        translated_on.append(threading.current_thread().name)
        return original_describe(self, instance, kwargs)

    adapter.ChatCompletions.describe = describe_spy
    instrumentor.instrument(tracer_provider=provider)
    try:
        client = openai.OpenAI(
            base_url=fake_openai.base_url, api_key="sk-test", max_retries=0, http_client=httpx.Client()
        )
        conversation = [{"role": "user", "content": "hi"}]
        client.chat.completions.create(model="gpt-4o-mini", messages=[])  # the SDK's first-call work
        assert processor.force_flush(10_000)
        del translated_on[:], translated_from[:]
        gc.collect()
        existing = {id(o) for o in gc.get_objects()}
        with identity.context(distinct_id="user-42"):
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=conversation)
        (queued,) = [entry[0] for entry in processor._queue]
        kept = kept_by(queued, existing)
        # Only bytes and plain values, in our own small objects: none of the app's arguments (nor
        # a copy of them), nor the SDK's result, which every collection would walk until export.
        assert not [o for o in kept if o is conversation or o is reply or type(o) is dict]
        assert {type(o).__name__ for o in kept} <= {
            "InferenceCall",
            "DirectRecording",
            "DirectSpan",
            "_Describer",
            "Identity",  # the person current at the call
            "list",
            "tuple",
        }, kept
        conversation.append({"role": "assistant", "content": reply.choices[0].message.content})
        conversation.append({"role": "user", "content": "and again"})
        reply.choices[0].message.content = "edited by the app"
        assert translated_on == []  # nothing translated on the app's thread
        assert processor.force_flush(10_000)
    finally:
        instrumentor.uninstrument()
        adapter._record_chat_completion = original
        adapter.ChatCompletions.describe = original_describe
        processor.shutdown()

    assert translated_on == ["posthog-autoinstrument-export"] * 2  # the request, then the response
    assert translated_from == [dict]  # the response body as received
    span = posthog.wait_for_spans(2)[-1]
    attrs = span["attributes"]
    assert attrs["$ai_input"] == [{"role": "user", "content": "hi"}]
    assert attrs["$ai_output_choices"][0]["content"] == [{"type": "text", "text": "Hello from fake OpenAI"}]
    assert attrs["gen_ai.response.model"] and attrs["gen_ai.usage.input_tokens"] >= 0
    assert attrs["posthog.distinct_id"] == "user-42"


def kept_by(root: object, existing: set) -> list:
    """The objects the collector tracks that ``root`` keeps alive and that are new since
    ``existing`` (the ids of the objects before the call): long-lived ones are not walked."""
    found, todo, seen = [], [root], set()
    while todo:
        obj = todo.pop()
        if id(obj) in seen or id(obj) in existing or not gc.is_tracked(obj):
            continue
        seen.add(id(obj))
        found.append(obj)
        todo.extend(gc.get_referents(obj))
    return found


@pytest.mark.parametrize("key", ["context key", "plain key"])
def test_calls_made_while_instrumentation_is_suppressed_are_not_recorded(fake_openai, key):
    """OpenTelemetry's switch for "do not record what happens in here" (exporters' own requests,
    the benchmarks' baseline), under either of its two keys; the call itself runs as always."""
    import openai
    from opentelemetry import context as otel_context
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    from posthog_autoinstrument.instrumentation.openai import OpenAIInstrumentor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = OpenAIInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        pytest.skip("openai is already instrumented in this process")
    instrumentor.instrument(tracer_provider=provider)
    try:
        client = openai.OpenAI(
            base_url=fake_openai.base_url, api_key="sk-test", max_retries=0, http_client=httpx.Client()
        )

        def ask():
            return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

        if key == "context key":
            with suppress_instrumentation():
                reply = ask()
        else:
            token = otel_context.attach(otel_context.set_value("suppress_instrumentation", True))
            try:
                reply = ask()
            finally:
                otel_context.detach(token)
        assert reply.choices[0].message.content == "Hello from fake OpenAI"
        assert exporter.get_finished_spans() == ()
        ask()
        assert len(exporter.get_finished_spans()) == 1
    finally:
        instrumentor.uninstrument()


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("path", ["direct", "sdk span"])
def test_a_call_is_attributed_to_the_app_function_that_made_it(fake_openai, mode, path):
    """``code.*`` names the app's function, whichever way the call was made and recorded (the
    search for it starts at the frame that called our wrapper)."""
    import asyncio

    import openai

    from posthog_autoinstrument.instrumentation.openai import OpenAIInstrumentor

    provider = TracerProvider()
    if path == "direct":
        collector = DirectCollector()
        provider.add_span_processor(collector)
        finished = collector.build
    else:
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        finished = exporter.get_finished_spans
    instrumentor = OpenAIInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        pytest.skip("openai is already instrumented in this process")
    instrumentor.instrument(tracer_provider=provider)
    messages = [{"role": "user", "content": "hi"}]
    try:
        if mode == "sync":
            client = openai.OpenAI(
                base_url=fake_openai.base_url, api_key="sk-test", max_retries=0, http_client=httpx.Client()
            )

            def answer_the_customer():
                return client.chat.completions.create(model="gpt-4o-mini", messages=messages)

            answer_the_customer()
        else:
            client = openai.AsyncOpenAI(
                base_url=fake_openai.base_url, api_key="sk-test", max_retries=0, http_client=httpx.AsyncClient()
            )

            async def answer_the_customer():
                return await client.chat.completions.create(model="gpt-4o-mini", messages=messages)

            asyncio.run(answer_the_customer())
    finally:
        instrumentor.uninstrument()
    (span,) = finished()
    assert span.attributes["code.function.name"].endswith("<locals>.answer_the_customer")
    assert span.attributes["code.file.path"] == __file__
