"""What every library adapter shares: lazy patching, symmetric unpatching, and the call wrapper.

An adapter subclasses :class:`LLMInstrumentor`, lists its :class:`Target` methods, and for each
supplies a :class:`CallHandler` that translates that method's arguments and results into the
core's terms. Patching happens when the target module is first imported (never at start-up
for a library the app does not import), each target independently: a method the installed
version lacks is skipped with a debug line, and a broken target never affects the others.

A target names every module its class lives in across the supported releases (a module that
became a package moves it). The targets that record calls say from which release they must be
found: ``--debug`` (at run time) and ``doctor`` (from the installed files, without importing the
library) both ask :func:`missing_targets`, so they name exactly the calls a release will not record.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import logging
import os
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Callable, Optional

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from .. import __version__, config, identity, lifecycle, otel_internals
from ..formats.endpoints import host_and_port  # noqa: F401  (adapters import these readers from here)
from ..formats.fields import arg, get, given, integer, number, optional_field  # noqa: F401
from ..genai import InferenceCall, Recorder, StepCall, StreamAccumulator
from ..genai.messages import output_message
from ..genai.call_types import RequestOrDescriber
from ..genai.recording import arguments_now  # noqa: F401  (adapters import it from here)
from ..genai.one_generation import SCOPE_NAME, active_call  # noqa: F401  (SCOPE_NAME: the tracer's name; adapters import it from here)
from ..genai.streams import observe_stream

logger = logging.getLogger("posthog_autoinstrument")

# What suppress_instrumentation() sets in the context: read at each call (see _begin).
_SUPPRESSION_KEYS = otel_internals.instrumentation_suppression_keys()


class CallHandler:
    """Translates one kind of SDK call. Adapters override what they need.

    ``request`` may return replacement keyword arguments (for example to ask a stream for its
    usage); otherwise the application's arguments are passed through untouched. Its description
    of the call may be a function that makes it, for a provider call whose description reads
    only the client and the arguments: a direct call makes it on the export thread
    (see ``Recorder.start``).
    """

    #: True when ``record_input`` reads nothing but its arguments: it may then run on the export
    #: thread (``InferenceCall.later``), over a copy of the argument lists the app may append to.
    input_can_wait = False

    def request(self, instance: Any, args: tuple, kwargs: dict) -> tuple[RequestOrDescriber, Optional[dict]]:
        raise NotImplementedError

    def record_input(self, call: InferenceCall, instance: Any, args: tuple, kwargs: dict) -> None:
        """Record prompts and tool definitions (``call.set_input`` keeps only metadata when
        content is not captured; skip costly conversions when ``call.capture_content`` is off)."""

    def result(self, call: InferenceCall, result: Any, kwargs: dict) -> Any:
        """Record a completed result and end the call, or return a proxy that ends it later."""
        call.end()
        return result

    def error_status(self, exc: BaseException) -> Optional[int]:
        """The HTTP status of a failed call, where the exception does not carry ``status_code``."""
        return None


class ChoicesAccumulator(StreamAccumulator):
    """Assembles a stream whose chunks carry numbered choices (OpenAI's chat shape and its
    kin): the response's id and model, its usage, and ``choices``, index -> a buffer with a
    ``finish_reason`` and ``parts()`` (``formats.openai_chat.ChoiceBuffer`` or the SDK's own).
    Subclasses fold each chunk in ``on_chunk``, and translate what they kept as sent in
    ``finish_reason`` and ``response_usage``."""

    __slots__ = ("capture", "response_id", "model", "usage", "choices")

    def __init__(self, capture: bool):
        self.capture = capture
        self.response_id = None
        self.model = None
        self.usage: Any = None
        self.choices: dict = {}

    def finish_reason(self, reason: Any) -> Optional[str]:
        """A choice's finish reason in the conventions' words (kept so: as is)."""
        return reason

    def response_usage(self) -> Any:
        """The stream's ``Usage`` (kept so: as is)."""
        return self.usage

    def finish(self, call: InferenceCall) -> None:
        ordered = [self.choices[index] for index in sorted(self.choices)]
        reasons = [self.finish_reason(state.finish_reason) for state in ordered]
        call.set_response(
            model=self.model,
            response_id=self.response_id,
            finish_reasons=[r for r in reasons if r],
            usage=self.response_usage(),
        )
        if self.capture:
            call.set_output([output_message(state.parts(), reason) for state, reason in zip(ordered, reasons)])


class ResponseOrStream(CallHandler):
    """A call that returns either a response, recorded at once by ``record``, or a stream,
    observed through ``accumulator`` (by default ``stream_accumulator(capture_content)``);
    ``streams`` tells which (by default: the handler was made for a streaming method)."""

    stream_accumulator: Callable[[bool], StreamAccumulator]

    def __init__(self, stream: bool = False):
        self.stream = stream

    def streams(self, result: Any, kwargs: dict) -> bool:
        return self.stream

    def record(self, call: InferenceCall, response: Any) -> None:
        """Record a whole response on the call (which is then ended)."""

    def accumulator(self, call: InferenceCall) -> StreamAccumulator:
        return self.stream_accumulator(call.capture_content)

    def result(self, call: InferenceCall, result: Any, kwargs: dict) -> Any:
        if self.streams(result, kwargs):
            return observe_stream(result, call, self.accumulator(call))
        self.record(call, result)
        call.end()
        return result


@dataclass(frozen=True)
class Target:
    module: str
    qualname: str  # "Class.method"
    handler: Optional[CallHandler] = None  # an LLM call, recorded through the core
    is_async: bool = False
    wrapper: Optional[Callable] = None  # or any other wrapt wrapper (request context, SDK hooks)
    #: Where older releases keep the same class (before ``module`` existed): the class is
    #: patched in whichever of these modules the installed release imports.
    older_modules: tuple = ()
    #: The first release of the library that must have this target. Set on the targets that
    #: record calls: from that release on, a missing one means calls not recorded, and
    #: ``--debug`` and ``doctor`` say so. Unset: the target may be absent (another layout's
    #: twin, an optional hook).
    required_since: Optional[str] = None

    @property
    def modules(self) -> tuple:
        return (self.module, *self.older_modules)


class LLMInstrumentor(BaseInstrumentor):
    """Base for one library's adapter."""

    #: pip requirement strings checked against the installed distribution before patching
    requirements: tuple = ()
    #: True when the adapter drives its framework-level calls only through ``InferenceCall``:
    #: they may then be recorded direct, like provider calls (see ``Recorder.start``).
    framework_calls_direct = False

    def targets(self) -> list:
        raise NotImplementedError

    def instrumentation_dependencies(self):
        return self.requirements

    def _instrument(self, **kwargs) -> None:
        settings = config.settings()
        tracer = trace.get_tracer(SCOPE_NAME, __version__, kwargs.get("tracer_provider"))
        self.recorder = Recorder(
            tracer,
            capture_content=not settings.privacy_mode,
            privacy_requested=identity.privacy_requested,
            direct_frameworks=self.framework_calls_direct,
        )
        self._active = True
        self._patched: list = []
        targets = self.targets()
        for package in sorted({_library_package(t.module) for t in targets}):
            wrapt.register_post_import_hook(self._on_package_import, package)
        for module in sorted({m for t in targets for m in t.modules}):
            wrapt.register_post_import_hook(self._on_import, module)

    def _uninstrument(self, **kwargs) -> None:
        self._active = False
        for owner, attribute, original in reversed(getattr(self, "_patched", [])):
            try:
                setattr(owner, attribute, original)
            except Exception:
                logger.debug("posthog-instrument: could not restore %s", attribute, exc_info=True)
        self._patched = []

    def _on_package_import(self, module: Any) -> None:
        if getattr(self, "_active", False):
            lifecycle.prepare_export()
            if logger.isEnabledFor(logging.DEBUG):
                self._report_missing_modules()

    def _on_import(self, module: Any) -> None:
        if not getattr(self, "_active", False):
            return
        for target in self.targets():
            if module.__name__ not in target.modules:
                continue
            if module.__name__ != target.module and _in_module(sys.modules.get(target.module), target):
                continue  # the class's own module is loaded: it was patched there
            self._patch(module, target)

    def installed_version(self) -> Optional[str]:
        """The installed release of the library this adapter instruments, if known."""
        return installed_version(self.instrumentation_dependencies())

    def _report_missing_modules(self) -> None:
        try:
            version = self.installed_version()
            for target in missing_targets(self.targets(), version):
                logger.debug(
                    "posthog-instrument: %s: %s not found in %s; these calls will not be recorded",
                    _release(self, version),
                    target.qualname,
                    " or ".join(target.modules),
                )
        except Exception:
            logger.debug("posthog-instrument: could not check the patch targets", exc_info=True)

    def _report_missing(self, module: Any, target: Target) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return  # (reading the installed version costs a metadata lookup)
        version = self.installed_version()
        if required(target, version):
            logger.debug(
                "posthog-instrument: %s: %s not found in %s; these calls will not be recorded",
                _release(self, version),
                target.qualname,
                module.__name__,
            )
        else:
            logger.debug(
                "posthog-instrument: %s.%s not present in this version; skipped", module.__name__, target.qualname
            )

    def _patch(self, module: Any, target: Target) -> None:
        try:
            owner_name, _, attribute = target.qualname.rpartition(".")
            owner = module
            for part in owner_name.split(".") if owner_name else ():
                owner = getattr(owner, part)
            original = owner.__dict__[attribute] if isinstance(owner, type) else getattr(owner, attribute)
        except (AttributeError, KeyError):
            self._report_missing(module, target)
            return
        if isinstance(original, wrapt.FunctionWrapper) and getattr(original, "_self_posthog", False):
            return  # already ours: instrumenting twice must not double-wrap
        try:
            if target.wrapper is not None:
                function = _guarded(self, target.wrapper)
            else:
                function = (async_wrapper if target.is_async else sync_wrapper)(self, target.handler)
            wrapper = wrapt.FunctionWrapper(original, function)
            wrapper._self_posthog = True
            setattr(owner, attribute, wrapper)
            self._patched.append((owner, attribute, original))
        except Exception:
            logger.debug("posthog-instrument: could not patch %s.%s", target.module, target.qualname, exc_info=True)


def _in_module(module: Any, target: Target) -> bool:
    owner_name = target.qualname.rpartition(".")[0].split(".")[0]
    return module is not None and (not owner_name or hasattr(module, owner_name))


def _release(instrumentor: Any, version: Optional[str]) -> str:
    requirements = instrumentor.instrumentation_dependencies()
    name = _requirement_name(requirements[0]) if requirements else type(instrumentor).__name__
    return f"{name} {version}" if version else name


def _requirement_name(requirement: str) -> str:
    from packaging.requirements import Requirement

    return Requirement(requirement).name


def installed_version(requirements: Any) -> Optional[str]:
    """The installed version of the first distribution in ``requirements``, or None."""
    from importlib import metadata

    if not requirements:
        return None
    try:
        return metadata.version(_requirement_name(requirements[0]))
    except metadata.PackageNotFoundError:
        return None


def required(target: Target, version: Optional[str]) -> bool:
    """Whether this release must have the target (its calls go unrecorded without it)."""
    if target.required_since is None:
        return False
    if version is None:
        return True
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) >= Version(target.required_since)
    except InvalidVersion:
        return True


def missing_targets(targets: list, version: Optional[str]) -> list:
    """The targets this release must have (see ``required``) that none of their modules holds,
    judged from the installed files without importing the library."""
    return [t for t in targets if required(t, version) and not any(module_exists(m) for m in t.modules)]


def module_exists(name: str) -> bool:
    """Whether module ``name`` can be imported, found without importing it or its parents."""
    if name in sys.modules:
        return True
    parent = name.rpartition(".")[0]
    if not parent:
        return importlib.util.find_spec(name) is not None  # a top-level name: nothing is imported
    locations = _package_path(parent)
    return bool(locations) and importlib.machinery.PathFinder.find_spec(name, locations) is not None


def _package_path(name: str) -> list:
    """The directories of package ``name`` (empty if there is none), found as above."""
    module = sys.modules.get(name)
    if module is not None:
        return list(getattr(module, "__path__", ()))
    parent, _, last = name.rpartition(".")
    if not parent:
        spec = importlib.util.find_spec(name)
        return list(spec.submodule_search_locations or ()) if spec is not None else []
    candidates = (os.path.join(location, last) for location in _package_path(parent))
    return [directory for directory in candidates if os.path.isdir(directory)]


# Namespace packages shared by unrelated libraries: the library is one level down.
_NAMESPACE_PACKAGES = frozenset({"google", "azure", "llama_index", "opentelemetry"})


def _library_package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] in _NAMESPACE_PACKAGES and len(parts) > 1 else parts[0]


def _guarded(instrumentor: LLMInstrumentor, wrapper: Callable) -> Callable:
    """Stop calling a plain wrapper once uninstrumented (the patch itself may stay in place)."""

    def guarded(wrapped, instance, args, kwargs):
        if not getattr(instrumentor, "_active", False):
            return wrapped(*args, **kwargs)
        return wrapper(wrapped, instance, args, kwargs)

    return guarded


def _begin(instrumentor: LLMInstrumentor, handler: CallHandler, instance: Any, args: tuple, kwargs: dict):
    """Start recording a call and make it current. Returns (call or None, kwargs to call the SDK
    with, the token to detach the call with); never raises."""
    if not getattr(instrumentor, "_active", False):
        return None, kwargs, None
    # The context, read once for every check of this call (is_instrumentation_enabled() reads
    # it twice, and each read is two function calls).
    current = otel_context.get_current()
    for key in _SUPPRESSION_KEYS:
        if current.get(key):
            return None, kwargs, None
    try:
        # The code that called our wrapper (or the wrapper's own guard): the app's code is there or
        # above, never in the frames between, which need not be looked at (see find_caller).
        caller_frame = sys._getframe(2)
    except ValueError:  # called from C with no Python frame above the wrapper
        caller_frame = None
    try:
        request, new_kwargs = handler.request(instance, args, kwargs)
        call_kwargs = kwargs if new_kwargs is None else new_kwargs
        call = instrumentor.recorder.start(request, current, caller_frame, call_kwargs)
    except Exception:
        logger.debug("posthog-instrument: could not describe the call", exc_info=True)
        return None, kwargs, None
    if call is None:
        return None, call_kwargs, None
    try:
        # Even without content capture: tool definitions are metadata and still recorded.
        if handler.input_can_wait and call.deferred:
            call.expect_request_body(call_kwargs)
            call.later(_record_input_as_sent, handler, call, instance, args)
        else:
            handler.record_input(call, instance, args, call_kwargs)
    except Exception:
        # Input we cannot read: the call is still recorded, without it.
        logger.debug("posthog-instrument: could not record the input", exc_info=True)
    return call, call_kwargs, call.attach(current)


def _record_input_as_sent(handler: CallHandler, call: InferenceCall, instance: Any, args: tuple) -> None:
    # On the export thread, from the request as sent (or the arguments, copied as called).
    handler.record_input(call, instance, args, call.arguments_as_sent() or {})


def keep_request_body(wrapped, instance, args, kwargs):
    """Wraps a generated SDK's ``BaseClient._build_request`` (openai, anthropic): hands the
    JSON body it serialised to the call being recorded, if that call expects one."""
    request = wrapped(*args, **kwargs)
    try:
        call = active_call()
        if call is not None:
            call.request_body(getattr(request, "_content", None))
    except Exception:
        pass
    return request


def keep_response_body(wrapped, instance, args, kwargs):
    """Wraps a generated SDK's ``BaseAPIResponse._parse`` (openai): hands the body of a
    response read whole (not a stream's) to the call being recorded."""
    result = wrapped(*args, **kwargs)
    try:
        call = active_call()
        if call is not None:
            call.response_body(getattr(instance.http_response, "_content", None))
    except Exception:
        pass
    return result


def _fail(handler: CallHandler, call: InferenceCall, exc: BaseException) -> None:
    call.app_resumes()
    try:
        status = handler.error_status(exc)
    except Exception:
        status = None
    call.fail(exc, status)


def _complete(handler: CallHandler, call: InferenceCall, result: Any, kwargs: dict) -> Any:
    call.app_resumes()
    try:
        return handler.result(call, result, kwargs)
    except Exception:
        logger.debug("posthog-instrument: could not record the result", exc_info=True)
        call.end()
        return result


# The wrappers that record one call through ``handler``: ``targets`` use them, and adapters that
# choose per call between recording and passing through (anthropic, bedrock) call them directly.
def sync_wrapper(instrumentor: LLMInstrumentor, handler: CallHandler) -> Callable:
    def wrapper(wrapped, instance, args, kwargs):
        call, call_kwargs, token = _begin(instrumentor, handler, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **call_kwargs)
        except BaseException as exc:
            _fail(handler, call, exc)
            raise
        finally:
            call.detach(token)
        return _complete(handler, call, result, call_kwargs)

    return wrapper


def async_wrapper(instrumentor: LLMInstrumentor, handler: CallHandler) -> Callable:
    def wrapper(wrapped, instance, args, kwargs):
        # Return a coroutine like the original does; recording starts when it is awaited.
        async def traced():
            call, call_kwargs, token = _begin(instrumentor, handler, instance, args, kwargs)
            if call is None:
                return await wrapped(*args, **kwargs)
            try:
                result = await wrapped(*args, **call_kwargs)
            except BaseException as exc:
                _fail(handler, call, exc)
                raise
            finally:
                call.detach(token)
            return _complete(handler, call, result, call_kwargs)

        return traced()

    return wrapper


def is_stream(result: Any) -> bool:
    """A streamed result (sync or async): an iterator by its type, as ``next()`` sees it.
    Not ``hasattr``: on a pydantic model (every plain result) it goes through the model's and
    its metaclass's ``__getattr__``, a raised and caught AttributeError each (~5 µs a call),
    and a proxy that only forwards attributes to an iterator is not one itself.

    Answered once per type (``isinstance`` against the ABCs is two Python-level calls every
    time), except for types that give their instances another ``__class__`` (proxies): for
    those ``isinstance`` also asks what they stand for, and is asked every time."""
    kind = type(result)
    answer = _stream_types.get(kind)
    if answer is None:
        if len(_stream_types) > 512:
            _stream_types.clear()
        if any("__class__" in vars(base) for base in kind.__mro__[:-1]):
            answer = _stream_types[kind] = _ASK_EACH_TIME
        else:
            answer = _stream_types[kind] = issubclass(kind, (Iterator, AsyncIterator))
    if answer is _ASK_EACH_TIME:
        return isinstance(result, (Iterator, AsyncIterator))
    return answer


# type -> is a stream, or _ASK_EACH_TIME for a type whose instances give another __class__
_stream_types: dict = {}
_ASK_EACH_TIME = object()


def client_base_url(client: Any) -> Any:
    """The base URL of a generated SDK client (OpenAI, Anthropic). Read from the attribute
    behind the public property: openai 3.x's property runs an import on every read (1.6 µs),
    and in its later releases ``_base_url`` is a property that reads it too."""
    url = getattr(client, "_configured_base_url", None)
    if url is None:
        url = getattr(client, "_base_url", None)
    return url if url is not None else getattr(client, "base_url", None)


def base_url_text(url: Any) -> Optional[str]:
    """A client's base URL (see ``client_base_url``) as text, cached per URL object: the app
    thread pays a lookup."""
    if url is None:
        return None
    cached = _base_url_texts.get(id(url))
    if cached is not None and cached[0] is url:
        return cached[1]
    if len(_base_url_texts) > 256:
        _base_url_texts.clear()
    text = str(url)
    _base_url_texts[id(url)] = (url, text)
    return text


_base_url_texts: dict = {}


def with_list(kwargs: dict, name: str) -> Optional[dict]:
    """Replacement keyword arguments when the app passed an iterator as ``name``, else None.

    An iterator can be read once: it is read into a list for both us and the SDK.
    """
    value = kwargs.get(name)
    if value is not None and not isinstance(value, (list, tuple)):
        return dict(kwargs, **{name: list(value)})
    return None


class RequestHandOver:
    """The request an SDK builds inside a call we began (in its ``_make_request`` or
    ``_prepare_request``, often only at a stream's first chunk), handed to that call and no other.

    ``wrapper`` patches the SDK's builder: what it built is passed through ``keep`` (make an
    immutable copy of what the app may still change) and recorded on the export thread by
    ``record(call, kept)`` (``InferenceCall.later``). A handler ``expect``s the request for its call
    when the call starts, and ``forget``s a call that ended without one."""

    def __init__(self, keep: Callable[[Any], Any], record: Callable[[InferenceCall, Any], None]):
        self.keep = keep
        self.record = record
        self._waiting: dict = {}  # id -> call

    def expect(self, call: InferenceCall) -> None:
        if len(self._waiting) > 4096:  # calls whose request was never built (cancelled first)
            self._waiting.clear()
        self._waiting[id(call)] = call

    def forget(self, call: Optional[InferenceCall]) -> None:
        self._waiting.pop(id(call), None)

    def wrapper(self, wrapped, instance, args, kwargs):
        built = wrapped(*args, **kwargs)
        try:
            call = active_call()
            if call is not None and self._waiting.pop(id(call), None) is call:
                call.later(self.record, call, self.keep(built))
        except Exception:
            pass
        return built


def steps_within_call(stream: Any, call: InferenceCall, status_of: Optional[Callable] = None) -> Any:
    """A stream whose SDK does its work as it is iterated (a generator function builds its request,
    and starts its own span, at the first chunk), in a proxy that fetches each chunk with our call
    current and gives the app its own context back while it has the chunk. ``status_of``: the
    HTTP status of an error raised while fetching."""
    if hasattr(stream, "__anext__"):
        return _AsyncStepsWithinCall(stream, call, status_of)
    return _StepsWithinCall(stream, call, status_of)


class _StepsWithinCall(wrapt.ObjectProxy):
    def __init__(self, stream: Any, call: InferenceCall, status_of: Optional[Callable]):
        super().__init__(stream)
        self._self_call = call
        self._self_status_of = status_of

    def __iter__(self):
        return self

    def __next__(self):
        call = self._self_call
        token = call.attach()
        try:
            return next(self.__wrapped__)
        except StopIteration:
            raise
        except Exception as exc:
            status_of = self._self_status_of
            call.fail(exc, status_of(exc) if status_of else None)
            raise
        finally:
            call.detach(token)

    def close(self):
        # The SDK's generator ends (and its span, if it keeps one current) inside our call too.
        token = self._self_call.attach()
        try:
            return self.__wrapped__.close()
        finally:
            self._self_call.detach(token)

    def __del__(self):
        try:
            if getattr(self.__wrapped__, "gi_frame", None) is not None:
                self.close()
        except Exception:
            pass


class _AsyncStepsWithinCall(wrapt.ObjectProxy):
    def __init__(self, stream: Any, call: InferenceCall, status_of: Optional[Callable]):
        super().__init__(stream)
        self._self_call = call
        self._self_status_of = status_of

    def __aiter__(self):
        return self

    async def __anext__(self):
        call = self._self_call
        token = call.attach()
        try:
            return await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            raise
        except Exception as exc:
            status_of = self._self_status_of
            call.fail(exc, status_of(exc) if status_of else None)
            raise
        finally:
            call.detach(token)

    async def aclose(self):
        token = self._self_call.attach()
        try:
            return await self.__wrapped__.aclose()
        finally:
            self._self_call.detach(token)


class StepGenerator:
    """A generator a framework returns for a step (an agent's streamed run, a step that yields
    its progress): the step is current only while the generator runs (each ``next``), so the
    app's code between items is not inside it, and it ends when the generator is exhausted (its
    output from ``output(last item)``, if given), fails, or is closed or dropped. ``observe``, if
    given, sees every item as it passes."""

    def __init__(
        self, step: Any, generator: Any, output: Optional[Callable] = None, observe: Optional[Callable] = None
    ):
        self._step = step
        self._generator = generator
        self._output = output
        self._observe = observe
        self._last: Any = None

    def __iter__(self):
        return self

    def __next__(self):
        return self._resume(self._generator.__next__)

    def send(self, value):
        return self._resume(self._generator.send, value)

    def throw(self, *args):
        return self._resume(self._generator.throw, *args)

    def close(self):
        try:
            self._generator.close()
        finally:
            end_step(self._step)

    def _resume(self, advance, *args):
        step = self._step
        token = step.attach()
        try:
            item = advance(*args)
        except StopIteration:
            end_step(step, self._output, self._last)
            raise
        except BaseException as exc:
            if not step.ended:
                step.fail(exc)
            raise
        finally:
            step.detach(token)
        self._last = item
        if self._observe is not None:
            observe_item(self._observe, item)
        return item

    def __getattr__(self, name):
        return getattr(self._generator, name)

    def __del__(self):
        step = self.__dict__.get("_step")  # (not through __getattr__: __init__ may not have run)
        if step is not None:
            end_step(step)


class AsyncStepGenerator:
    """:class:`StepGenerator` for an async generator (or any async iterator)."""

    def __init__(
        self, step: Any, generator: Any, output: Optional[Callable] = None, observe: Optional[Callable] = None
    ):
        self._step = step
        self._generator = generator
        self._output = output
        self._observe = observe
        self._last: Any = None

    def __aiter__(self):
        return self

    def __anext__(self):
        return self._resume(self._generator.__anext__)

    def asend(self, value):
        return self._resume(self._generator.asend, value)

    def athrow(self, *args):
        return self._resume(self._generator.athrow, *args)

    async def aclose(self):
        try:
            close = getattr(self._generator, "aclose", None)
            if close is not None:
                await close()
        finally:
            end_step(self._step)

    async def _resume(self, advance, *args):
        step = self._step
        token = step.attach()
        try:
            item = await advance(*args)
        except StopAsyncIteration:
            end_step(step, self._output, self._last)
            raise
        except BaseException as exc:
            if not step.ended:
                step.fail(exc)
            raise
        finally:
            step.detach(token)
        self._last = item
        if self._observe is not None:
            observe_item(self._observe, item)
        return item

    def __getattr__(self, name):
        return getattr(self._generator, name)

    def __del__(self):
        step = self.__dict__.get("_step")  # (not through __getattr__: __init__ may not have run)
        if step is not None:
            end_step(step)


def observe_item(observe: Callable, item: Any) -> None:
    try:
        observe(item)
    except Exception:
        logger.debug("posthog-instrument: could not read a streamed item", exc_info=True)


def end_step(step: Any, output: Optional[Callable] = None, last: Any = None) -> None:
    """End a step if it has not ended, with ``output(last)`` as its output state (read only when
    content is recorded); never raises."""
    try:
        if step.ended:
            return
        if output is not None and step.capture_content:  # (content is not even read otherwise)
            state = output(last)
            if state is not None:
                step.set_output_state(state)
    except Exception:
        logger.debug("posthog-instrument: could not record a step's output", exc_info=True)
    try:
        step.end()
    except Exception:
        logger.debug("posthog-instrument: could not end a step", exc_info=True)


def start_step(
    instrumentor: LLMInstrumentor,
    describe: Callable[[], Any],
    read_input: Optional[Callable[[], Any]] = None,
    parent: Optional[Callable[[], Any]] = None,
) -> Optional[StepCall]:
    """A framework adapter's step for ``describe()`` (a ``StepRequest``), with ``read_input()``
    as its input state, read only when content is recorded; under ``parent()`` (a context) if
    given, else the current span. None when instrumentation is suppressed or anything of ours
    fails (logged at debug level): the framework then runs as if we were not there."""
    if not is_instrumentation_enabled():
        return None
    try:
        step = instrumentor.recorder.start_step(describe(), parent() if parent is not None else None)
    except Exception:
        logger.debug("posthog-instrument: could not start a step", exc_info=True)
        return None
    if step is not None and read_input is not None and step.capture_content:
        try:
            step.set_input_state(read_input())
        except Exception:
            logger.debug("posthog-instrument: could not record a step's input", exc_info=True)
    return step


def call_in_step(step: StepCall, wrapped: Callable, args: tuple, kwargs: dict) -> Any:
    """``wrapped(*args, **kwargs)`` with ``step`` current; an exception fails the step and
    reaches the caller unchanged. The step stays open for the caller to end."""
    token = step.attach()
    try:
        return wrapped(*args, **kwargs)
    except BaseException as exc:
        step.fail(exc)
        raise
    finally:
        step.detach(token)


async def await_in_step(step: StepCall, wrapped: Callable, args: tuple = (), kwargs: Optional[dict] = None) -> Any:
    """:func:`call_in_step` for a coroutine function: ``wrapped(*args, **kwargs)`` is called
    and awaited with ``step`` current."""
    token = step.attach()
    try:
        return await wrapped(*args, **(kwargs or {}))
    except BaseException as exc:
        step.fail(exc)
        raise
    finally:
        step.detach(token)


async def items_in_call(
    call: Any,
    stream: Any,
    enter: Callable[[], Any],
    leave: Callable[[Any], None],
    observe: Optional[Callable[[Any], None]] = None,
    finish: Optional[Callable[[Any], None]] = None,
):
    """Yield an async ``stream``'s items unchanged, with ``call`` current while each is produced
    (``enter()``, then ``leave(token)``: an adapter's own way of making it current). ``observe``
    sees each item; at the end ``finish(last item)`` records the result and the call ends. An
    error fails the call and reaches the consumer; a consumer that stops early closes the stream,
    and the call ends with what was read."""
    last = None
    completed = False
    try:
        while True:
            token = enter()
            try:
                item = await stream.__anext__()
            except StopAsyncIteration:
                break
            finally:
                leave(token)
            last = item
            if observe is not None:
                observe_item(observe, item)
            yield item
        completed = True
    except GeneratorExit:  # the consumer closed the stream: not a failure
        raise
    except BaseException as exc:
        call.fail(exc)
        raise
    finally:
        if not completed and not call.ended:
            try:
                await stream.aclose()
            except Exception:
                pass
            call.end()
    if finish is not None:
        try:
            finish(last)
        except Exception:
            logger.debug("posthog-instrument: could not record a stream's result", exc_info=True)
    call.end()
