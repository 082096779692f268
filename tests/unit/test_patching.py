"""Patching: lazy, once, reversible, and tolerant of SDK versions we have not seen.

Most tests drive the real :class:`LLMInstrumentor` machinery against a small SDK-shaped module
written to a temporary directory and imported for real (post-import hooks fire only on real
imports); one drives the OpenAI adapter against the installed ``openai``. The last tests run apps
under the launcher: a library imported by a ``.pth`` file before our start-up, the kill
switches, and an app that installs its own ``TracerProvider``.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import httpx
import pytest
import wrapt
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from posthog_autoinstrument.genai import InferenceRequest
from posthog_autoinstrument.instrumentation.base import CallHandler, LLMInstrumentor, Target
from tests.conftest import APPS, LAUNCHER, clean_env, run
from tests.servers import FakeOpenAI, FakePostHog

SDK_SOURCE = '''
"""An LLM SDK, as far as patching goes."""


class Completions:
    def create(self, model, messages=(), **options):
        """Create a completion."""
        return {"model": model, "echo": list(messages), "options": options}

    async def acreate(self, model, **options):
        return {"model": model, "async": True}


class Client:
    def __init__(self):
        self.completions = Completions()


class _Locked(type):
    def __setattr__(cls, name, value):
        raise TypeError("this class cannot be changed")


class Locked(metaclass=_Locked):
    def create(self, model):
        return {"model": model}
'''


class EchoHandler(CallHandler):
    def request(self, instance, args, kwargs):
        return InferenceRequest(provider="fake", model=kwargs.get("model")), None

    def result(self, call, result, kwargs):
        call.set_response(model=result.get("model"))
        call.end()
        return result


@pytest.fixture
def sdk(tmp_path, monkeypatch):
    """A fresh SDK module name per test, importable but not yet imported."""
    name = f"fake_llm_sdk_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(SDK_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def instrumentor_for(module: str, *qualnames: str) -> LLMInstrumentor:
    """A new adapter class (instrumentors are singletons per class) with these targets."""
    handler = EchoHandler()

    def targets(self):
        return [Target(module, name, handler, is_async=name.endswith("acreate")) for name in qualnames]

    cls = type(f"Fake{uuid.uuid4().hex[:6]}Instrumentor", (LLMInstrumentor,), {"targets": targets})
    return cls()


def original(module_name: str, attribute: str = "create"):
    return sys.modules[module_name].Completions.__dict__[attribute]


def create(module_name: str, **kwargs):
    return sys.modules[module_name].Client().completions.create(model="m1", **kwargs)


def test_patching_waits_for_the_library_to_be_imported(sdk, spans):
    provider, exporter = spans
    instrumentor = instrumentor_for(sdk, "Completions.create")
    instrumentor.instrument(tracer_provider=provider)
    try:
        assert sdk not in sys.modules  # we never import a library the app does not use
        module = importlib.import_module(sdk)
        assert isinstance(module.Completions.__dict__["create"], wrapt.FunctionWrapper)
        assert create(sdk, messages=["hi"]) == {"model": "m1", "echo": ["hi"], "options": {}}
        assert [s.name for s in exporter.get_finished_spans()] == ["chat m1"]
    finally:
        instrumentor.uninstrument()


def test_library_imported_before_instrumenting_is_patched_at_once(sdk, spans):
    """What a ``.pth`` file or a sitecustomize that imports the SDK before our start-up leads to."""
    provider, exporter = spans
    module = importlib.import_module(sdk)
    client = module.Client()  # made before patching
    instrumentor = instrumentor_for(sdk, "Completions.create")
    instrumentor.instrument(tracer_provider=provider)
    try:
        assert isinstance(module.Completions.__dict__["create"], wrapt.FunctionWrapper)
        client.completions.create(model="early-client")  # looked up at call time: recorded
        assert [s.name for s in exporter.get_finished_spans()] == ["chat early-client"]
    finally:
        instrumentor.uninstrument()


def test_references_taken_before_patching_keep_working(sdk, spans):
    provider, exporter = spans
    module = importlib.import_module(sdk)
    client = module.Client()
    unbound = module.Completions.create
    bound = client.completions.create
    instrumentor = instrumentor_for(sdk, "Completions.create")
    instrumentor.instrument(tracer_provider=provider)
    try:
        assert unbound(client.completions, "m2", ["a"]) == {"model": "m2", "echo": ["a"], "options": {}}
        assert bound(model="m3", temperature=1) == {"model": "m3", "echo": [], "options": {"temperature": 1}}
        # Those references are the original function: working, simply not recorded.
        assert exporter.get_finished_spans() == ()
        patched_bound = client.completions.create  # taken while patched ...
    finally:
        instrumentor.uninstrument()
    assert patched_bound(model="m4") == {"model": "m4", "echo": [], "options": {}}  # ... works after, unrecorded
    assert exporter.get_finished_spans() == ()


def test_the_patch_looks_like_the_original(sdk, spans):
    provider, _ = spans
    module = importlib.import_module(sdk)
    before = module.Completions.create
    instrumentor = instrumentor_for(sdk, "Completions.create", "Completions.acreate")
    instrumentor.instrument(tracer_provider=provider)
    try:
        after = module.Completions.create
        assert after.__name__ == "create" and after.__doc__ == "Create a completion."
        assert after.__qualname__ == before.__qualname__
        assert inspect.signature(after) == inspect.signature(before)
        assert inspect.iscoroutinefunction(module.Completions.acreate)
    finally:
        instrumentor.uninstrument()


def test_method_missing_from_this_sdk_version_is_skipped_with_a_debug_line(sdk, spans, caplog):
    provider, exporter = spans
    instrumentor = instrumentor_for(
        sdk, "Completions.create", "Completions.removed_in_v3", "Responses.create", "Completions.acreate"
    )
    caplog.set_level(logging.DEBUG, logger="posthog_autoinstrument")
    instrumentor.instrument(tracer_provider=provider)
    try:
        module = importlib.import_module(sdk)
        skipped = sorted(r.getMessage() for r in caplog.records if "skipped" in r.getMessage())
        assert skipped == [
            f"posthog-instrument: {sdk}.Completions.removed_in_v3 not present in this version; skipped",
            f"posthog-instrument: {sdk}.Responses.create not present in this version; skipped",
        ]
        assert all(r.levelno == logging.DEBUG for r in caplog.records if "skipped" in r.getMessage())
        # ... and the targets that do exist are patched all the same.
        assert isinstance(module.Completions.__dict__["create"], wrapt.FunctionWrapper)
        assert isinstance(module.Completions.__dict__["acreate"], wrapt.FunctionWrapper)
        assert not hasattr(module.Completions, "removed_in_v3")
        create(sdk)
        assert len(exporter.get_finished_spans()) == 1
    finally:
        instrumentor.uninstrument()


def test_instrumenting_twice_does_not_double_wrap(sdk, spans):
    provider, exporter = spans
    module = importlib.import_module(sdk)
    pristine = original(sdk)
    instrumentor = instrumentor_for(sdk, "Completions.create")
    instrumentor.instrument(tracer_provider=provider)
    try:
        first = original(sdk)
        instrumentor.instrument(tracer_provider=provider)  # refused by OpenTelemetry: already instrumented
        instrumentor._patch(module, instrumentor.targets()[0])  # the import hook firing again
        other = instrumentor_for(sdk, "Completions.create")  # another adapter with the same target
        other.instrument(tracer_provider=provider)
        try:
            assert original(sdk) is first
            assert first.__wrapped__ is pristine
            create(sdk)
            assert len(exporter.get_finished_spans()) == 1
        finally:
            other.uninstrument()
    finally:
        instrumentor.uninstrument()


def test_uninstrument_restores_the_originals_and_reinstrumenting_wraps_once(sdk, spans):
    provider, exporter = spans
    instrumentor = instrumentor_for(sdk, "Completions.create", "Completions.acreate")
    instrumentor.instrument(tracer_provider=provider)
    instrumentor.uninstrument()
    instrumentor.instrument(tracer_provider=provider)  # two import hooks are registered by now
    module = importlib.import_module(sdk)
    wrapped = original(sdk)
    assert isinstance(wrapped, wrapt.FunctionWrapper) and not isinstance(wrapped.__wrapped__, wrapt.FunctionWrapper)
    create(sdk)
    assert len(exporter.get_finished_spans()) == 1
    instrumentor.uninstrument()
    assert original(sdk) is wrapped.__wrapped__
    assert not isinstance(original(sdk, "acreate"), wrapt.FunctionWrapper)
    assert inspect.iscoroutinefunction(module.Completions.__dict__["acreate"])
    create(sdk)
    assert len(exporter.get_finished_spans()) == 1  # nothing recorded any more


def test_library_imported_after_uninstrumenting_is_left_alone(sdk, spans):
    provider, _ = spans
    instrumentor = instrumentor_for(sdk, "Completions.create")
    instrumentor.instrument(tracer_provider=provider)
    instrumentor.uninstrument()
    importlib.import_module(sdk)
    assert not isinstance(original(sdk), wrapt.FunctionWrapper)


def test_a_target_that_cannot_be_patched_does_not_stop_the_others(sdk, spans, caplog):
    provider, exporter = spans
    instrumentor = instrumentor_for(sdk, "Locked.create", "Completions.create")
    caplog.set_level(logging.DEBUG, logger="posthog_autoinstrument")
    instrumentor.instrument(tracer_provider=provider)
    try:
        module = importlib.import_module(sdk)
        assert not isinstance(module.Locked.__dict__["create"], wrapt.FunctionWrapper)
        assert module.Locked().create("m") == {"model": "m"}
        assert f"posthog-instrument: could not patch {sdk}.Locked.create" in caplog.text
        assert isinstance(original(sdk), wrapt.FunctionWrapper)
        create(sdk)
        assert len(exporter.get_finished_spans()) == 1
    finally:
        instrumentor.uninstrument()


# ---------------------------------------------------------------------------
# The OpenAI adapter on the installed openai
# ---------------------------------------------------------------------------


def test_openai_adapter_patches_once_and_restores_every_target(spans, fake_openai):
    import openai

    from posthog_autoinstrument.instrumentation.openai import OpenAIInstrumentor

    provider, exporter = spans
    instrumentor = OpenAIInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        pytest.skip("openai is already instrumented in this process")
    targets = instrumentor.targets()

    def current():
        found = {}
        for target in targets:
            module = importlib.import_module(target.module)
            owner_name, _, attribute = target.qualname.rpartition(".")
            found[(target.module, target.qualname)] = getattr(module, owner_name).__dict__.get(attribute)
        return found

    before = current()
    assert all(not isinstance(f, wrapt.FunctionWrapper) for f in before.values())
    instrumentor.instrument(tracer_provider=provider)
    try:
        patched = current()
        assert all(isinstance(f, wrapt.FunctionWrapper) and f.__wrapped__ is before[k] for k, f in patched.items())
        instrumentor.instrument(tracer_provider=provider)
        assert current() == patched
        client = openai.OpenAI(
            base_url=fake_openai.base_url, api_key="sk-test", max_retries=0, http_client=httpx.Client()
        )
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "Hello from fake OpenAI"
        assert [s.name for s in exporter.get_finished_spans()] == ["chat gpt-4o-mini"]
    finally:
        instrumentor.uninstrument()
    assert all(current()[k] is f for k, f in before.items())
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert len(exporter.get_finished_spans()) == 1


# ---------------------------------------------------------------------------
# Under the launcher
# ---------------------------------------------------------------------------

PROBE = textwrap.dedent("""
    import atexit, os, signal, sys, threading
    from opentelemetry import trace
    import openai
    from openai.resources.chat.completions import completions
    print("os._exit", os._exit.__name__, type(os._exit).__name__)
    print("SIGTERM", signal.getsignal(signal.SIGTERM))
    print("set_tracer_provider", type(trace.set_tracer_provider).__name__)
    print("tracer provider", type(trace.get_tracer_provider()).__name__)
    print("create", type(completions.Completions.__dict__["create"]).__name__)
    print("threads", [t.name for t in threading.enumerate()])
    print("reply", openai.OpenAI(max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "probe"}]).choices[0].message.content)
""")


def test_kill_switches_leave_the_process_exactly_as_without_us(tmp_path, fake_openai, posthog):
    """Not only the libraries: os._exit, SIGTERM, set_tracer_provider and the global provider too."""
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    base = dict(
        OPENAI_BASE_URL=fake_openai.base_url,
        OPENAI_API_KEY="sk-test",
        POSTHOG_API_KEY="phc_test",
        POSTHOG_HOST=posthog.host,
    )
    commands = {
        "plain": ([sys.executable, str(probe)], clean_env(**base)),
        "ours": ([LAUNCHER, "python", str(probe)], clean_env(POSTHOG_AUTOINSTRUMENT_DISABLED="true", **base)),
        "otel": ([LAUNCHER, "python", str(probe)], clean_env(OTEL_SDK_DISABLED="true", **base)),
    }
    running = {
        name: subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, (command, env) in commands.items()
    }
    results = {name: process.communicate(timeout=60) for name, process in running.items()}
    plain_out, plain_err = results["plain"]
    assert "create function" in plain_out and "reply Hello from fake OpenAI" in plain_out, plain_err
    for name in ("ours", "otel"):
        assert results[name] == (plain_out, plain_err), name
    assert posthog.requests == []


def test_library_imported_by_a_pth_file_before_start_up_is_covered(tmp_path, fake_openai, posthog):
    """A ``.pth`` file runs before any sitecustomize: openai is imported before we start."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    (site_packages,) = venv.glob("lib/python*/site-packages")
    ours = Path(importlib.import_module("openai").__file__).parents[1]  # this environment's site-packages
    (site_packages / "aa_shared_packages.pth").write_text(f"import site; site.addsitedir({str(ours)!r})\n")
    (site_packages / "zz_early_import.pth").write_text(
        "import os, openai.resources.chat.completions.completions as c; "
        "c.EARLY_CREATE = c.Completions.create; os.environ['EARLY_IMPORT'] = type(c.Completions.create).__name__\n"
    )
    app = tmp_path / "app.py"
    app.write_text(
        textwrap.dedent("""
        import os, openai
        from openai.resources.chat.completions import completions
        print("imported before start-up as", os.environ["EARLY_IMPORT"])
        print("now", type(completions.Completions.__dict__["create"]).__name__)
        client = openai.OpenAI(max_retries=0)
        ask = lambda prompt: [{"role": "user", "content": prompt}]
        print(client.chat.completions.create(model="gpt-4o-mini", messages=ask("after")).choices[0].message.content)
        early = completions.EARLY_CREATE(client.chat.completions, model="gpt-4o-mini", messages=ask("early ref"))
        print(early.choices[0].message.content)
    """)
    )
    env = clean_env(
        OPENAI_BASE_URL=fake_openai.base_url,
        OPENAI_API_KEY="sk-test",
        POSTHOG_API_KEY="phc_test",
        POSTHOG_HOST=posthog.host,
        POSTHOG_EXPORT_INTERVAL="0.05",
    )
    result = run([LAUNCHER, str(venv / "bin" / "python"), str(app)], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "imported before start-up as function",
        "now FunctionWrapper",
        "Hello from fake OpenAI",
        "Hello from fake OpenAI",  # the reference taken before patching still works (unrecorded)
    ]
    assert result.stderr == ""
    (span,) = posthog.spans
    assert span["attributes"]["$ai_input"][0]["content"] == "after"


@pytest.fixture(scope="module")
def own_provider_run():
    """``own_provider_app.py`` instrumented, and plainly; with what PostHog received."""
    with FakeOpenAI() as openai_server, FakePostHog() as posthog_server:
        env = clean_env(
            OPENAI_BASE_URL=openai_server.base_url,
            OPENAI_API_KEY="sk-test",
            POSTHOG_API_KEY="phc_test",
            POSTHOG_HOST=posthog_server.host,
            POSTHOG_EXPORT_INTERVAL="0.05",
        )
        app = str(APPS / "own_provider_app.py")
        instrumented = run([LAUNCHER, "python", app], env)
        plain = run([sys.executable, app], env)
        return instrumented, plain, posthog_server.spans, posthog_server.rejections


def test_app_with_its_own_tracer_provider_gets_its_spans_and_posthog_the_ai_span(own_provider_run):
    result, plain, posthog_spans, rejections = own_provider_run
    assert result.returncode == plain.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "reply Hello from fake OpenAI"
    assert lines[2:4] == [
        "app exporter got 'chat gpt-4o-mini' parent checkout",  # the app's exporter gets the LLM span ...
        "app exporter got 'checkout' parent None",  # ... and its own, as without us
    ]
    assert plain.stdout.splitlines()[2] == "app exporter got 'checkout' parent None"
    checkout_id = lines[4].removeprefix("checkout span id ")
    (span,) = posthog_spans  # PostHog gets only the AI span
    assert rejections == []
    assert span["name"] == "chat gpt-4o-mini"
    assert span["attributes"]["$ai_input"][0]["content"] == "own provider"
    assert span["parent_span_id"] in (checkout_id, None)  # under the app's span, or a root in PostHog


# Found by this file: the app's own set_tracer_provider() was refused (a warning on its stderr, and
# trace.get_tracer_provider() was not its provider). Fixed in 1a85a98.
def test_app_with_its_own_tracer_provider_sees_no_difference(own_provider_run):
    result, plain, _, _ = own_provider_run
    assert plain.stdout.splitlines()[1] == "global provider is the app's: True"
    assert result.stdout.splitlines()[1] == "global provider is the app's: True"
    assert result.stderr == plain.stderr == ""
