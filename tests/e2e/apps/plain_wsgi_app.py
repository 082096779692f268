"""A bare WSGI application, no framework (run under gunicorn)."""

import json
from urllib.parse import parse_qs

import web_llm


def app(environ, start_response):
    params = parse_qs(environ.get("QUERY_STRING", ""))
    if environ.get("PATH_INFO") == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _stream(params)
    body = json.dumps({"reply": web_llm.chat(params), "pid": web_llm.pid()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _stream(params):
    yield b"thinking...\n"
    yield web_llm.chat(params).encode()  # the model is called while the response streams
