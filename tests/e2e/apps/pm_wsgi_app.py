"""A plain WSGI app (for gunicorn sync workers) whose one route makes an OpenAI call.

``GET /chat?tag=T`` asks the model with the prompt ``"T pid=<worker pid>"`` and answers JSON
``{"pid": ..., "reply": ...}``, so a test can match each span to the process that made it.
The client is created at import time, as real apps do (and so, under ``--preload``, in the
gunicorn master before the workers are forked). ``startup()`` makes one call with the prompt
``"startup pid=<pid>"``; ``pm_gunicorn_conf.py`` runs it in each worker once it is ready.
"""

import json
import os
from urllib.parse import parse_qs

import openai

client = openai.OpenAI(max_retries=0)


def ask(tag):
    response = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"{tag} pid={os.getpid()}"}]
    )
    return response.choices[0].message.content


def startup():
    ask("startup")


def application(environ, start_response):
    tag = parse_qs(environ.get("QUERY_STRING", "")).get("tag", ["none"])[0]
    body = json.dumps({"pid": os.getpid(), "reply": ask(tag)}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
