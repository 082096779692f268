"""A one-file Django project run with ``python pm_django_app.py runserver 127.0.0.1:PORT``.

``runserver`` autoreloads: the process started by the user only watches a child process (the
same command re-run with RUN_MAIN=true) that serves requests, and restarts it when a source
file changes. ``GET /chat?tag=T`` makes an OpenAI call with the prompt ``"T pid=<pid>"``;
``GET /pid`` answers the serving process's pid without an LLM call. Every process that loads
this file (the reloader and each server child) makes one call, ``"startup pid=<pid>"``, first.
"""

import os
import sys

import django
from django.conf import settings
from django.http import JsonResponse
from django.urls import path

settings.configure(
    DEBUG=True,
    SECRET_KEY="not-secret",
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["*"],
    INSTALLED_APPS=[],
    DATABASES={},
    MIDDLEWARE=[],
    USE_TZ=True,
)
django.setup()


def ask(tag):
    import openai

    response = openai.OpenAI(max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"{tag} pid={os.getpid()}"}]
    )
    return response.choices[0].message.content


def chat(request):
    return JsonResponse({"pid": os.getpid(), "reply": ask(request.GET.get("tag", "none"))})


def pid(request):
    return JsonResponse({"pid": os.getpid()})


urlpatterns = [path("chat", chat), path("pid", pid)]

if __name__ == "__main__":
    ask("startup")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
