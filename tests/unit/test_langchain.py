"""The LangChain adapter in-process, on langchain-core's own fake models and runnables, with an
in-memory exporter: which runs become spans, how they nest, that the handler is attached once,
that no state outlives a run, and that nothing of ours reaches the application."""

from __future__ import annotations

import asyncio
import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

pytest.importorskip("langchain_core")

from langchain_core.callbacks import CallbackManager  # noqa: E402
from langchain_core.language_models.fake import FakeListLLM  # noqa: E402
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage  # noqa: E402
from langchain_core.output_parsers import StrOutputParser  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate  # noqa: E402
from langchain_core.runnables import RunnableLambda  # noqa: E402
from langchain_core.tools import tool  # noqa: E402

from posthog_autoinstrument.genai import semconv  # noqa: E402
from posthog_autoinstrument.instrumentation import langchain as adapter  # noqa: E402


@pytest.fixture
def exporter():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = adapter.LangChainInstrumentor()  # (instrumentors are singletons)
    instrumentor.instrument(tracer_provider=provider, skip_dep_check=True)
    instrumentor._tracker()._runs.clear()
    exporter.instrumentor = instrumentor
    yield exporter
    instrumentor.uninstrument()


def spans(exporter) -> list:
    return sorted(exporter.get_finished_spans(), key=lambda s: s.start_time)


def tracker(exporter) -> adapter.Tracker:
    return exporter.instrumentor._tracker()


def ours(handlers) -> list:
    return [h for h in handlers if type(h).__name__ == "PostHogCallbackHandler"]


def test_handler_is_attached_once_to_every_manager(exporter):
    assert len(ours(CallbackManager.configure().handlers)) == 1  # a run started without callbacks
    seen = []

    def inner(value, config):
        manager = config["callbacks"]
        seen.append((len(ours(manager.handlers)), len(ours(manager.inheritable_handlers))))
        return value

    def outer(value, config):
        return RunnableLambda(inner).invoke(value, config)

    RunnableLambda(outer).invoke(1, {"callbacks": [], "tags": ["app"]})
    assert seen == [(1, 1)]
    assert len(tracker(exporter)) == 0


def test_sequence_plumbing_is_skipped_and_the_model_reparented(exporter):
    model = FakeListChatModel(responses=["pong"])
    chain = ChatPromptTemplate.from_messages([("user", "ping {x}")]) | model | StrOutputParser()
    assert chain.invoke({"x": 1}) == "pong"
    root, generation = spans(exporter)
    assert root.name == "invoke_workflow RunnableSequence"
    assert root.parent is None
    assert generation.parent.span_id == root.context.span_id
    attrs = generation.attributes
    assert attrs[semconv.OPERATION_NAME] == "chat"
    assert attrs[semconv.FRAMEWORK] == "langchain"
    assert attrs[semconv.PROVIDER_NAME] == "fakelistchatmodel"
    assert json.loads(attrs[semconv.INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "ping 1"}]}
    ]
    assert json.loads(attrs[semconv.OUTPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": "pong"}]
    assert json.loads(root.attributes[semconv.INPUT_STATE]) == {"x": 1}
    assert root.attributes[semconv.OUTPUT_STATE] == "pong"
    assert semconv.DELEGATED not in attrs  # nothing below recorded the call: this is the generation
    assert len(tracker(exporter)) == 0


def test_fake_model_usage_comes_from_usage_metadata(exporter):
    reply = AIMessage(
        content="hi",
        usage_metadata={
            "input_tokens": 4,
            "output_tokens": 3,
            "total_tokens": 7,
            "input_token_details": {"cache_read": 2},
            "output_token_details": {"reasoning": 1},
        },
    )
    GenericFakeChatModel(messages=iter([reply])).invoke("hello")
    (generation,) = spans(exporter)
    attrs = generation.attributes
    assert (attrs[semconv.USAGE_INPUT_TOKENS], attrs[semconv.USAGE_OUTPUT_TOKENS]) == (4, 3)
    assert attrs[semconv.USAGE_CACHE_READ_INPUT_TOKENS] == 2
    assert attrs[semconv.USAGE_REASONING_OUTPUT_TOKENS] == 1


def test_streamed_fake_model_is_one_generation(exporter):
    model = GenericFakeChatModel(messages=iter([AIMessage(content="a b c")]))
    chunks = list(model.stream("hello"))
    assert "".join(c.content for c in chunks) == "a b c"
    (generation,) = spans(exporter)
    attrs = generation.attributes
    assert attrs[semconv.REQUEST_STREAM] is True
    assert semconv.RESPONSE_TIME_TO_FIRST_CHUNK in attrs
    assert json.loads(attrs[semconv.OUTPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": "a b c"}]
    assert len(tracker(exporter)) == 0


def test_async_stream_and_invoke(exporter):
    model = FakeListChatModel(responses=["x", "yz"])

    async def main():
        first = await model.ainvoke("a")
        pieces = [c.content async for c in model.astream("b")]
        return first.content, "".join(pieces)

    assert asyncio.run(main()) == ("x", "yz")
    assert [s.name for s in spans(exporter)] == ["chat", "chat"]
    assert len(tracker(exporter)) == 0


def test_abandoned_stream_ends_its_runs_without_error(exporter):
    model = FakeListChatModel(responses=["abcdef"])
    chain = model | StrOutputParser()
    stream = chain.stream("go")
    next(stream)
    stream.close()
    assert {s.name for s in spans(exporter)} == {"invoke_workflow RunnableSequence", "chat"}
    assert all(s.status.is_ok for s in spans(exporter))
    assert len(tracker(exporter)) == 0


def test_tool_and_agent_promotion(exporter):
    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    model = FakeListChatModel(responses=["thinking"])

    def agent(question):
        model.invoke(question)
        return add.invoke({"a": 2, "b": 3})

    assert RunnableLambda(agent).with_config(run_name="calculator").invoke("2+3?") == 5
    root, generation, step = spans(exporter)
    assert root.name == "invoke_agent calculator"
    assert root.attributes[semconv.OPERATION_NAME] == "invoke_agent"
    assert root.attributes[semconv.AGENT_NAME] == "calculator"
    assert step.name == "execute_tool add"
    assert step.parent.span_id == root.context.span_id
    assert json.loads(step.attributes[semconv.TOOL_CALL_ARGUMENTS]) == {"a": 2, "b": 3}
    assert step.attributes[semconv.TOOL_CALL_RESULT] == "5"
    assert step.attributes[semconv.TOOL_DESCRIPTION] == "Add two numbers."


def test_errors_fail_the_run_and_free_its_state(exporter):
    def explode(_):
        raise KeyError("missing")

    chain = FakeListChatModel(responses=["x"]) | RunnableLambda(explode)
    with pytest.raises(KeyError):
        chain.invoke("go")
    root = [s for s in spans(exporter) if s.parent is None][0]
    assert not root.status.is_ok
    assert root.attributes[semconv.ERROR_TYPE] == "KeyError"
    assert len(tracker(exporter)) == 0


def test_langgraph_control_flow_is_not_a_failure(exporter):
    class GraphBubbleUp(Exception):
        pass

    class GraphInterrupt(GraphBubbleUp):
        pass

    t = tracker(exporter)
    t.chain_start({}, {"q": 1}, "run-1", None, [], {}, "graph")
    t.run_error(GraphInterrupt("waiting for a human"), "run-1")
    (span,) = spans(exporter)
    assert span.status.is_unset
    assert len(t) == 0


def test_text_completion_llm(exporter):
    llm = FakeListLLM(responses=["done"])
    assert llm.invoke("finish this") == "done"
    (span,) = spans(exporter)
    assert span.attributes[semconv.OPERATION_NAME] == "text_completion"
    assert json.loads(span.attributes[semconv.INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "finish this"}]}
    ]


def test_without_content_capture_only_metadata_is_kept(exporter):
    exporter.instrumentor.recorder.capture_content = False
    chain = ChatPromptTemplate.from_messages([("user", "secret {x}")]) | FakeListChatModel(responses=["hidden"])
    chain.invoke({"x": "value"})
    for span in spans(exporter):
        text = json.dumps(dict(span.attributes))
        assert "secret" not in text and "hidden" not in text


def test_runs_that_never_end_are_bounded(exporter, monkeypatch):
    monkeypatch.setattr(adapter, "_MAX_RUNS", 5)
    t = tracker(exporter)
    for n in range(20):
        t.chain_start({}, {}, f"run-{n}", None, [], {}, "never-ends")
    assert len(t) == 5


def test_the_handler_never_raises_into_langchain(exporter):
    handler = exporter.instrumentor.handler
    handler.on_chain_start(None, object(), run_id="x", parent_run_id="unknown", tags=object(), metadata=3)
    handler.on_llm_end(None, run_id="nothing")
    handler.on_chat_model_start("weird", [[object()]], run_id="m", invocation_params="?", metadata=[])
    handler.on_llm_end(object(), run_id="m")
    handler.on_tool_end(object(), run_id="x")
    handler.on_retriever_end(None, run_id="r")
    assert len(tracker(exporter)) == 0


def test_uninstrument_detaches_the_handler(exporter):
    exporter.instrumentor.uninstrument()
    assert ours(CallbackManager.configure().handlers) == []
    FakeListChatModel(responses=["x"]).invoke("y")
    assert spans(exporter) == []
    exporter.instrumentor.instrument(skip_dep_check=True)  # the fixture uninstruments again
