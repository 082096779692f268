"""Web servers and frameworks: the person and session of the request being served.

posthog-js sends ``X-POSTHOG-DISTINCT-ID`` and ``X-POSTHOG-SESSION-ID`` to the back end, and an
upstream service may propagate W3C baggage ``posthog.distinct_id`` / ``posthog.session_id``.
While a request that carries them is served, every AI call made for it belongs to that
person and session replay. Covered: Starlette and FastAPI, Django (WSGI and ASGI), Flask,
and any plain ASGI app under uvicorn or WSGI app under gunicorn.
"""

from __future__ import annotations

from typing import Any, Optional

from .. import config
from ..identity import Identity, enter_request, exit_request, request_identity
from .base import LLMInstrumentor, Target


def _asgi_identity(scope: Any) -> Optional[Identity]:
    if not isinstance(scope, dict) or scope.get("type") not in ("http", "websocket"):
        return None
    headers = scope.get("headers") or ()

    def get(name: str):
        wanted = name.encode("latin-1")
        for key, value in headers:
            if key.lower() == wanted:
                return value
        return None

    return request_identity(get)


def _environ_identity(environ: Any) -> Optional[Identity]:
    if not isinstance(environ, dict):  # PEP 3333: a WSGI environ is a built-in dict
        return None
    return request_identity(lambda name: environ.get("HTTP_" + name.upper().replace("-", "_")))


def _identity_of(read, request: Any) -> Optional[Identity]:
    """``read(request)``, or None when the request is not shaped as we expect: never raises."""
    try:
        return read(request)
    except Exception:
        return None


def _serve_asgi(wrapped, args, kwargs, scope):
    identity = _identity_of(_asgi_identity, scope)
    if identity is None:
        return wrapped(*args, **kwargs)

    async def serve():
        token = enter_request(identity)
        try:
            return await wrapped(*args, **kwargs)
        finally:
            exit_request(token)

    return serve()


def _serve_sync(wrapped, args, kwargs, identity):
    token = enter_request(identity)
    try:
        return wrapped(*args, **kwargs)
    finally:
        exit_request(token)


def asgi_app_call(wrapped, instance, args, kwargs):
    """``Starlette.__call__(scope, receive, send)`` and plain ASGI apps."""
    return _serve_asgi(wrapped, args, kwargs, args[0] if args else kwargs.get("scope"))


def wsgi_app_call(wrapped, instance, args, kwargs):
    """``Flask.wsgi_app(environ, start_response)``, Django's WSGI handler, plain WSGI apps."""
    identity = _identity_of(_environ_identity, args[0] if args else kwargs.get("environ"))
    if identity is None:
        return wrapped(*args, **kwargs)
    return _ServedBody(_serve_sync(wrapped, args, kwargs, identity), identity)


class _ServedBody:
    """A WSGI response body, iterated as the request's identity: a streamed body that calls an
    LLM while the server sends it still belongs to the request's person."""

    def __init__(self, body: Any, identity: Identity):
        self._body = body
        self._identity = identity
        self._iterator = None

    def __iter__(self):
        return self

    def __next__(self):
        tokens = enter_request(self._identity)
        try:
            if self._iterator is None:
                self._iterator = iter(self._body)
            return next(self._iterator)
        finally:
            exit_request(tokens)

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            tokens = enter_request(self._identity)
            try:
                close()
            finally:
                exit_request(tokens)


def _django_identity(request: Any) -> Optional[Identity]:
    return _environ_identity(getattr(request, "META", None))  # Django's request.META: the environ


def django_get_response(wrapped, instance, args, kwargs):
    request = args[0] if args else kwargs.get("request")
    identity = _identity_of(_django_identity, request)
    return _serve_sync(wrapped, args, kwargs, identity) if identity else wrapped(*args, **kwargs)


def django_get_response_async(wrapped, instance, args, kwargs):
    request = args[0] if args else kwargs.get("request")
    identity = _identity_of(_django_identity, request)
    if identity is None:
        return wrapped(*args, **kwargs)

    async def serve():
        token = enter_request(identity)
        try:
            return await wrapped(*args, **kwargs)
        finally:
            exit_request(token)

    return serve()


class _ASGIMiddleware:
    def __init__(self, app):
        self.app = app

    def __call__(self, scope, receive, send):
        return _serve_asgi(self.app, (scope, receive, send), {}, scope)

    def __getattr__(self, name):  # servers sometimes inspect the app they were given
        return getattr(self.app, name)


class _WSGIMiddleware:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        return wsgi_app_call(self.app, None, (environ, start_response), {})

    def __getattr__(self, name):
        return getattr(self.app, name)


def uvicorn_config_load(wrapped, instance, args, kwargs):
    """After uvicorn loads the app, serve it through our request-identity middleware."""
    result = wrapped(*args, **kwargs)
    app = getattr(instance, "loaded_app", None)
    if app is not None and not isinstance(app, _ASGIMiddleware):
        instance.loaded_app = _ASGIMiddleware(app)
    return result


def gunicorn_wsgi(wrapped, instance, args, kwargs):
    app = wrapped(*args, **kwargs)
    if callable(app) and not isinstance(app, _WSGIMiddleware) and not _is_asgi_worker(instance):
        return _WSGIMiddleware(app)
    return app


def _is_asgi_worker(application: Any) -> bool:
    worker_class = str(getattr(getattr(application, "cfg", None), "worker_class_str", "") or "")
    return "uvicorn" in worker_class.lower() or "asgi" in worker_class.lower()


class WebRequestInstrumentor(LLMInstrumentor):
    """Not an LLM library: attributes AI calls to the web request's person and session."""

    requirements = ()

    def _instrument(self, **kwargs) -> None:
        if not config.settings().tracing_headers:
            return
        super()._instrument(**kwargs)

    def targets(self) -> list:
        return [
            Target("starlette.applications", "Starlette.__call__", wrapper=asgi_app_call),
            Target("flask.app", "Flask.wsgi_app", wrapper=wsgi_app_call),
            Target("django.core.handlers.wsgi", "WSGIHandler.__call__", wrapper=wsgi_app_call),
            Target("django.core.handlers.base", "BaseHandler.get_response", wrapper=django_get_response),
            Target("django.core.handlers.base", "BaseHandler.get_response_async", wrapper=django_get_response_async),
            Target("uvicorn.config", "Config.load", wrapper=uvicorn_config_load),
            Target("gunicorn.app.base", "BaseApplication.wsgi", wrapper=gunicorn_wsgi),
        ]
