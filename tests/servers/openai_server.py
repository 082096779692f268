"""A loopback stand-in for the OpenAI (and Azure OpenAI) HTTP API.

The app under test usually runs in a subprocess, so every behaviour is chosen
by the request itself rather than by Python calls on this object:

* the **model name** selects faults: ``error-<status>`` (e.g. ``error-429``,
  ``error-500``, ``error-400``) answers with that status and OpenAI's error
  JSON; ``error-<status>x<N>`` fails only the first N attempts of a call
  (attempts are counted by the SDK's ``x-stainless-retry-count`` header) so a
  retry then succeeds; ``slow-<ms>`` waits before answering normally;
  ``stream-error`` cuts a stream after two content chunks by closing the
  connection mid-body;
* the **last user message** may carry ``chunks=N`` (stream exactly N content
  deltas) and ``reply="some text"`` (answer with that text);
* offering **tools** while the user spoke last yields a tool call (of the first tool, or of
  the one a ``call=NAME`` directive in the last user message names, with arguments made from
  its schema, ``args={"key":"value"}`` beside it setting some of them), as does a
  ``tool_choice`` that names a function;
* ``response_format`` / ``text.format`` of ``json_schema`` yields JSON that
  satisfies the schema (so the SDK's ``.parse()`` helpers work).

Besides chat, Responses and embeddings it serves legacy completions, audio transcriptions and
translations (multipart uploads; whisper models report seconds, gpt-4o ones tokens), speech
(audio bytes back) and image generation, edits and variations (URLs from dall-e models, inline
base64 with token usage from gpt-image ones), streams included.

Every HTTP attempt is recorded, retries included, so tests can count what the
SDK actually sent. Payload shapes live in ``openai_wire``.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from . import openai_wire as wire
from ._http import JSONHandler, RecordingServer

_ENDPOINTS = (
    "chat/completions|responses|embeddings|completions|audio/transcriptions|audio/translations|audio/speech"
    "|images/generations|images/edits|images/variations"
)
# Endpoints that take multipart uploads (an audio file, images), whose form fields stand for the body.
_MULTIPART_ENDPOINTS = frozenset({"audio/transcriptions", "audio/translations", "images/edits", "images/variations"})
TRACES_INGEST_PATH = "/v1/traces/ingest"


@dataclass(frozen=True)
class Route:
    """Which API a path addresses and in which dialect."""

    endpoint: str
    azure: bool = False
    deployment: Optional[str] = None
    needs_api_version: bool = False


_ROUTE_PATTERNS: list[tuple[re.Pattern[str], bool, bool]] = [
    # (pattern, azure dialect, requires ?api-version)
    (re.compile(rf"^/v1/(?P<endpoint>{_ENDPOINTS})$"), False, False),
    (re.compile(rf"^/openai/v1/(?P<endpoint>{_ENDPOINTS})$"), True, False),
    (re.compile(rf"^/openai/deployments/(?P<deployment>[^/]+)/(?P<endpoint>{_ENDPOINTS})$"), True, True),
    (re.compile(r"^/openai/(?P<endpoint>responses)$"), True, True),
]


def resolve_route(path: str) -> Optional[Route]:
    """Map OpenAI (``/v1/...``) and Azure (``/openai/...``) paths to a Route."""
    for pattern, azure, needs_api_version in _ROUTE_PATTERNS:
        match = pattern.match(path)
        if match:
            groups = match.groupdict()
            return Route(groups["endpoint"], azure, groups.get("deployment"), needs_api_version)
    return None


@dataclass(frozen=True)
class Fault:
    """A misbehaviour selected by the request's model name."""

    kind: str  # "error" | "slow" | "stream-error"
    status: int = 0
    failing_attempts: Optional[int] = None  # None: every attempt fails
    delay_ms: int = 0


def parse_fault(model: str) -> Optional[Fault]:
    match = re.fullmatch(r"error-(\d{3})(?:x(\d+))?", model)
    if match:
        attempts = int(match.group(2)) if match.group(2) else None
        return Fault("error", status=int(match.group(1)), failing_attempts=attempts)
    match = re.fullmatch(r"slow-(\d+)", model)
    if match:
        return Fault("slow", delay_ms=int(match.group(1)))
    if model == "stream-error":
        return Fault("stream-error")
    return None


class FakeOpenAI(RecordingServer):
    """OpenAI-compatible server on 127.0.0.1 for end-to-end tests.

    Use ``base_url`` with ``OpenAI(base_url=..., api_key=...)`` and
    ``azure_endpoint`` with ``AzureOpenAI(azure_endpoint=..., api_version=...)``.
    """

    def __init__(self, reply_text: str = wire.DEFAULT_REPLY) -> None:
        super().__init__()
        self.handler_class = _OpenAIHandler
        self.reply_text = reply_text

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, the value for ``OpenAI(base_url=...)``."""
        return self.root_url + "/v1"

    @property
    def azure_endpoint(self) -> str:
        """``http://127.0.0.1:PORT``, the value for ``AzureOpenAI(azure_endpoint=...)``."""
        return self.root_url


class _OpenAIHandler(JSONHandler):
    server_version = "fake-openai/1"

    def parse_body(self, raw: bytes) -> Any:
        """Parsed body: a multipart upload's form (files as ``{"filename", "size"}``), JSON,
        ``None`` for an empty body, or the raw bytes if neither."""
        if not raw:
            return None
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            return parse_multipart(raw, content_type)
        try:
            return json.loads(raw)
        except ValueError:
            return raw

    def do_GET(self) -> None:  # noqa: N802
        path, query = self.split_path()
        record = {"method": "GET", "path": path, "query": query, "headers": self.lowered_headers(), "json": None}
        self.owner._record(record)
        self._send_error(404, message=f"Invalid URL (GET {path})")

    # -- request validation and dispatch -----------------------------------

    def answer(self, path: str, query: dict, headers: dict, body: Any) -> None:
        if path == TRACES_INGEST_PATH:
            # The Agents SDK's trace exporter (OpenAI's traces endpoint): accepted and recorded.
            return self.send_json(200 if _has_credentials(headers) else 401, {})
        route = resolve_route(path)
        if route is None:
            return self._send_error(404, message=f"Invalid URL (POST {path})")
        if route.needs_api_version and "api-version" not in query:
            # Azure's answer to a path without ?api-version=.
            return self.send_json(404, {"error": {"code": "404", "message": "Resource not found"}})
        if not _has_credentials(headers):
            return self._send_error(401, message="You didn't provide an API key.")
        if route.endpoint in _MULTIPART_ENDPOINTS and not (isinstance(body, dict) and body.get("multipart")):
            return self._send_error(400, message="Invalid Content-Type header, expected multipart/form-data.")
        if not isinstance(body, dict):
            return self._send_error(400, message="We could not parse the JSON body of your request.")
        model = body.get("model") or route.deployment or ""
        if not model:
            return self._send_error(400, message="you must provide a model parameter", param="model")
        fault = parse_fault(model)
        if fault and fault.kind == "error" and _attempt_fails(fault, headers):
            return self._send_error(fault.status, model=model)
        if fault and fault.kind == "slow":
            self.owner.stopping.wait(fault.delay_ms / 1000)
        cut_after = 2 if fault and fault.kind == "stream-error" else None
        self._dispatch(route, body, model, cut_after)

    def _dispatch(self, route: Route, body: dict, model: str, cut_after: Optional[int]) -> None:
        stream = bool(body.get("stream"))
        reply_text = self.owner.reply_text
        if route.endpoint == "embeddings":
            return self._send_ok(wire.embeddings(body))
        if route.endpoint == "completions":
            meta = wire.Meta(id=wire.new_id("cmpl-"), model=wire.served_model(model))
            if stream:
                return self._stream(wire.text_completion_chunks(body, meta), named_events=False, cut_after=cut_after)
            return self._send_ok(wire.text_completion(body, meta))
        if route.endpoint.startswith("audio/"):
            return self._audio(route.endpoint, body, stream)
        if route.endpoint.startswith("images/"):
            edit = route.endpoint != "images/generations"
            if stream:
                return self._stream(wire.image_events(body, edit), named_events=True, cut_after=None, done=False)
            return self._send_ok(wire.images_response(body, edit))
        if route.endpoint == "chat/completions":
            meta = wire.Meta(id=wire.new_id("chatcmpl-"), model=wire.served_model(model))
            reply = wire.chat_reply(body, reply_text)
            if stream:
                chunks = wire.chat_chunks(body, reply, meta, azure=route.azure)
                return self._stream(chunks, named_events=False, cut_after=cut_after)
            return self._send_ok(wire.chat_completion(body, reply, meta, azure=route.azure))
        meta = wire.Meta(id=wire.new_id("resp_"), model=wire.served_model(model))
        reply = wire.responses_reply(body, reply_text)
        if stream:
            return self._stream(wire.response_events(body, reply, meta), named_events=True, cut_after=cut_after)
        return self._send_ok(wire.response(body, reply, meta))

    def _audio(self, endpoint: str, body: dict, stream: bool) -> None:
        if endpoint == "audio/speech":
            if not isinstance(body.get("input"), str) or not body.get("voice"):
                return self._send_error(400, message="Missing required parameter: 'voice'.", param="voice")
            mime = {
                "wav": "audio/wav",
                "opus": "audio/ogg",
                "aac": "audio/aac",
                "flac": "audio/flac",
                "pcm": "audio/pcm",
            }.get(body.get("response_format") or "mp3", "audio/mpeg")
            return self.send_body(200, wire.SPEECH_AUDIO, mime, _standard_headers())
        if not isinstance(body.get("file"), dict):
            return self._send_error(400, message="Missing required parameter: 'file'.", param="file")
        if stream and endpoint == "audio/transcriptions":
            return self._stream(wire.transcription_events(body), named_events=False, cut_after=None, done=False)
        answer = wire.transcription(body, translate=endpoint == "audio/translations")
        if isinstance(answer, str):
            return self.send_body(200, answer.encode(), "text/plain; charset=utf-8", _standard_headers())
        return self._send_ok(answer)

    # -- responses ----------------------------------------------------------

    def _send_ok(self, payload: dict) -> None:
        self.send_json(200, payload, _standard_headers())

    def _send_error(
        self, status: int, model: str = "", message: Optional[str] = None, param: Optional[str] = None
    ) -> None:
        headers = _standard_headers()
        if status == 429:
            headers["retry-after"] = "0"
        self.send_json(status, wire.error_body(status, model, message, param), headers)

    def _stream(
        self, objects: Iterable[dict], *, named_events: bool, cut_after: Optional[int], done: bool = True
    ) -> None:
        """Send server-sent events; chat streams end with ``[DONE]``, Responses streams do not.

        With ``cut_after`` the connection is dropped right after that many
        content-carrying events, leaving the chunked body unterminated.
        """
        self.start_chunked(200, "text/event-stream; charset=utf-8", _standard_headers())
        content_seen = 0
        for obj in objects:
            self.write_chunk(_sse(obj, named_events))
            content_seen += wire.is_content_chunk(obj)
            if cut_after is not None and content_seen >= cut_after:
                return self.drop_connection()
        if not named_events and done:
            self.write_chunk(b"data: [DONE]\n\n")
        self.end_chunked()


def parse_multipart(raw: bytes, content_type: str) -> dict:
    """A ``multipart/form-data`` body as a form: text fields as strings, files as
    ``{"filename", "size"}``; a repeated name (``image[]``) as a list. ``multipart`` marks it."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    form: dict[str, Any] = {"multipart": True}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        value: Any = {"filename": filename, "size": len(payload)} if filename is not None else payload.decode()
        if name in form:
            form[name] = (form[name] if isinstance(form[name], list) else [form[name]]) + [value]
        else:
            form[name] = value
    stream = form.get("stream")
    if isinstance(stream, str):
        form["stream"] = stream == "true"
    return form


def _sse(obj: dict, named_events: bool) -> bytes:
    data = json.dumps(obj, separators=(",", ":"))
    if named_events:
        return f"event: {obj['type']}\ndata: {data}\n\n".encode()
    return f"data: {data}\n\n".encode()


def _has_credentials(headers: dict) -> bool:
    """OpenAI needs ``Authorization: Bearer``; Azure also accepts ``api-key``."""
    auth = headers.get("authorization", "")
    return bool(headers.get("api-key")) or (auth.lower().startswith("bearer ") and bool(auth[7:].strip()))


def _attempt_fails(fault: Fault, headers: dict) -> bool:
    if fault.failing_attempts is None:
        return True
    try:
        attempt = int(headers.get("x-stainless-retry-count", "0"))
    except ValueError:
        attempt = 0
    return attempt < fault.failing_attempts


def _standard_headers() -> dict[str, str]:
    """Headers the SDK surfaces (``x-request-id`` becomes ``_request_id``)."""
    return {
        "x-request-id": "req_" + uuid.uuid4().hex,
        "openai-processing-ms": "3",
        "openai-version": "2020-10-01",
    }
