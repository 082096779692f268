"""How adapters describe a call with plain values: what was asked (:class:`InferenceRequest`,
:class:`StepRequest`), the tokens it cost (:class:`Usage`), and where in the stack it sits
(:class:`Layer`). Nothing here records anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, Union

from . import semconv


class Layer:
    """Where in the stack an instrumented call sits; decides which layer is the generation."""

    PROVIDER = "provider"  # a provider's SDK talking to the model API (openai, anthropic, ...)
    FRAMEWORK = "framework"  # a library that reaches models through other libraries (litellm, langchain)


@dataclass(slots=True)
class Usage:
    """Token counts as the conventions define them: ``input_tokens`` includes cache tokens."""

    input_tokens: Optional[int] = None
    output_tokens: Optional[int] = None
    cache_read_input_tokens: Optional[int] = None
    cache_creation_input_tokens: Optional[int] = None
    reasoning_tokens: Optional[int] = None


@dataclass(slots=True)
class InferenceRequest:
    """What the application asked for. Unset fields are simply not recorded."""

    provider: str
    model: Optional[str]
    operation: str = semconv.Operation.CHAT
    server_address: Optional[str] = None
    server_port: Optional[int] = None
    stream: bool = False
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    top_k: Optional[float] = None
    max_tokens: Optional[int] = None
    stop_sequences: Optional[Sequence[str]] = None
    seed: Optional[int] = None
    choice_count: Optional[int] = None
    frequency_penalty: Optional[float] = None
    presence_penalty: Optional[float] = None
    reasoning_level: Optional[str] = None
    encoding_formats: Optional[Sequence[str]] = None
    output_type: Optional[str] = None
    conversation_id: Optional[str] = None
    layer: str = Layer.PROVIDER
    # Further attributes, keyed by constants from :mod:`.semconv`.
    attributes: dict = field(default_factory=dict)


# A call's description, or a function that makes it later (see Recorder.start) from the call's
# arguments as the SDK sent them (see InferenceCall.expect_request_body).
RequestOrDescriber = Union[InferenceRequest, Callable[[dict], InferenceRequest]]


@dataclass(slots=True)
class StepRequest:
    """A step of an agent run. ``operation`` is a conventions value where one fits
    (invoke_agent, execute_tool, invoke_workflow, retrieval), else the framework's own word."""

    operation: str
    name: Optional[str] = None
    framework: Optional[str] = None
    provider: Optional[str] = None
    model: Optional[str] = None
    tool_call_id: Optional[str] = None
    tool_type: Optional[str] = None
    attributes: dict = field(default_factory=dict)
