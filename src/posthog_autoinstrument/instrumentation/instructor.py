"""Instructor adapter: a validated call as one step, each of its attempts a generation.

``client.chat.completions.create(response_model=..., max_retries=...)`` on a client Instructor
patched (``instructor.from_openai``, ``instructor.patch``; also ``create_partial``,
``create_iterable``, ``create_with_completion``, which all go the same way) runs Instructor's
retry loop: ask the model, parse and validate its answer into the response model, and on a
validation error ask again with the error appended to the conversation. What is hooked:

* ``retry_sync_v2`` / ``retry_async_v2`` (the retry loop, where ``instructor.v2.core.patch``
  calls it, and in ``instructor.v2.core.retry`` for the public ``retry_sync``/``retry_async``):
  one ``invoke_workflow`` step named after the response model, its conversation as input
  state and the validated object as output state. Each attempt's model request is recorded
  below it by the provider's adapter (the ``openai`` SDK's ``create``): one generation per
  attempt, with its own tokens. The step records how many attempts were made
  (``instructor.attempts``), the retry budget and mode, and every validation error
  (``instructor.validation_errors``; their text quotes the model's answer, so only with content
  capture). A call that runs out of retries fails the step with Instructor's
  ``InstructorRetryException``.
* ``Hooks.emit_completion_arguments`` / ``Hooks.emit_parse_error``: Instructor announces each
  attempt and each validation error through its hooks; these report them to the step in
  progress. A call made without hooks (``instructor.patch`` with no ``hooks=``) is given an
  empty ``Hooks()``, which changes nothing else.

A call without ``response_model`` is a plain model call: no step. ``create_partial`` and
``create_iterable`` stream: where Instructor reads the stream inside its retry loop (1.15
does, for sync calls) the step's output is the list of objects it produced; where the loop
returns the stream unread, the step ends then, without output state, and the stream's
generation ends when the app has read it.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any, Optional

from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from ..genai import semconv
from ..genai import StepCall, StepRequest
from .base import LLMInstrumentor, Target

logger = logging.getLogger("posthog_autoinstrument")

FRAMEWORK = "instructor"
ATTEMPTS = "instructor.attempts"
MAX_RETRIES = "instructor.max_retries"
MODE = "instructor.mode"
VALIDATION_ERRORS = "instructor.validation_errors"

# The validated call in progress in this context, for Instructor's hooks to report to.
_VALIDATED_CALL: contextvars.ContextVar = contextvars.ContextVar("posthog_autoinstrument_instructor_call", default=None)


class _ValidatedCall:
    """A step and what its attempts reported."""

    __slots__ = ("step", "attempts", "errors")

    def __init__(self, step: StepCall):
        self.step = step
        self.attempts = 0
        self.errors: list = []

    def finish(self, result: Any = None, exc: Optional[BaseException] = None) -> None:
        step = self.step
        try:
            step.set_attribute(ATTEMPTS, self.attempts)
            if self.errors and step.capture_content:
                step.set_attribute(VALIDATION_ERRORS, self.errors)
            if exc is None:
                step.set_output_state(_validated_output(result))
        except Exception:
            logger.debug("posthog-instrument: could not record an Instructor call's result", exc_info=True)
        if exc is None:
            step.end()
        else:
            step.fail(exc)


def _validated_output(result: Any) -> Any:
    """The validated object (or list of them) as JSON-ready data; None for a stream."""
    if isinstance(result, list):
        return [_dumped(item) for item in result]
    return _dumped(result) if hasattr(type(result), "model_dump") else None


def _dumped(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else value


def _model_name(response_model: Any) -> str:
    name = getattr(response_model, "__name__", None)
    return name if isinstance(name, str) and name else type(response_model).__name__


def _step_request(kwargs: dict) -> StepRequest:
    mode = kwargs.get("mode")
    retries = kwargs.get("max_retries")
    return StepRequest(
        semconv.Operation.INVOKE_WORKFLOW,
        name=_model_name(kwargs.get("response_model")),
        framework=FRAMEWORK,
        attributes={
            MODE: str(getattr(mode, "value", mode)) if mode is not None else None,
            MAX_RETRIES: retries if isinstance(retries, int) else None,
        },
    )


def _conversation(request_kwargs: Any) -> Any:
    if not isinstance(request_kwargs, dict):
        return None
    for key in ("messages", "input", "contents"):
        if request_kwargs.get(key) is not None:
            return request_kwargs[key]
    return None


class _Hooks:
    """The wrapt wrappers. None of them lets an error of ours reach the application, and each
    returns exactly what Instructor returned."""

    def __init__(self, instrumentor: LLMInstrumentor):
        self.instrumentor = instrumentor

    def _start(self, kwargs: dict) -> tuple:
        """(the validated call or None, the keyword arguments to call the retry loop with)."""
        if kwargs.get("response_model") is None or not is_instrumentation_enabled():
            return None, kwargs
        try:
            step = self.instrumentor.recorder.start_step(_step_request(kwargs))
            if step is None:
                return None, kwargs
            step.set_input_state(_conversation(kwargs.get("kwargs")))
            if kwargs.get("hooks") is None:
                from instructor.v2.core.hooks import Hooks

                kwargs = dict(kwargs, hooks=Hooks())
            return _ValidatedCall(step), kwargs
        except Exception:
            logger.debug("posthog-instrument: could not start an Instructor step", exc_info=True)
            return None, kwargs

    def retry(self, wrapped, instance, args, kwargs):
        call, kwargs = self._start(kwargs) if not args else (None, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        token = call.step.attach()
        call_token = _VALIDATED_CALL.set(call)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            call.finish(exc=exc)
            raise
        finally:
            _reset(call_token)
            call.step.detach(token)
        call.finish(result)
        return result

    def aretry(self, wrapped, instance, args, kwargs):
        async def traced(kwargs):
            call, kwargs = self._start(kwargs) if not args else (None, kwargs)
            if call is None:
                return await wrapped(*args, **kwargs)
            token = call.step.attach()
            call_token = _VALIDATED_CALL.set(call)
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as exc:
                call.finish(exc=exc)
                raise
            finally:
                _reset(call_token)
                call.step.detach(token)
            call.finish(result)
            return result

        return traced(kwargs)

    @staticmethod
    def attempt(wrapped, instance, args, kwargs):
        call = _VALIDATED_CALL.get()
        if call is not None:
            call.attempts += 1
        return wrapped(*args, **kwargs)

    @staticmethod
    def parse_error(wrapped, instance, args, kwargs):
        call = _VALIDATED_CALL.get()
        if call is not None:
            try:
                error = args[0] if args else kwargs.get("error")
                call.errors.append(str(error))
            except Exception:
                logger.debug("posthog-instrument: could not read an Instructor validation error", exc_info=True)
        return wrapped(*args, **kwargs)


def _reset(token: Any) -> None:
    try:
        _VALIDATED_CALL.reset(token)
    except Exception:  # a token from another context: nothing of ours to undo there
        logger.debug("posthog-instrument: could not reset the Instructor call", exc_info=True)


class InstructorInstrumentor(LLMInstrumentor):
    # The v2 core (instructor.v2.core) is what is hooked. 1.15.0 still has the older layout and
    # cannot even be imported beside the tested mistralai (3.7), so nothing before the tested
    # 1.15.4 is claimed.
    requirements = ("instructor >= 1.15.4, < 2",)

    def targets(self) -> list:
        hooks = _Hooks(self)
        return [
            # Where the patched ``create`` calls the retry loop, and where the public
            # ``retry_sync``/``retry_async`` do.
            Target("instructor.v2.core.patch", "retry_sync_v2", wrapper=hooks.retry, required_since="1.15.4"),
            Target("instructor.v2.core.patch", "retry_async_v2", wrapper=hooks.aretry, required_since="1.15.4"),
            Target("instructor.v2.core.retry", "retry_sync_v2", wrapper=hooks.retry),
            Target("instructor.v2.core.retry", "retry_async_v2", wrapper=hooks.aretry),
            Target("instructor.v2.core.hooks", "Hooks.emit_completion_arguments", wrapper=hooks.attempt),
            Target("instructor.v2.core.hooks", "Hooks.emit_parse_error", wrapper=hooks.parse_error),
        ]
