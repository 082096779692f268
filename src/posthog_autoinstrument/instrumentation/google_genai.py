"""Google Gen AI SDK (``google-genai``) adapter: Gemini API and Vertex AI, sync and async.

What is patched, and why there:

* ``Models._generate_content`` / ``_generate_content_stream`` (and ``AsyncModels``): the
  methods that send exactly one model request. The public ``generate_content[_stream]``
  may send several: automatic function calling runs the app's Python tools between model
  requests, and automatic continuation resumes a cut-off answer with a new request. Each
  request has its own prompt, answer and token usage, so each is one generation; a public
  call recorded as one span would count only the last request's tokens. Everything built
  on the public methods is covered through them: ``client.chats`` (``send_message`` /
  ``send_message_stream``, sync and async) and ``client.aio``. These private methods have
  had the same shape since google-genai 1.0; if a release renames them they are skipped
  (see base.py) rather than breaking the app.
* ``Models.embed_content`` / ``AsyncModels.embed_content``: one request per call.

The operation is ``generate_content``, the conventions' name for Gemini's multimodal
generation (the PostHog dialect maps it to ``chat``, which PostHog needs for a generation).
The provider is ``gcp.vertex_ai`` for a client created with ``vertexai=True``, else
``gcp.gemini``.

Usage: ``promptTokenCount`` already includes ``cachedContentTokenCount`` (and tool-use
prompt tokens are added to it, as they are billed as input); ``candidatesTokenCount`` is
the output and excludes ``thoughtsTokenCount``, which is reported as reasoning tokens.
PostHog's cost model for Gemini adds reasoning tokens to the output itself, so folding
them into the output here would bill them twice.
"""

from __future__ import annotations

import base64
from typing import Any, Optional

from ..genai import InferenceCall, InferenceRequest, StreamAccumulator, Usage
from ..genai import messages as m
from ..genai import semconv
from ..genai.semconv import Provider
from ..genai.streams import observe_stream
from .base import CallHandler, LLMInstrumentor, Target, get, host_and_port, integer, number

_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "MODEL_ARMOR": "content_filter",
}
# Built-in (provider-hosted) tools a ``types.Tool`` may carry besides function declarations.
_HOSTED_TOOLS = (
    "google_search", "google_search_retrieval", "code_execution", "retrieval", "url_context",
    "google_maps", "file_search", "computer_use", "enterprise_web_search", "parallel_ai_search",
    "exa_ai_search", "mcp_servers",
)


# -- small helpers -------------------------------------------------------------------------


def _enum_text(value: Any) -> Optional[str]:
    """The SDK's enums are ``str`` subclasses; plain strings are accepted too."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _plain(value: Any) -> Any:
    """A JSON-ready copy of a schema given as an SDK model (``types.Schema``) or a dict."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump(mode="json", exclude_none=True)
        except Exception:
            return None
    return value


def _modality(mime_type: Optional[str]) -> str:
    kind = (mime_type or "").split("/", 1)[0]
    return kind if kind in ("image", "audio", "video") else "document"


def _finish_reason(reason: Any) -> Optional[str]:
    text = _enum_text(reason)
    if not text or text == "FINISH_REASON_UNSPECIFIED":
        return None
    return _FINISH_REASONS.get(text, text.lower())


def _endpoint(models: Any) -> tuple:
    """(provider, server address, server port) of a ``Models`` / ``AsyncModels`` resource."""
    api_client = getattr(models, "_api_client", None)
    provider = Provider.GCP_VERTEX_AI if getattr(api_client, "vertexai", False) else Provider.GCP_GEMINI
    base_url = getattr(getattr(api_client, "_http_options", None), "base_url", None)
    host, port = host_and_port(base_url)
    return provider, host, port


def _base_url(models: Any) -> Optional[str]:
    base_url = getattr(getattr(getattr(models, "_api_client", None), "_http_options", None), "base_url", None)
    return base_url if isinstance(base_url, str) else None


# -- content translation ----------------------------------------------------------------------


def _part(part: Any) -> Optional[dict]:
    """One Gemini ``Part`` (an SDK object or its dict form, or a bare string) as a conventions part."""
    if isinstance(part, str):
        return m.text(part)
    if type(part).__module__.startswith("PIL."):  # a PIL image: the SDK encodes it; reading it here could load it
        return m.generic("image")
    text = get(part, "text")
    if isinstance(text, str):
        if not text:  # e.g. the empty text that carries only a thought signature
            return None
        return m.reasoning(text) if get(part, "thought") else m.text(text)
    call = get(part, "function_call")
    if call is not None:
        return m.tool_call(get(call, "id"), get(call, "name"), get(call, "args") or {})
    response = get(part, "function_response")
    if response is not None:
        return m.tool_call_response(get(response, "id"), get(response, "response"))
    inline = get(part, "inline_data")
    if inline is not None:
        mime_type = get(inline, "mime_type")
        data = get(inline, "data")
        if isinstance(data, (bytes, bytearray)):
            data = base64.b64encode(data).decode("ascii")
        return m.blob(_modality(mime_type), mime_type, data if isinstance(data, str) else "")
    file_data = get(part, "file_data")
    if file_data is not None:
        mime_type = get(file_data, "mime_type")
        return m.uri(_modality(mime_type), get(file_data, "file_uri") or "", mime_type)
    code = get(part, "executable_code")
    if code is not None:
        return m.generic("executable_code", code=get(code, "code"), language=_enum_text(get(code, "language")))
    result = get(part, "code_execution_result")
    if result is not None:
        return m.generic("code_execution_result", outcome=_enum_text(get(result, "outcome")), output=get(result, "output"))
    uri = get(part, "uri")  # a ``types.File`` uploaded through the Files API
    if isinstance(uri, str):
        mime_type = get(part, "mime_type")
        return m.uri(_modality(mime_type), uri, mime_type)
    return None


def _parts(values: Any) -> list:
    parts = []
    for value in values or ():
        part = _part(value)
        if part is not None:
            parts.append(part)
    return parts


def _is_content(value: Any) -> bool:
    if isinstance(value, dict):
        return "parts" in value or "role" in value
    return hasattr(value, "parts") and hasattr(value, "role")


def _role(role: Any, parts: list) -> str:
    if role == "model":
        return "assistant"
    if parts and all(p.get("type") == "tool_call_response" for p in parts):
        return "tool"
    return role or "user"


def _message(content: Any) -> dict:
    parts = _parts(get(content, "parts"))
    return m.message(_role(get(content, "role"), parts), parts)


def _contents(contents: Any) -> list:
    """``contents`` in any form the SDK accepts, as messages (grouped as the SDK groups them)."""
    if contents is None:
        return []
    if isinstance(contents, str) or not isinstance(contents, (list, tuple)):
        if _is_content(contents):
            return [_message(contents)]
        parts = _parts([contents])
        return [m.message(_role("user", parts), parts)] if parts else []
    result: list = []
    pending: list = []

    def flush() -> None:
        if pending:
            role = "assistant" if any(p.get("type") == "tool_call" for p in pending) else _role("user", pending)
            result.append(m.message(role, list(pending)))
            pending.clear()

    for item in contents:
        if _is_content(item):
            flush()
            result.append(_message(item))
        elif isinstance(item, (list, tuple)):
            flush()
            parts = _parts(item)
            result.append(m.message(_role("user", parts), parts))
        else:
            part = _part(item)
            if part is None:
                continue
            if pending and (part.get("type") == "tool_call") != (pending[-1].get("type") == "tool_call"):
                flush()
            pending.append(part)
    flush()
    return result


def _system_instructions(value: Any) -> list:
    if value is None:
        return []
    if _is_content(value):
        return _parts(get(value, "parts"))
    if isinstance(value, (list, tuple)):
        return _parts(value)
    return _parts([value])


def _callable_tool(function: Any, api_client: Any) -> dict:
    """A Python function given as a tool, described exactly as the SDK describes it to the API."""
    try:
        from google.genai import types  # already imported by the app that passed the function

        try:
            declaration = types.FunctionDeclaration.from_callable(client=api_client, callable=function, use_json_schema=True)
        except TypeError:  # google-genai before use_json_schema
            declaration = types.FunctionDeclaration.from_callable(client=api_client, callable=function)
        return m.function_tool(declaration.name, declaration.description,
                               _plain(declaration.parameters_json_schema or declaration.parameters))
    except Exception:
        return m.function_tool(getattr(function, "__name__", None), getattr(function, "__doc__", None))


def _tool_definitions(tools: Any, api_client: Any) -> list:
    definitions: list = []
    for tool in tools or ():
        if callable(tool) and not isinstance(tool, dict):
            definitions.append(_callable_tool(tool, api_client))
            continue
        if "Session" in type(tool).__name__:  # an MCP ClientSession
            definitions.append(m.other_tool("mcp"))
            continue
        for declaration in get(tool, "function_declarations") or ():
            parameters = get(declaration, "parameters_json_schema") or get(declaration, "parameters")
            definitions.append(m.function_tool(get(declaration, "name"), get(declaration, "description"),
                                               _plain(parameters) if parameters is not None else None))
        for kind in _HOSTED_TOOLS:
            if get(tool, kind) is not None:
                definitions.append(m.other_tool(kind))
    return definitions


def _output_type(config: Any) -> Optional[str]:
    mime_type = get(config, "response_mime_type")
    if mime_type == "application/json" or get(config, "response_schema") is not None \
            or get(config, "response_json_schema") is not None:
        return "json"
    if mime_type == "text/plain":
        return "text"
    return None


# -- response translation ---------------------------------------------------------------------


def _usage(metadata: Any) -> Optional[Usage]:
    if metadata is None:
        return None
    prompt = integer(get(metadata, "prompt_token_count"))
    tool_prompt = integer(get(metadata, "tool_use_prompt_token_count"))
    if prompt is not None and tool_prompt:
        prompt += tool_prompt
    return Usage(
        input_tokens=prompt,
        output_tokens=integer(get(metadata, "candidates_token_count")),
        cache_read_input_tokens=integer(get(metadata, "cached_content_token_count")),
        reasoning_tokens=integer(get(metadata, "thoughts_token_count")),
    )


def _candidate_reason(candidate: Any, calls_tool: bool) -> Optional[str]:
    # Gemini ends a turn that calls functions with STOP; the conventions call it a tool call.
    reason = _finish_reason(get(candidate, "finish_reason"))
    return "tool_call" if reason == "stop" and calls_tool else reason


def _calls_tool(parts: Any) -> bool:
    return any(get(part, "function_call") is not None for part in parts or () if not isinstance(part, str))


def _blocked_reason(response: Any) -> Optional[str]:
    feedback = get(response, "prompt_feedback")
    return "content_filter" if feedback is not None and get(feedback, "block_reason") is not None else None


def _record_response(call: InferenceCall, response: Any) -> None:
    candidates = get(response, "candidates") or ()
    outputs = []
    reasons = []
    for candidate in candidates:
        content = get(candidate, "content")
        raw_parts = get(content, "parts") if content is not None else None
        parts = _parts(raw_parts) if call.capture_content else []
        reason = _candidate_reason(candidate, _calls_tool(raw_parts))
        reasons.append(reason)
        outputs.append(m.output_message(parts, reason))
    if not candidates and _blocked_reason(response):
        reasons.append(_blocked_reason(response))
    call.set_response(
        model=get(response, "model_version"),
        response_id=get(response, "response_id"),
        finish_reasons=[r for r in reasons if r],
        usage=_usage(get(response, "usage_metadata")),
    )
    if call.capture_content:
        call.set_output(outputs)


class _CandidateState(m.PartRuns):
    __slots__ = ("finish_reason", "calls_tool")

    def __init__(self):
        super().__init__()
        self.finish_reason: Any = None
        self.calls_tool = False  # known even when content is not captured


class GenerateContentStreamAccumulator(StreamAccumulator):
    """Folds streamed ``GenerateContentResponse`` chunks into one answer.

    Every chunk carries the running usage of the request, so the last one seen is the
    request's usage; it is read at once because the SDK replaces chunks' usage later.
    """

    __slots__ = ("capture", "model", "response_id", "usage", "candidates", "blocked")

    def __init__(self, capture: bool):
        self.capture = capture
        self.model = None
        self.response_id = None
        self.usage: Optional[Usage] = None
        self.candidates: dict = {}
        self.blocked: Optional[str] = None

    def on_chunk(self, chunk: Any) -> bool:
        model = getattr(chunk, "model_version", None)
        if model:
            self.model = model
        response_id = getattr(chunk, "response_id", None)
        if response_id:
            self.response_id = response_id
        usage = _usage(getattr(chunk, "usage_metadata", None))
        if usage is not None:
            self.usage = usage
        self.blocked = self.blocked or _blocked_reason(chunk)
        for position, candidate in enumerate(getattr(chunk, "candidates", None) or ()):
            index = getattr(candidate, "index", None)
            index = position if index is None else index
            state = self.candidates.get(index)
            if state is None:
                state = self.candidates[index] = _CandidateState()
            if candidate.finish_reason:
                state.finish_reason = candidate.finish_reason
            parts = candidate.content.parts if candidate.content is not None else None
            if parts:
                state.calls_tool = state.calls_tool or _calls_tool(parts)
                if self.capture:
                    for part in parts:
                        translated = _part(part)
                        if translated is not None:
                            state.add(translated)
        return False

    def finish(self, call: InferenceCall) -> None:
        ordered = [self.candidates[i] for i in sorted(self.candidates)]
        outputs = []
        reasons = []
        for state in ordered:
            parts = state.parts()
            reason = _candidate_reason(state, state.calls_tool)
            reasons.append(reason)
            outputs.append(m.output_message(parts, reason))
        if not ordered and self.blocked:
            reasons.append(self.blocked)
        call.set_response(model=self.model, response_id=self.response_id,
                          finish_reasons=[r for r in reasons if r], usage=self.usage)
        if self.capture:
            call.set_output(outputs)


# -- handlers -----------------------------------------------------------------------------------


def _api_error_status(exc: BaseException):
    # google-genai's APIError keeps the HTTP status in `code`.
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) and not isinstance(code, bool) else None


class GenerateContent(CallHandler):
    """One model request: ``_generate_content`` or ``_generate_content_stream``."""

    error_status = staticmethod(_api_error_status)

    def __init__(self, stream: bool):
        self.stream = stream

    def request(self, instance, args, kwargs):
        provider, address, port = _endpoint(instance)
        config = kwargs.get("config")
        thinking = get(config, "thinking_config") if config is not None else None
        request = InferenceRequest(
            provider=provider,
            model=kwargs.get("model"),
            operation=semconv.Operation.GENERATE_CONTENT,
            server_address=address,
            server_port=port,
            stream=self.stream,
            attributes={semconv.BASE_URL: _base_url(instance)},
        )
        if config is not None:
            request.temperature = number(get(config, "temperature"))
            request.top_p = number(get(config, "top_p"))
            request.top_k = number(get(config, "top_k"))
            request.max_tokens = number(get(config, "max_output_tokens"))
            request.stop_sequences = get(config, "stop_sequences")
            request.seed = number(get(config, "seed"))
            request.frequency_penalty = number(get(config, "frequency_penalty"))
            request.presence_penalty = number(get(config, "presence_penalty"))
            request.choice_count = number(get(config, "candidate_count"))
            request.output_type = _output_type(config)
            level = _enum_text(get(thinking, "thinking_level")) if thinking is not None else None
            request.reasoning_level = level.lower() if level and level != "THINKING_LEVEL_UNSPECIFIED" else None
        return request, None

    def record_input(self, call, instance, args, kwargs):
        config = kwargs.get("config")
        call.set_input(
            messages=_contents(kwargs.get("contents")),
            system_instructions=_system_instructions(get(config, "system_instruction")) if config is not None else None,
            tool_definitions=_tool_definitions(get(config, "tools"), getattr(instance, "_api_client", None))
            if config is not None else None,
        )

    def result(self, call, result, kwargs):
        if self.stream:
            accumulator = GenerateContentStreamAccumulator(call.capture_content)
            return observe_stream(result, call, accumulator)
        _record_response(call, result)
        call.end()
        return result


def _embedding_texts(contents: Any) -> list:
    texts = []
    for message in _contents(contents):
        text = " ".join(p["content"] for p in message["parts"] if p.get("type") == "text")
        if text:
            texts.append(text)
    return texts


class EmbedContent(CallHandler):
    error_status = staticmethod(_api_error_status)

    def request(self, instance, args, kwargs):
        provider, address, port = _endpoint(instance)
        return InferenceRequest(provider=provider, model=kwargs.get("model"), operation=semconv.Operation.EMBEDDINGS,
                                server_address=address, server_port=port,
                                attributes={semconv.BASE_URL: _base_url(instance)}), None

    def record_input(self, call, instance, args, kwargs):
        contents = kwargs.get("contents")
        # Each item of a list is embedded on its own, so each is one input.
        items = contents if isinstance(contents, (list, tuple)) else [contents]
        texts = [text for item in items for text in _embedding_texts(item)]
        call.set_input(messages=[m.message("user", [m.text(t)]) for t in texts])

    def result(self, call, result, kwargs):
        embeddings = get(result, "embeddings") or ()
        values = get(embeddings[0], "values") if embeddings else None
        metadata = get(result, "usage_metadata")
        tokens = integer(get(metadata, "prompt_token_count")) if metadata is not None else None
        if tokens is None:  # Vertex AI reports tokens per embedding instead
            counts = [get(get(e, "statistics"), "token_count") for e in embeddings if get(e, "statistics") is not None]
            counts = [integer(c) for c in counts if number(c) is not None]
            tokens = sum(counts) if counts else None
        call.set_response(
            usage=Usage(input_tokens=tokens) if tokens is not None else None,
            attributes={semconv.EMBEDDINGS_DIMENSION_COUNT: len(values) if isinstance(values, list) else None},
        )
        call.end()
        return result


class GoogleGenAIInstrumentor(LLMInstrumentor):
    requirements = ("google-genai >= 1.0.0, < 4",)

    def targets(self) -> list:
        module = "google.genai.models"
        generate, stream, embed = GenerateContent(stream=False), GenerateContent(stream=True), EmbedContent()
        return [
            Target(module, "Models._generate_content", generate),
            Target(module, "Models._generate_content_stream", stream),
            Target(module, "Models.embed_content", embed),
            Target(module, "AsyncModels._generate_content", generate, is_async=True),
            # A coroutine that sends the request and returns the async iterator of chunks.
            Target(module, "AsyncModels._generate_content_stream", stream, is_async=True),
            Target(module, "AsyncModels.embed_content", embed, is_async=True),
        ]
