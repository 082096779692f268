"""DSPy adapter pieces, and the core's one-generation rule when frameworks nest.

DSPy's model call (``Layer.FRAMEWORK``) may run over LiteLLM (also ``Layer.FRAMEWORK``), which
may run over an SDK with an adapter (``Layer.PROVIDER``): whatever the depth, the innermost
recorded call is the one generation and every outer one a token-less step.
"""

from types import SimpleNamespace

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from posthog_autoinstrument import config
from posthog_autoinstrument.export.dialect import for_posthog
from posthog_autoinstrument.genai import InferenceRequest, Layer, Recorder, StepRequest, Usage
from posthog_autoinstrument.instrumentation import dspy as adapter

DELEGATED = "posthog_autoinstrument.delegated"


@pytest.fixture
def exporter():
    return InMemorySpanExporter()


@pytest.fixture
def recorder(exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Recorder(provider.get_tracer("test"), capture_content=True)


def exported(span):
    return dict(for_posthog(span, config.load({"POSTHOG_API_KEY": "phc_x"})).attributes)


def _run_nested(recorder, layers):
    """Start one call per layer, each inside the previous one, each reporting usage; end all."""
    calls, tokens = [], []
    for index, layer in enumerate(layers):
        call = recorder.start(InferenceRequest("openai", f"m{index}", layer=layer))
        assert call is not None
        calls.append(call)
        tokens.append(call.attach())
    for call, token in zip(reversed(calls), reversed(tokens)):
        call.detach(token)
        call.set_response(usage=Usage(input_tokens=11, output_tokens=7))
        call.end()


def _generations(spans):
    return [s for s in spans if exported(s).get("gen_ai.operation.name") == "chat"]


def test_framework_inside_framework_the_inner_one_is_the_generation(recorder, exporter):
    _run_nested(recorder, [Layer.FRAMEWORK, Layer.FRAMEWORK])  # DSPy's LM over LiteLLM over plain HTTP

    inner, outer = exporter.get_finished_spans()
    assert inner.parent.span_id == outer.context.span_id
    assert outer.attributes[DELEGATED] is True and DELEGATED not in inner.attributes
    (generation,) = _generations([inner, outer])
    assert generation is inner
    assert exported(inner)["gen_ai.usage.input_tokens"] == 11
    step = exported(outer)
    assert "gen_ai.operation.name" not in step
    assert not [k for k in step if k.startswith("gen_ai.usage.")]


def test_two_frameworks_over_a_provider_sdk_one_generation(recorder, exporter):
    _run_nested(recorder, [Layer.FRAMEWORK, Layer.FRAMEWORK, Layer.PROVIDER])  # DSPy > LiteLLM > openai SDK

    provider, middle, outer = exporter.get_finished_spans()
    assert middle.attributes[DELEGATED] is True and outer.attributes[DELEGATED] is True
    assert DELEGATED not in provider.attributes
    assert _generations([provider, middle, outer]) == [provider]
    assert provider.parent.span_id == middle.context.span_id and middle.parent.span_id == outer.context.span_id


def test_steps_between_frameworks_take_no_part(recorder, exporter):
    """An agent step between two model calls neither delegates nor is delegated to."""
    step = recorder.start_step(StepRequest("invoke_workflow", "Predict", framework="dspy"))
    step_token = step.attach()
    _run_nested(recorder, [Layer.FRAMEWORK])
    step.detach(step_token)
    step.end()

    call, step_span = exporter.get_finished_spans()
    assert call.parent.span_id == step_span.context.span_id
    assert DELEGATED not in call.attributes and DELEGATED not in step_span.attributes
    assert _generations([call, step_span]) == [call]


def test_an_ended_outer_call_is_not_delegated(recorder, exporter):
    outer = recorder.start(InferenceRequest("openai", "m", layer=Layer.FRAMEWORK))
    token = outer.attach()
    outer.end()
    inner = recorder.start(InferenceRequest("openai", "m", layer=Layer.FRAMEWORK))
    inner.end()
    outer.detach(token)
    assert all(DELEGATED not in s.attributes for s in exporter.get_finished_spans())


# -- translation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, expected",
    [
        ("openai/gpt-4o-mini", ("openai", "gpt-4o-mini")),
        ("anthropic/claude-sonnet-4", ("anthropic", "claude-sonnet-4")),
        ("ollama_chat/llama3", ("ollama", "llama3")),
        ("openrouter/meta/llama", ("openrouter", "meta/llama")),
        ("gpt-4o", ("openai", "gpt-4o")),
        (None, ("dspy", None)),
    ],
)
def test_provider_and_model(model, expected):
    assert adapter._provider_and_model(model) == expected


def _lm_call(recorder):
    return recorder.start(InferenceRequest("openai", "gpt-4o-mini", layer=Layer.FRAMEWORK))


def test_a_native_result_is_recorded_with_usage_and_output(recorder, exporter):
    response = SimpleNamespace(id="resp_1", finish_reason="stop", model="gpt-4o-mini-2024-08-06")
    result = SimpleNamespace(
        responses=(response,),
        outputs=["[[ ## answer ## ]]\nParis"],
        response_model="gpt-4o-mini-2024-08-06",
        cache_hit=False,
        raw=response,
        usage={
            "prompt_tokens": 11,
            "completion_tokens": 7,
            "total_tokens": 18,
            "prompt_tokens_details": {"cached_tokens": 3},
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    )
    call = _lm_call(recorder)
    adapter.record_result(call, result)
    call.end()

    attrs = exported(exporter.get_finished_spans()[0])
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.usage.input_tokens"] == 11 and attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 3 and attrs["$ai_reasoning_tokens"] == 2
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini-2024-08-06"
    assert attrs["gen_ai.response.id"] == "resp_1"
    assert attrs["$ai_output_choices"] == [
        {"role": "assistant", "content": [{"type": "text", "text": "[[ ## answer ## ]]\nParis"}]}
    ]


def test_a_litellm_result_with_tool_calls(recorder, exporter):
    raw = {"id": "chatcmpl-1", "choices": [{"finish_reason": "tool_calls"}]}
    result = SimpleNamespace(
        responses=(),
        raw=raw,
        cache_hit=False,
        response_model="openai/gpt-4o-mini",
        usage={},
        outputs=[
            {
                "text": None,
                "reasoning_content": "hmm",
                "tool_calls": [{"id": "c1", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}],
            }
        ],
    )
    call = _lm_call(recorder)
    adapter.record_result(call, result)
    call.end()

    attrs = exporter.get_finished_spans()[0].attributes
    assert attrs["gen_ai.response.id"] == "chatcmpl-1"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.finish_reasons"] == ("tool_call",)
    assert attrs["gen_ai.output.messages"] == (
        '[{"role":"assistant","parts":[{"type":"reasoning","content":"hmm"},{"type":"tool_call","name":"get_weather",'
        '"arguments":{"city":"Paris"},"id":"c1"}],"finish_reason":"tool_call"}]'
    )
    assert "gen_ai.usage.input_tokens" not in attrs


def test_a_cache_hit_is_a_step_without_tokens(recorder, exporter):
    result = SimpleNamespace(
        responses=(),
        raw=None,
        cache_hit=True,
        response_model="gpt-4o-mini",
        outputs=["Paris"],
        usage={"prompt_tokens": 11, "completion_tokens": 7},
    )
    call = _lm_call(recorder)
    adapter.record_result(call, result)
    call.end()

    span = exporter.get_finished_spans()[0]
    assert span.attributes[adapter.CACHE_HIT] is True
    assert "gen_ai.usage.input_tokens" not in span.attributes
    attrs = exported(span)
    assert "gen_ai.operation.name" not in attrs  # an $ai_span: no model request, no generation
    assert '"Paris"' in attrs["$ai_output_state"]


def test_content_is_not_recorded_without_capture(exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    recorder = Recorder(provider.get_tracer("test"), capture_content=False)
    call = _lm_call(recorder)
    adapter._lm_input(call, (), {"messages": [{"role": "user", "content": "secret"}]})
    result = SimpleNamespace(
        responses=(),
        raw=None,
        cache_hit=False,
        response_model=None,
        outputs=["secret answer"],
        usage={"prompt_tokens": 1},
    )
    adapter.record_result(call, result)
    call.end()
    attrs = exporter.get_finished_spans()[0].attributes
    assert "gen_ai.input.messages" not in attrs and "gen_ai.output.messages" not in attrs
    assert attrs["gen_ai.usage.input_tokens"] == 1


def test_agents_are_told_from_workflows():
    dspy = pytest.importorskip("dspy")

    def weather(city: str) -> str:
        return city

    assert adapter._is_agent(dspy.ReAct("question -> answer", tools=[weather]))
    assert not adapter._is_agent(dspy.ChainOfThought("question -> answer"))
    assert not adapter._is_agent(dspy.Predict("question -> answer"))
    step = adapter._module_step(dspy.Predict("question -> answer"))
    assert (step.operation, step.name, step.framework) == ("invoke_workflow", "Predict", "dspy")
    assert step.attributes["dspy.signature"] == "question -> answer"


def test_the_hooks_never_break_the_call_when_recording_fails():
    class Broken:
        def start_step(self, *a, **k):
            raise RuntimeError("ours")

        def start(self, *a, **k):
            raise RuntimeError("ours")

    hooks = adapter._Hooks(SimpleNamespace(recorder=Broken()))
    assert hooks.module_call(lambda **kw: kw, object(), (), {"question": "q"}) == {"question": "q"}
    assert hooks.lm_call(lambda **kw: ["out"], SimpleNamespace(model="openai/x"), (), {"messages": []}) == ["out"]
    with pytest.raises(ValueError):
        hooks.tool_call(_raise, SimpleNamespace(name="t"), (), {})


def _raise(**kwargs):
    raise ValueError("the tool's own error")


def _native_result(text="Paris"):
    response = SimpleNamespace(id="resp_1", finish_reason="stop", model="gpt-4o-mini")
    return SimpleNamespace(
        responses=(response,),
        raw=response,
        outputs=[text],
        response_model="gpt-4o-mini",
        cache_hit=False,
        usage={"prompt_tokens": 11, "completion_tokens": 7},
    )


def test_the_execute_hook_reports_to_the_model_call_in_progress(recorder, exporter):
    """``__call__`` returns outputs only; the usage comes from ``execute`` running inside it."""
    import asyncio

    hooks = adapter._Hooks(SimpleNamespace(recorder=recorder))
    lm = SimpleNamespace(model="openai/gpt-4o-mini", kwargs={"temperature": 0.0, "max_tokens": 100})

    def call_sync(**kwargs):
        return hooks.execute(lambda: _native_result("sync"), None, (), {}).outputs

    async def execute_async():
        return _native_result("async")

    async def call_async(**kwargs):
        return (await hooks.aexecute(execute_async, None, (), {})).outputs

    assert hooks.lm_call(call_sync, lm, (), {"messages": [{"role": "user", "content": "hi"}]}) == ["sync"]
    assert asyncio.run(hooks.lm_acall(call_async, lm, (), {"messages": []})) == ["async"]
    assert adapter._LM_CALL.get() is None  # nothing left behind
    hooks.execute(lambda: _native_result(), None, (), {})  # outside a model call: nothing to report to

    first, second = exporter.get_finished_spans()
    for span, text in ((first, "sync"), (second, "async")):
        attrs = span.attributes
        assert attrs["gen_ai.usage.input_tokens"] == 11 and attrs["gen_ai.request.temperature"] == 0.0
        assert attrs["gen_ai.request.max_tokens"] == 100 and attrs["posthog_autoinstrument.framework"] == "dspy"
        assert f'"{text}"' in attrs["gen_ai.output.messages"]


def test_a_failing_module_or_tool_is_recorded_and_its_error_passes_through(recorder, exporter):
    import asyncio

    hooks = adapter._Hooks(SimpleNamespace(recorder=recorder))
    error = ValueError("the module's own error")

    def forward(**kwargs):
        raise error

    async def aforward(**kwargs):
        raise error

    with pytest.raises(ValueError) as raised:
        hooks.module_call(forward, SimpleNamespace(), (), {"question": "q"})
    assert raised.value is error
    with pytest.raises(ValueError):
        asyncio.run(hooks.tool_acall(aforward, SimpleNamespace(name="lookup", desc="Looks up"), (), {"city": "Paris"}))

    module, tool = exporter.get_finished_spans()
    assert module.status.status_code.name == "ERROR" and module.attributes["error.type"] == "ValueError"
    assert tool.name == "execute_tool lookup" and tool.status.status_code.name == "ERROR"
    assert tool.attributes["gen_ai.tool.call.arguments"] == '{"city":"Paris"}'
