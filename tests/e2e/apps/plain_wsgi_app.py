"""A bare WSGI application, no framework (run under gunicorn).

``/`` makes one chat completion (see ``web_llm``); with ``flag`` and ``flag_user`` it first
evaluates that feature flag with the app's own posthog SDK, as an experiment would. ``/flag``
only evaluates the flag. ``/stream`` makes the call while the body streams.
"""

import json
import os
import warnings
from urllib.parse import parse_qs

import web_llm


def app(environ, start_response):
    params = parse_qs(environ.get("QUERY_STRING", ""))
    path = environ.get("PATH_INFO")
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _stream(params)
    result = {"variant": _evaluate_flag(params)} if "flag" in params else {}
    if path != "/flag":
        result["reply"] = web_llm.chat(params)
    body = json.dumps(result).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _evaluate_flag(params):
    import posthog

    warnings.simplefilter("ignore", DeprecationWarning)
    posthog.api_key = "phc_app_own_token"
    posthog.host = os.environ["POSTHOG_HOST"]
    return posthog.get_feature_flag(params["flag"][0], params["flag_user"][0])


def _stream(params):
    yield b"thinking...\n"
    yield web_llm.chat(params).encode()  # the model is called while the response streams
