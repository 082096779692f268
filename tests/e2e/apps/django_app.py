"""A single-file Django project whose views call OpenAI (``python django_app.py runserver``)."""

import sys

from django.conf import settings

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="not-a-secret-test-only",
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    INSTALLED_APPS=[],
    DATABASES={},
    LOGGING_CONFIG=None,
)

from django.http import JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

import web_llm  # noqa: E402


def chat(request):
    return JsonResponse({"reply": web_llm.chat(request.GET.dict())})


def stream(request):
    params = request.GET.dict()

    def body():
        yield "thinking...\n"
        yield web_llm.chat(params)  # the model is called while the response streams

    return StreamingHttpResponse(body(), content_type="text/plain")


urlpatterns = [path("chat", chat), path("stream", stream)]

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
