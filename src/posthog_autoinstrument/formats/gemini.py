"""Google's Gemini format, as the ``google-genai`` SDK speaks it (Gemini API and Vertex AI).

Requests: ``contents`` in any form the SDK accepts (strings, parts, ``Content`` objects, lists of
them, their dict forms) and the ``GenerateContentConfig`` (sampling, system instruction, tools,
structured output, thinking). Responses: candidates, finish reasons, usage metadata, and the
streamed chunks folded into one answer by ``StreamedResponse``.

Usage: ``promptTokenCount`` already includes ``cachedContentTokenCount`` (tool-use prompt tokens
are added to it, as they are billed as input); ``candidatesTokenCount`` is the output and excludes
``thoughtsTokenCount``, which is reported as reasoning tokens. PostHog's cost model for Gemini
adds reasoning tokens to the output itself, so folding them into the output here would bill them
twice.
"""

from __future__ import annotations

import base64
from typing import Any, Optional

from ..genai import InferenceRequest, Usage
from ..genai import messages as m
from .fields import get, integer, number

FINISH_REASONS = {
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
HOSTED_TOOLS = (
    "google_search",
    "google_search_retrieval",
    "code_execution",
    "retrieval",
    "url_context",
    "google_maps",
    "file_search",
    "computer_use",
    "enterprise_web_search",
    "parallel_ai_search",
    "exa_ai_search",
    "mcp_servers",
)


# -- small helpers -------------------------------------------------------------------------


def enum_text(value: Any) -> Optional[str]:
    """The SDK's enums are ``str`` subclasses; plain strings are accepted too."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def plain(value: Any) -> Any:
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


def finish_reason(reason: Any) -> Optional[str]:
    """A candidate's ``finish_reason`` in the conventions' terms (unknown ones lower-cased)."""
    text = enum_text(reason)
    if not text or text == "FINISH_REASON_UNSPECIFIED":
        return None
    return FINISH_REASONS.get(text, text.lower())


# -- content ----------------------------------------------------------------------------------


def part(value: Any) -> Optional[dict]:
    """One Gemini ``Part`` (an SDK object or its dict form, or a bare string) as a conventions part."""
    if isinstance(value, str):
        return m.text(value)
    if type(value).__module__.startswith("PIL."):  # a PIL image: the SDK encodes it; reading it here could load it
        return m.generic("image")
    text = get(value, "text")
    if isinstance(text, str):
        if not text:  # e.g. the empty text that carries only a thought signature
            return None
        return m.reasoning(text) if get(value, "thought") else m.text(text)
    call = get(value, "function_call")
    if call is not None:
        return m.tool_call(get(call, "id"), get(call, "name"), get(call, "args") or {})
    response = get(value, "function_response")
    if response is not None:
        return m.tool_call_response(get(response, "id"), get(response, "response"))
    inline = get(value, "inline_data")
    if inline is not None:
        mime_type = get(inline, "mime_type")
        data = get(inline, "data")
        if isinstance(data, (bytes, bytearray)):
            data = base64.b64encode(data).decode("ascii")
        return m.blob(_modality(mime_type), mime_type, data if isinstance(data, str) else "")
    file_data = get(value, "file_data")
    if file_data is not None:
        mime_type = get(file_data, "mime_type")
        return m.uri(_modality(mime_type), get(file_data, "file_uri") or "", mime_type)
    code = get(value, "executable_code")
    if code is not None:
        return m.generic("executable_code", code=get(code, "code"), language=enum_text(get(code, "language")))
    result = get(value, "code_execution_result")
    if result is not None:
        return m.generic(
            "code_execution_result", outcome=enum_text(get(result, "outcome")), output=get(result, "output")
        )
    uri = get(value, "uri")  # a ``types.File`` uploaded through the Files API
    if isinstance(uri, str):
        mime_type = get(value, "mime_type")
        return m.uri(_modality(mime_type), uri, mime_type)
    return None


def parts(values: Any) -> list:
    translated = []
    for value in values or ():
        one = part(value)
        if one is not None:
            translated.append(one)
    return translated


def _is_content(value: Any) -> bool:
    if isinstance(value, dict):
        return "parts" in value or "role" in value
    return hasattr(value, "parts") and hasattr(value, "role")


def _role(role: Any, translated: list) -> str:
    if role == "model":
        return "assistant"
    if translated and all(p.get("type") == "tool_call_response" for p in translated):
        return "tool"
    return role or "user"


def _message(content: Any) -> dict:
    translated = parts(get(content, "parts"))
    return m.message(_role(get(content, "role"), translated), translated)


def contents(value: Any) -> list:
    """``contents`` in any form the SDK accepts, as messages (grouped as the SDK groups them)."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        if _is_content(value):
            return [_message(value)]
        translated = parts([value])
        return [m.message(_role("user", translated), translated)] if translated else []
    result: list = []
    pending: list = []

    def flush() -> None:
        if pending:
            role = "assistant" if any(p.get("type") == "tool_call" for p in pending) else _role("user", pending)
            result.append(m.message(role, list(pending)))
            pending.clear()

    for item in value:
        if _is_content(item):
            flush()
            result.append(_message(item))
        elif isinstance(item, (list, tuple)):
            flush()
            translated = parts(item)
            result.append(m.message(_role("user", translated), translated))
        else:
            one = part(item)
            if one is None:
                continue
            if pending and (one.get("type") == "tool_call") != (pending[-1].get("type") == "tool_call"):
                flush()
            pending.append(one)
    flush()
    return result


def system_instructions(value: Any) -> list:
    if value is None:
        return []
    if _is_content(value):
        return parts(get(value, "parts"))
    if isinstance(value, (list, tuple)):
        return parts(value)
    return parts([value])


def embedding_texts(value: Any) -> list:
    """The texts of ``embed_content``'s ``contents``: each item of a list is embedded on its own."""
    items = value if isinstance(value, (list, tuple)) else [value]
    texts = []
    for item in items:
        for message in contents(item):
            text = " ".join(p["content"] for p in message["parts"] if p.get("type") == "text")
            if text:
                texts.append(text)
    return texts


# -- request --------------------------------------------------------------------------------


def _callable_tool(function: Any, api_client: Any) -> dict:
    """A Python function given as a tool, described exactly as the SDK describes it to the API."""
    try:
        from google.genai import types  # already imported by the app that passed the function

        try:
            declaration = types.FunctionDeclaration.from_callable(
                client=api_client, callable=function, use_json_schema=True
            )
        except TypeError:  # google-genai before use_json_schema
            declaration = types.FunctionDeclaration.from_callable(client=api_client, callable=function)
        return m.function_tool(
            declaration.name,
            declaration.description,
            plain(declaration.parameters_json_schema or declaration.parameters),
        )
    except Exception:
        return m.function_tool(getattr(function, "__name__", None), getattr(function, "__doc__", None))


def tool_definitions(tools: Any, api_client: Any = None) -> list:
    """The config's ``tools``: declarations, hosted tools, Python functions (described with
    ``api_client`` as the SDK describes them) and MCP sessions."""
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
            definitions.append(
                m.function_tool(
                    get(declaration, "name"),
                    get(declaration, "description"),
                    plain(parameters) if parameters is not None else None,
                )
            )
        for kind in HOSTED_TOOLS:
            if get(tool, kind) is not None:
                definitions.append(m.other_tool(kind))
    return definitions


def output_type(config: Any) -> Optional[str]:
    mime_type = get(config, "response_mime_type")
    if (
        mime_type == "application/json"
        or get(config, "response_schema") is not None
        or get(config, "response_json_schema") is not None
    ):
        return "json"
    if mime_type == "text/plain":
        return "text"
    return None


def request_parameters(request: InferenceRequest, config: Any) -> InferenceRequest:
    """``request`` (returned) with the sampling and output parameters of a ``GenerateContentConfig``."""
    if config is None:
        return request
    request.temperature = number(get(config, "temperature"))
    request.top_p = number(get(config, "top_p"))
    request.top_k = number(get(config, "top_k"))
    request.max_tokens = number(get(config, "max_output_tokens"))
    request.stop_sequences = get(config, "stop_sequences")
    request.seed = number(get(config, "seed"))
    request.frequency_penalty = number(get(config, "frequency_penalty"))
    request.presence_penalty = number(get(config, "presence_penalty"))
    request.choice_count = number(get(config, "candidate_count"))
    request.output_type = output_type(config)
    thinking = get(config, "thinking_config")
    level = enum_text(get(thinking, "thinking_level")) if thinking is not None else None
    request.reasoning_level = level.lower() if level and level != "THINKING_LEVEL_UNSPECIFIED" else None
    return request


# -- response ---------------------------------------------------------------------------------


def usage(metadata: Any) -> Optional[Usage]:
    """``usage_metadata`` in the conventions' terms (input includes tool-use prompt tokens)."""
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


def embedding_usage(response: Any) -> Optional[Usage]:
    """Input tokens of an ``embed_content`` response (Vertex AI counts them per embedding)."""
    metadata = get(response, "usage_metadata")
    tokens = integer(get(metadata, "prompt_token_count")) if metadata is not None else None
    if tokens is None:
        counts = [
            get(get(e, "statistics"), "token_count")
            for e in get(response, "embeddings") or ()
            if get(e, "statistics") is not None
        ]
        counts = [integer(c) for c in counts if number(c) is not None]
        tokens = sum(counts) if counts else None
    return Usage(input_tokens=tokens) if tokens is not None else None


def embedding_dimensions(response: Any) -> Optional[int]:
    embeddings = get(response, "embeddings") or ()
    values = get(embeddings[0], "values") if embeddings else None
    return len(values) if isinstance(values, list) else None


def candidate_reason(candidate: Any, calls_tool: bool) -> Optional[str]:
    # Gemini ends a turn that calls functions with STOP; the conventions call it a tool call.
    reason = finish_reason(get(candidate, "finish_reason"))
    return "tool_call" if reason == "stop" and calls_tool else reason


def calls_tool(values: Any) -> bool:
    return any(get(value, "function_call") is not None for value in values or () if not isinstance(value, str))


def blocked_reason(response: Any) -> Optional[str]:
    """``content_filter`` for a prompt Gemini blocked (no candidates then), else None."""
    feedback = get(response, "prompt_feedback")
    return "content_filter" if feedback is not None and get(feedback, "block_reason") is not None else None


def response_outputs(response: Any, capture: bool) -> tuple:
    """(output messages, finish reasons) of a ``GenerateContentResponse``; no parts unless ``capture``."""
    candidates = get(response, "candidates") or ()
    outputs = []
    reasons = []
    for candidate in candidates:
        content = get(candidate, "content")
        raw_parts = get(content, "parts") if content is not None else None
        reason = candidate_reason(candidate, calls_tool(raw_parts))
        reasons.append(reason)
        outputs.append(m.output_message(parts(raw_parts) if capture else [], reason))
    if not candidates and blocked_reason(response):
        reasons.append(blocked_reason(response))
    return outputs, [r for r in reasons if r]


class _CandidateState(m.PartRuns):
    __slots__ = ("finish_reason", "calls_tool")

    def __init__(self):
        super().__init__()
        self.finish_reason: Any = None
        self.calls_tool = False  # known even when content is not captured


class StreamedResponse:
    """Streamed ``GenerateContentResponse`` chunks folded into one answer.

    Every chunk carries the running usage of the request, so the last one seen is the request's
    usage; it is read at once because the SDK replaces chunks' usage later.
    """

    __slots__ = ("capture", "model", "response_id", "usage", "candidates", "blocked")

    def __init__(self, capture: bool):
        self.capture = capture
        self.model = None
        self.response_id = None
        self.usage: Optional[Usage] = None
        self.candidates: dict = {}
        self.blocked: Optional[str] = None

    def add(self, chunk: Any) -> None:
        """One chunk: an SDK object or its dict form."""
        model = get(chunk, "model_version")
        if model:
            self.model = model
        response_id = get(chunk, "response_id")
        if response_id:
            self.response_id = response_id
        reported = usage(get(chunk, "usage_metadata"))
        if reported is not None:
            self.usage = reported
        self.blocked = self.blocked or blocked_reason(chunk)
        for position, candidate in enumerate(get(chunk, "candidates") or ()):
            index = get(candidate, "index")
            index = position if index is None else index
            state = self.candidates.get(index)
            if state is None:
                state = self.candidates[index] = _CandidateState()
            reason = get(candidate, "finish_reason")
            if reason:
                state.finish_reason = reason
            content = get(candidate, "content")
            raw_parts = get(content, "parts") if content is not None else None
            if raw_parts:
                state.calls_tool = state.calls_tool or calls_tool(raw_parts)
                if self.capture:
                    for value in raw_parts:
                        translated = part(value)
                        if translated is not None:
                            state.add(translated)

    def outputs(self) -> tuple:
        """(output messages, finish reasons) of the chunks so far."""
        outputs = []
        reasons = []
        for index in sorted(self.candidates):
            state = self.candidates[index]
            reason = candidate_reason(state, state.calls_tool)
            reasons.append(reason)
            outputs.append(m.output_message(state.parts(), reason))
        if not self.candidates and self.blocked:
            reasons.append(self.blocked)
        return outputs, [r for r in reasons if r]
