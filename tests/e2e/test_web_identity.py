"""End to end: the person and session of the web request being served.

Real servers (uvicorn, Werkzeug, Django's runserver, gunicorn) run unmodified apps under
``posthog-instrument``, each on a free port with its own PostHog stand-in. The tests send
requests with the headers posthog-js sends (``X-POSTHOG-DISTINCT-ID``, ``X-POSTHOG-SESSION-ID``)
or an upstream service's W3C ``baggage``, then stop the server and assert that each LLM call
made while serving a request carries that request's person and session replay id.

All servers are started together once per module, since starting them is the slow part.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import tempfile
import time

import httpx
import pytest

from tests.conftest import APPS, LAUNCHER, clean_env
from tests.servers import FakeOpenAI, FakePostHog
from tests.e2e.traces import message_text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def case_of(span: dict):
    messages = span["attributes"].get("$ai_input")
    if not messages:
        return None
    text = message_text(messages[-1])
    return text[len("case=") :] if text.startswith("case=") else None


def js(distinct_id: str, session_id: str | None = None) -> dict:
    """The headers posthog-js's tracing adds to requests to the app's back end."""
    headers = {"X-POSTHOG-DISTINCT-ID": distinct_id}
    if session_id:
        headers["X-POSTHOG-SESSION-ID"] = session_id
    return headers


def baggage(distinct_id: str, session_id: str) -> dict:
    return {"baggage": f"posthog.distinct_id={distinct_id},posthog.session_id={session_id},tenant=t1;prop=1"}


class WebServer:
    """One instrumented server process and the PostHog stand-in it exports to."""

    def __init__(self, name: str, command: list, stop_signal: int, openai_server: FakeOpenAI, **env: str):
        self.name = name
        self.port = free_port()
        self.posthog = FakePostHog().start()
        self.stop_signal = stop_signal
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.out = tempfile.TemporaryFile("w+")
        full_env = clean_env(
            OPENAI_BASE_URL=openai_server.base_url,
            OPENAI_API_KEY="sk-test-secret-key",
            POSTHOG_API_KEY="phc_test_project_token",
            POSTHOG_HOST=self.posthog.host,
            POSTHOG_EXPORT_INTERVAL="0.05",
            **env,
        )
        command = [LAUNCHER, *[part.format(port=self.port) for part in command]]
        self.process = subprocess.Popen(
            command,
            env=full_env,
            cwd=str(APPS),
            stdout=self.out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.returncode = None

    def output(self) -> str:
        self.out.seek(0)
        return self.out.read()

    def wait_listening(self, timeout: float = 45.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.process.returncode}:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"{self.name} did not listen on {self.port} within {timeout}s:\n{self.output()}")

    def get(self, path: str, headers: dict | None = None, **params: str) -> httpx.Response:
        response = httpx.get(self.base_url + path, params=params, headers=headers or {}, timeout=30)
        assert response.status_code == 200, (self.name, path, response.status_code, response.text, self.output())
        return response

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.returncode = self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"{self.name} did not stop on {self.stop_signal!r}:\n{self.output()}") from None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.posthog.stop()
        self.out.close()


class Served:
    """What one server's PostHog stand-in received, by the ``case`` of each call."""

    def __init__(self, server: WebServer, expected_spans: int):
        try:
            # Spans arrive while the server runs (POSTHOG_EXPORT_INTERVAL=0.05) ...
            server.posthog.wait_for_spans(expected_spans, timeout=20)
        finally:
            server.stop()  # ... and the server still stops promptly on its usual signal.
        self.server = server
        self.spans = server.posthog.spans
        self.output = server.output()
        assert server.posthog.rejections == []

    def attrs(self, case: str) -> dict:
        found = [s for s in self.spans if case_of(s) == case]
        assert len(found) == 1, (case, sorted(filter(None, map(case_of, self.spans))), self.output[-2000:])
        return found[0]["attributes"]


SERVERS = {
    "fastapi": (
        ["uvicorn", "fastapi_app:app", "--host", "127.0.0.1", "--port", "{port}", "--no-access-log"],
        signal.SIGINT,
        {"POSTHOG_DISTINCT_ID": "env-user"},
    ),
    "flask": (["python", "flask_app.py", "{port}"], signal.SIGINT, {}),
    "django": (["python", "django_app.py", "runserver", "127.0.0.1:{port}", "--noreload"], signal.SIGINT, {}),
    "plain_asgi": (
        ["uvicorn", "plain_asgi_app:app", "--host", "127.0.0.1", "--port", "{port}", "--no-access-log"],
        signal.SIGINT,
        {},
    ),
    # One forked worker: every request is served by the same process and thread, in turn.
    "plain_wsgi": (
        ["gunicorn", "--bind", "127.0.0.1:{port}", "--workers", "1", "--graceful-timeout", "5", "plain_wsgi_app:app"],
        signal.SIGTERM,
        {},
    ),
}


@pytest.fixture(scope="module")
def servers():
    """Start every server at once; each test module's fixtures below then use one of them."""
    with FakeOpenAI() as openai_server:
        started = {}
        try:
            for name, (command, stop_signal, env) in SERVERS.items():
                started[name] = WebServer(name, command, stop_signal, openai_server, **env)
            yield started
        finally:
            for server in started.values():
                server.close()


# -- FastAPI under uvicorn ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fastapi(servers) -> Served:
    server = servers["fastapi"]
    server.wait_listening()
    server.get("/chat", js("web-user-1", "sess-1"), case="fa_async")
    server.get("/chat_sync", js("web-user-2", "sess-2"), case="fa_sync")
    assert server.get("/stream", js("web-user-3", "sess-3"), case="fa_stream").text.endswith("Hello from fake OpenAI")
    server.get(
        "/chat", {"baggage": "posthog.distinct_id=bag%40example.com,posthog.session_id=bag-sess,x=y"}, case="fa_baggage"
    )
    # Precedence, one source removed at a time: context() > posthog SDK > headers > baggage > `user` > env.
    everything = {**js("hdr-user", "hdr-sess"), **baggage("bag-user", "bag-sess")}
    server.get(
        "/chat", everything, case="p_ctx", ctx="ctx-user", sdk="sdk-user", sdk_session="sdk-sess", user="openai-user"
    )
    server.get(
        "/chat",
        everything,
        case="p_ctx_session",
        ctx="ctx-user",
        ctx_session="ctx-sess",
        sdk="sdk-user",
        sdk_session="sdk-sess",
        user="openai-user",
    )
    server.get("/chat", everything, case="p_sdk", sdk="sdk-user", user="openai-user")
    server.get("/chat", everything, case="p_headers", user="openai-user")
    server.get("/chat", baggage("bag-user", "bag-sess"), case="p_baggage", user="openai-user")
    server.get("/background", js("bg-user", "bg-sess"), case="fa_background")
    server.get("/chat", {}, case="p_user", user="openai-user")
    server.get("/chat", {}, case="p_env")
    server.get(
        "/chat", {"X-POSTHOG-SESSION-ID": "only-hdr-sess", **baggage("bag-user-2", "bag-sess-2")}, case="p_mixed"
    )

    async def concurrent():
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            responses = await asyncio.gather(
                *(
                    client.get("/chat", params={"case": f"fa_conc_{i}"}, headers=js(f"conc-user-{i}", f"conc-sess-{i}"))
                    for i in range(6)
                )
            )
        assert [r.status_code for r in responses] == [200] * 6

    asyncio.run(concurrent())
    return Served(server, 19)


def test_fastapi_async_sync_and_streaming_endpoints_carry_the_posthog_js_person_and_session(fastapi):
    for case, n in (("fa_async", 1), ("fa_sync", 2), ("fa_stream", 3)):
        attrs = fastapi.attrs(case)
        assert attrs["posthog.distinct_id"] == f"web-user-{n}", case
        assert attrs["$session_id"] == f"sess-{n}", case


def test_fastapi_background_task_of_the_request_carries_its_person(fastapi):
    attrs = fastapi.attrs("fa_background")
    assert (attrs["posthog.distinct_id"], attrs["$session_id"]) == ("bg-user", "bg-sess")


def test_fastapi_concurrent_requests_keep_their_own_person(fastapi):
    for i in range(6):
        attrs = fastapi.attrs(f"fa_conc_{i}")
        assert (attrs["posthog.distinct_id"], attrs["$session_id"]) == (f"conc-user-{i}", f"conc-sess-{i}")


def test_baggage_from_an_upstream_request(fastapi):
    attrs = fastapi.attrs("fa_baggage")
    assert attrs["posthog.distinct_id"] == "bag@example.com"  # percent-decoded, as W3C baggage requires
    assert attrs["$session_id"] == "bag-sess"
    assert "x" not in attrs


def test_precedence_context_then_sdk_then_headers_then_baggage_then_user_then_env(fastapi):
    expected = {
        "p_ctx_session": ("ctx-user", "ctx-sess"),
        "p_ctx": ("ctx-user", "sdk-sess"),  # context() names no session: the SDK's is next in line
        "p_sdk": ("sdk-user", "hdr-sess"),
        "p_headers": ("hdr-user", "hdr-sess"),
        "p_baggage": ("bag-user", "bag-sess"),
        "p_user": ("openai-user", None),
        "p_env": ("env-user", None),
        "p_mixed": ("bag-user-2", "only-hdr-sess"),  # each field from the first source that names it
    }
    seen = {}
    for case in expected:
        attrs = fastapi.attrs(case)
        seen[case] = (attrs.get("posthog.distinct_id"), attrs.get("$session_id"))
    assert seen == expected


def test_uvicorn_stops_cleanly_on_sigint(fastapi):
    assert fastapi.server.returncode == 0, fastapi.output[-2000:]
    assert "Traceback" not in fastapi.output


# -- Flask (Werkzeug) -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flask(servers) -> Served:
    server = servers["flask"]
    server.wait_listening()
    server.get("/chat", js("flask-user", "flask-sess"), case="fl_headers", user="openai-user")
    server.get("/chat", {"x-posthog-distinct-id": "flask-lower"}, case="fl_lowercase")
    server.get("/chat", baggage("flask-bag", "flask-bag-sess"), case="fl_baggage")
    server.get("/chat", {}, case="fl_none")
    assert server.get("/stream", js("flask-stream", "flask-stream-sess"), case="fl_stream").text.endswith("OpenAI")
    return Served(server, 5)


def test_flask_view_carries_the_posthog_js_person_and_session(flask):
    attrs = flask.attrs("fl_headers")
    assert attrs["posthog.distinct_id"] == "flask-user"  # the header beats the OpenAI `user`
    assert attrs["$session_id"] == "flask-sess"
    lower = flask.attrs("fl_lowercase")
    assert lower["posthog.distinct_id"] == "flask-lower"
    assert "$session_id" not in lower


def test_flask_baggage_and_a_request_without_headers(flask):
    attrs = flask.attrs("fl_baggage")
    assert (attrs["posthog.distinct_id"], attrs["$session_id"]) == ("flask-bag", "flask-bag-sess")
    none = flask.attrs("fl_none")
    assert none["$process_person_profile"] is False
    assert "posthog.distinct_id" not in none and "$session_id" not in none


def test_flask_streamed_response_carries_the_person(flask):
    attrs = flask.attrs("fl_stream")
    assert attrs.get("posthog.distinct_id") == "flask-stream"
    assert attrs.get("$session_id") == "flask-stream-sess"


# -- Django (runserver, WSGI) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def django(servers) -> Served:
    server = servers["django"]
    server.wait_listening()
    server.get("/chat", js("django-user", "django-sess"), case="dj_headers")
    server.get("/chat", baggage("django-bag", "django-bag-sess"), case="dj_baggage")
    server.get("/chat", {}, case="dj_none")
    assert server.get("/stream", js("django-stream", "django-stream-sess"), case="dj_stream").text.endswith("OpenAI")
    return Served(server, 4)


def test_django_view_carries_the_posthog_js_person_and_session(django):
    attrs = django.attrs("dj_headers")
    assert (attrs["posthog.distinct_id"], attrs["$session_id"]) == ("django-user", "django-sess")
    bag = django.attrs("dj_baggage")
    assert (bag["posthog.distinct_id"], bag["$session_id"]) == ("django-bag", "django-bag-sess")
    assert django.attrs("dj_none")["$process_person_profile"] is False


def test_django_streaming_response_carries_the_person(django):
    attrs = django.attrs("dj_stream")
    assert attrs.get("posthog.distinct_id") == "django-stream"
    assert attrs.get("$session_id") == "django-stream-sess"


# -- plain ASGI under uvicorn ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_asgi(servers) -> Served:
    server = servers["plain_asgi"]
    server.wait_listening()
    server.get("/", js("asgi-user", "asgi-sess"), case="asgi_headers")
    server.get("/", baggage("asgi-bag", "asgi-bag-sess"), case="asgi_baggage")
    server.get("/", {}, case="asgi_none")
    return Served(server, 3)


def test_plain_asgi_app_under_uvicorn(plain_asgi):
    attrs = plain_asgi.attrs("asgi_headers")
    assert (attrs["posthog.distinct_id"], attrs["$session_id"]) == ("asgi-user", "asgi-sess")
    bag = plain_asgi.attrs("asgi_baggage")
    assert (bag["posthog.distinct_id"], bag["$session_id"]) == ("asgi-bag", "asgi-bag-sess")
    assert plain_asgi.attrs("asgi_none")["$process_person_profile"] is False
    assert plain_asgi.server.returncode == 0


# -- plain WSGI under gunicorn (a forked sync worker) -------------------------------------------------


@pytest.fixture(scope="module")
def plain_wsgi(servers) -> Served:
    server = servers["plain_wsgi"]
    server.posthog.feature_flags = {"prompt-v2": "concise"}
    server.wait_listening()
    # An experiment: the flag evaluated for the person while serving the request that calls the model ...
    assert (
        server.get("/", js("flag-user"), case="wsgi_flag_same_request", flag="prompt-v2", flag_user="flag-user").json()[
            "variant"
        ]
        == "concise"
    )
    # ... and a flag evaluated in one request, then a model call for that person in the next one.
    server.get("/flag", js("leak-user"), flag="prompt-v2", flag_user="leak-user")
    server.get("/", js("leak-user"), case="wsgi_flag_next_request")
    for i in range(6):
        server.get("/", js(f"wsgi-user-{i}", f"wsgi-sess-{i}"), case=f"wsgi_headers_{i}")
    server.get("/", baggage("wsgi-bag", "wsgi-bag-sess"), case="wsgi_baggage")
    server.get("/", {}, case="wsgi_none")
    assert server.get("/stream", js("wsgi-stream", "wsgi-stream-sess"), case="wsgi_stream").text.endswith("OpenAI")
    return Served(server, 11)


def test_plain_wsgi_app_under_gunicorn(plain_wsgi):
    for i in range(6):
        attrs = plain_wsgi.attrs(f"wsgi_headers_{i}")
        assert (attrs["posthog.distinct_id"], attrs["$session_id"]) == (f"wsgi-user-{i}", f"wsgi-sess-{i}")
    bag = plain_wsgi.attrs("wsgi_baggage")
    assert (bag["posthog.distinct_id"], bag["$session_id"]) == ("wsgi-bag", "wsgi-bag-sess")
    assert plain_wsgi.attrs("wsgi_none")["$process_person_profile"] is False
    assert plain_wsgi.server.returncode == 0


def test_plain_wsgi_streamed_body_carries_the_person(plain_wsgi):
    attrs = plain_wsgi.attrs("wsgi_stream")
    assert attrs.get("posthog.distinct_id") == "wsgi-stream"
    assert attrs.get("$session_id") == "wsgi-stream-sess"


def test_plain_wsgi_flag_variant_evaluated_while_serving_the_request(plain_wsgi):
    attrs = plain_wsgi.attrs("wsgi_flag_same_request")
    assert attrs["posthog.distinct_id"] == "flag-user"
    assert attrs["$feature/prompt-v2"] == "concise"


def test_plain_wsgi_flag_variant_does_not_outlive_its_request(plain_wsgi):
    attrs = plain_wsgi.attrs("wsgi_flag_next_request")
    assert attrs["posthog.distinct_id"] == "leak-user"
    assert "$feature/prompt-v2" not in attrs
