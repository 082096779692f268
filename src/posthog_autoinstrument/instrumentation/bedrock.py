"""AWS Bedrock adapter (boto3 / botocore): Converse, ConverseStream, InvokeModel and
InvokeModelWithResponseStream.

boto3 builds its client classes at run time, so there is no ``converse`` method to patch; every
call goes through ``botocore.client.BaseClient._make_api_call``. We patch that once at class level,
which covers clients created before and after start-up alike, and look only at the four
``bedrock-runtime`` inference operations and the Bedrock Agents calls of :mod:`.bedrock_agents`;
every other AWS call passes straight through.

The translation (Converse, and InvokeModel bodies read by one reader per model family) is
:mod:`..formats.bedrock`'s; Anthropic bodies go through :mod:`..formats.anthropic`, as the
Anthropic adapter's do.
"""

from __future__ import annotations

import io
import logging
from typing import Any, Optional

import wrapt

from ..formats import bedrock as bedrock_format
from ..formats.bedrock import Result, StreamedResponse
from ..formats.endpoints import host_and_port
from ..genai import InferenceCall, InferenceRequest, StreamAccumulator, SyncStreamProxy
from ..genai import messages as m
from ..genai import semconv
from ..genai.semconv import Provider
from . import bedrock_agents
from .base import CallHandler, LLMInstrumentor, Target, sync_wrapper

logger = logging.getLogger("posthog_autoinstrument")

SERVICE = "bedrock-runtime"
CONVERSE = "Converse"
CONVERSE_STREAM = "ConverseStream"
INVOKE = "InvokeModel"
INVOKE_STREAM = "InvokeModelWithResponseStream"
_OPERATIONS = frozenset({CONVERSE, CONVERSE_STREAM, INVOKE, INVOKE_STREAM})


def _record_result(call: InferenceCall, result: Result, request_id: Optional[str]) -> None:
    call.set_response(
        model=result.model,
        response_id=result.response_id,
        finish_reasons=[result.finish_reason] if result.finish_reason else None,
        usage=result.usage,
        attributes={semconv.AWS_REQUEST_ID: request_id, semconv.EMBEDDINGS_DIMENSION_COUNT: result.dimensions},
    )
    if call.capture_content and result.parts:
        call.set_output([m.output_message(result.parts, result.finish_reason)])


# -- streams ---------------------------------------------------------------------------------


class ConverseStreamAccumulator(StreamAccumulator):
    """Folds ConverseStream events (messageStart ... messageStop, metadata)."""

    __slots__ = ("stream", "request_id")

    def __init__(self, capture: bool, request_id: Optional[str]):
        self.stream = StreamedResponse(capture)
        self.request_id = request_id

    def on_chunk(self, event: Any) -> bool:
        if isinstance(event, dict):
            self.stream.add_converse_event(event)
        return False

    def finish(self, call: InferenceCall) -> None:
        _record_result(call, self.stream.result(), self.request_id)


class InvokeStreamAccumulator(ConverseStreamAccumulator):
    """Folds InvokeModelWithResponseStream chunks, whichever model family wrote them."""

    __slots__ = ()

    def on_chunk(self, event: Any) -> bool:
        self.stream.add_chunk_bytes(event)
        return False


class _EventStreamIterator(wrapt.ObjectProxy):
    """botocore's EventStream is iterable, not an iterator: one shared pass over its events."""

    def __init__(self, wrapped: Any):
        super().__init__(wrapped)
        self._self_events = None

    def __iter__(self):
        return self

    def __next__(self):
        if self._self_events is None:
            self._self_events = iter(self.__wrapped__)
        return next(self._self_events)


def _wrap_event_stream(stream: Any, call: InferenceCall, accumulator: StreamAccumulator) -> Any:
    return SyncStreamProxy(_EventStreamIterator(stream), call, accumulator)


# -- InvokeModel bodies: read once, hand the app an identical body ------------------------


class _Unreadable(io.RawIOBase):
    """Stands in for a body whose read failed: the app gets the same error when it reads."""

    def __init__(self, error: BaseException):
        self._error = error

    def readable(self) -> bool:
        return True

    def read(self, *args):
        raise self._error


def _replace_body(response: dict) -> Optional[bytes]:
    from botocore.response import StreamingBody  # botocore is imported: this call came from it

    body = response.get("body")
    if body is None or not hasattr(body, "read"):
        return None
    try:
        data = body.read()
    except Exception as exc:
        response["body"] = StreamingBody(_Unreadable(exc), None)
        raise
    response["body"] = StreamingBody(io.BytesIO(data), len(data))
    return data


# -- the call ------------------------------------------------------------------------------


class BedrockCall(CallHandler):
    """Translates one bedrock-runtime call; made per call so request and result share the parsed body."""

    __slots__ = ("operation", "params", "body", "vendor")

    def __init__(self, operation: str, params: Any):
        self.operation = operation
        self.params = params if isinstance(params, dict) else {}
        self.body: Optional[dict] = None
        self.vendor: Optional[str] = None

    def request(self, instance, args, kwargs):
        params = self.params
        model_id = params.get("modelId")
        self.vendor = bedrock_format.vendor_of(model_id)
        address, port = _endpoint(instance)
        request = InferenceRequest(
            provider=Provider.AWS_BEDROCK,
            model=model_id,
            server_address=address,
            server_port=port,
            stream=self.operation in (CONVERSE_STREAM, INVOKE_STREAM),
        )
        if self.operation in (CONVERSE, CONVERSE_STREAM):
            bedrock_format.converse_request_parameters(request, params)
            guardrail = params.get("guardrailConfig")
            if isinstance(guardrail, dict):
                request.attributes[semconv.AWS_BEDROCK_GUARDRAIL_ID] = guardrail.get("guardrailIdentifier")
        else:
            self.body = bedrock_format.parse_body(params.get("body"))
            if self.body is not None:
                request.operation = bedrock_format.body_operation(self.body, model_id)
                bedrock_format.fill_request_from_body(request, self.body)
            guardrail = params.get("guardrailIdentifier")
            if isinstance(guardrail, str):
                request.attributes[semconv.AWS_BEDROCK_GUARDRAIL_ID] = guardrail
        return request, None

    def record_input(self, call, instance, args, kwargs):
        if self.operation in (CONVERSE, CONVERSE_STREAM):
            messages, system, tools = bedrock_format.converse_input(self.params)
        elif self.body is not None:
            messages, system, tools = bedrock_format.body_input(self.body, self.vendor)
        else:
            return
        call.set_input(messages=messages, system_instructions=system, tool_definitions=tools)

    def error_status(self, exc):
        # botocore's ClientError keeps the HTTP status in its parsed error response.
        response = getattr(exc, "response", None)
        metadata = response.get("ResponseMetadata") if isinstance(response, dict) else None
        status = metadata.get("HTTPStatusCode") if isinstance(metadata, dict) else None
        return status if isinstance(status, int) else None

    # The two steps that differ for an async client (aiobotocore's adapter overrides them).
    def wrap_stream(self, stream: Any, call: InferenceCall, accumulator: StreamAccumulator) -> Any:
        """What the app gets in place of botocore's event stream."""
        return _wrap_event_stream(stream, call, accumulator)

    def take_body(self, response: dict) -> Optional[bytes]:
        """InvokeModel's response body, read; the app is left an identical body to read."""
        return _replace_body(response)

    def result(self, call, result, kwargs):
        if not isinstance(result, dict):
            call.end()
            return result
        request_id = bedrock_format.request_id(result)
        if self.operation == CONVERSE:
            _record_result(call, bedrock_format.converse_result(result), request_id)
            call.end()
        elif self.operation == CONVERSE_STREAM and result.get("stream") is not None:
            result["stream"] = self.wrap_stream(
                result["stream"], call, ConverseStreamAccumulator(call.capture_content, request_id)
            )
        elif self.operation == INVOKE_STREAM and result.get("body") is not None:
            result["body"] = self.wrap_stream(
                result["body"], call, InvokeStreamAccumulator(call.capture_content, request_id)
            )
        elif self.operation == INVOKE:
            try:
                data = self.take_body(result)
            except Exception as exc:
                call.fail(exc)
                return result
            parsed = bedrock_format.parse_body(data) if data is not None else None
            record = bedrock_format.read_response_body(parsed) if parsed is not None else Result()
            record.usage = bedrock_format.merge(record.usage, bedrock_format.header_usage(result))
            _record_result(call, record, request_id)
            call.end()
        else:
            call.end()
        return result


def _endpoint(client: Any) -> tuple:
    return host_and_port(getattr(getattr(client, "meta", None), "endpoint_url", None))


def is_bedrock_inference(instance: Any, args: tuple) -> bool:
    try:
        return bool(args and args[0] in _OPERATIONS and instance.meta.service_model.service_name == SERVICE)
    except Exception:
        return False


class BedrockInstrumentor(LLMInstrumentor):
    requirements = ("botocore >= 1.34.116, < 2",)  # Converse arrived in 1.34.116

    def targets(self) -> list:
        return [Target("botocore.client", "BaseClient._make_api_call", CallHandler())]

    def _patch(self, module: Any, target: Target) -> None:
        # One hook for every AWS call: only bedrock-runtime inference is recorded, and each such
        # call gets its own handler so its request and result translation share the parsed body.
        try:
            owner = module.BaseClient
            original = owner.__dict__["_make_api_call"]
        except (AttributeError, KeyError):
            logger.debug("posthog-instrument: botocore BaseClient._make_api_call not present; skipped")
            return
        if isinstance(original, wrapt.FunctionWrapper) and getattr(original, "_self_posthog", False):
            return
        instrumentor = self

        def wrapper(wrapped, instance, args, kwargs):
            if bedrock_agents.handles(instance, args):
                return bedrock_agents.call(instrumentor, wrapped, instance, args, kwargs)
            if not is_bedrock_inference(instance, args):
                return wrapped(*args, **kwargs)
            handler = BedrockCall(args[0], args[1] if len(args) > 1 else kwargs.get("api_params"))
            return sync_wrapper(instrumentor, handler)(wrapped, instance, args, kwargs)

        try:
            patched = wrapt.FunctionWrapper(original, wrapper)
            patched._self_posthog = True
            owner._make_api_call = patched
            self._patched.append((owner, "_make_api_call", original))
        except Exception:
            logger.debug("posthog-instrument: could not patch botocore", exc_info=True)
