"""Added cost per call of each provider adapter, against OpenAI chat's (the reference).

    python benchmarks/providers.py                  # timed (within one process) and callgrind
    python benchmarks/providers.py --timed-only     # without valgrind
    python benchmarks/providers.py --providers anthropic,gemini --runs 20
    python benchmarks/providers.py --callgrind-only --providers openai,mistral --source OTHER/src \
        --keep-profiles DIR                         # another copy of the package; profiles kept

Each provider's SDK runs unmodified over an in-process transport (``httpx``/``httpx2``
``MockTransport``; botocore's ``before-send`` event for Bedrock) answering one canned response
in the provider's wire format: one short chat call, non-streaming, content capture on, our real
start-up path (every instrumentor we register), the full export pipeline live. LangChain is a
``ChatOpenAI.invoke`` (one step: LangChain's run and the OpenAI call inside it).

Two figures per provider, both within one process (instrumentation on and off alternate, so what
separates processes, the memory layout, cancels out):

- **timed**: runs of ``calls`` calls alternate on and off, each timed on the CPU of all the
  process's threads from its first call to the end of a flush (the export of its spans inside
  it), collections on; the median per-pair difference, the median of the processes.
- **callgrind**: instructions of every thread, on the application thread: the export thread
  sleeps (a long export interval, fewer than 100 calls queued), and each counted region drains
  the queue on the application thread after its calls (the export thread's own work: building
  the span, PostHog's copy, encoding, HTTP to the loopback stand-in), collections off inside
  a region. Regions in ABBA order; the mean of the two halves. Load cannot move this figure.

"Off" is OpenTelemetry's ``suppress_instrumentation`` (our wrappers step aside). The Anthropic
SDK can trace itself into our tracer provider and does not honour the suppression, so its "off"
client is made with ``open_telemetry=False``. ``anthropic`` is the default under PostHog alone
(the SDK's tracing off, our adapter records the call); ``anthropic_sdk_span`` is a client that
traces itself, as with telemetry of the app's own, whose span we complete: the SDK's own work on
that span is counted as ours (an uninstrumented app's SDK spans go to OpenTelemetry's no-op
provider). Each process checks
that a call on makes one exported span and a call off none.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import common

PROVIDERS = (
    "openai",
    "anthropic",
    "anthropic_sdk_span",
    "gemini",
    "bedrock",
    "mistral",
    "cohere",
    "litellm",
    "ollama",
    "langchain",
)
PROMPT = "Say hello in one short sentence."
SYSTEM = "You are a terse assistant."
REPLY = "Hello from a canned reply"

# -- canned answers, in each provider's wire format ------------------------------------------


def _openai_completion(model: str) -> dict:
    return {
        "id": "chatcmpl-benchmark",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": REPLY, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        "system_fingerprint": "fp_benchmark",
    }


ANSWERS = {
    "openai": _openai_completion("gpt-4o-mini-2024-07-18"),
    "langchain": _openai_completion("gpt-4o-mini-2024-07-18"),
    "litellm": _openai_completion("gpt-4o-mini-2024-07-18"),
    "anthropic": {
        "id": "msg_01Benchmark",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": REPLY}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 11,
            "output_tokens": 7,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    },
    "gemini": {
        "candidates": [{"content": {"role": "model", "parts": [{"text": REPLY}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": 7, "totalTokenCount": 18},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "benchmark-response",
    },
    "bedrock": {
        "output": {"message": {"role": "assistant", "content": [{"text": REPLY}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 11, "outputTokens": 7, "totalTokens": 18},
        "metrics": {"latencyMs": 10},
    },
    "mistral": {
        "id": "cmpl-benchmark",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "mistral-small-latest",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": REPLY, "tool_calls": None},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    },
    "cohere": {
        "id": "c0c0c0c0-benchmark",
        "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": [{"type": "text", "text": REPLY}]},
        "usage": {
            "billed_units": {"input_tokens": 11, "output_tokens": 7},
            "tokens": {"input_tokens": 20, "output_tokens": 7},
        },
    },
    "ollama": {
        "model": "llama3.2",
        "created_at": "2026-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": REPLY},
        "done": True,
        "done_reason": "stop",
        "total_duration": 123456789,
        "load_duration": 1234567,
        "prompt_eval_count": 11,
        "prompt_eval_duration": 2345678,
        "eval_count": 7,
        "eval_duration": 3456789,
    },
}


def _mock_transport(httpx_module, provider: str):
    body = json.dumps(ANSWERS[provider]).encode()
    headers = {"content-type": "application/json"}
    return httpx_module.MockTransport(lambda request: httpx_module.Response(200, content=body, headers=headers))


def _messages() -> list:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]


def make_call(provider: str, traced: bool = True) -> Callable[[], object]:
    """One chat call of ``provider`` over an in-process transport. ``traced=False``: for Anthropic,
    a client that does not trace itself (the "off" side; see the module's docstring)."""
    if provider == "openai":
        import httpx2
        import openai

        client = openai.OpenAI(
            api_key="sk-benchmark",
            max_retries=0,
            http_client=openai.DefaultHttpxClient(transport=_mock_transport(httpx2, provider)),
        )
        messages = _messages()
        return lambda: client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, temperature=0.2, max_tokens=64
        )
    if provider in ("anthropic", "anthropic_sdk_span"):
        import anthropic
        import httpx2

        if not traced:
            extra: dict = {"open_telemetry": False}
        elif provider == "anthropic_sdk_span":  # as with telemetry of the app's own: the SDK's span
            extra = {"open_telemetry": {"traces": {"content_mode": "content"}}}
        else:  # PostHog the only consumer of spans: our adapter records the call
            extra = {}
        client = anthropic.Anthropic(
            api_key="sk-ant-benchmark",
            max_retries=0,
            **extra,
            http_client=anthropic.DefaultHttpxClient(transport=_mock_transport(httpx2, "anthropic")),
        )
        messages = [{"role": "user", "content": PROMPT}]
        return lambda: client.messages.create(
            model="claude-sonnet-4-5", max_tokens=64, system=SYSTEM, messages=messages
        )
    if provider == "gemini":
        import httpx2
        from google import genai
        from google.genai import types

        client = genai.Client(
            api_key="benchmark-key",
            http_options=types.HttpOptions(httpx_client=httpx2.Client(transport=_mock_transport(httpx2, provider))),
        )
        config = types.GenerateContentConfig(system_instruction=SYSTEM, temperature=0.2, max_output_tokens=64)
        return lambda: client.models.generate_content(model="gemini-2.5-flash", contents=PROMPT, config=config)
    if provider == "bedrock":
        import boto3
        from botocore.awsrequest import AWSResponse

        body = json.dumps(ANSWERS[provider]).encode()

        class Raw:
            def stream(self, **_):
                yield body

        client = boto3.client(
            "bedrock-runtime",
            region_name="us-east-1",
            aws_access_key_id="AKIDBENCHMARK",
            aws_secret_access_key="benchmark-secret",
        )
        client.meta.events.register(
            "before-send.bedrock-runtime.*",
            lambda request, **_: AWSResponse(request.url, 200, {"content-type": "application/json"}, Raw()),
        )
        messages = [{"role": "user", "content": [{"text": PROMPT}]}]
        return lambda: client.converse(
            modelId="anthropic.claude-3-haiku-20240307-v1:0",
            messages=messages,
            system=[{"text": SYSTEM}],
            inferenceConfig={"maxTokens": 64, "temperature": 0.2},
        )
    if provider == "mistral":
        import httpx2
        from mistralai.client import Mistral

        client = Mistral(api_key="benchmark-key", client=httpx2.Client(transport=_mock_transport(httpx2, provider)))
        messages = _messages()
        return lambda: client.chat.complete(
            model="mistral-small-latest", messages=messages, temperature=0.2, max_tokens=64
        )
    if provider == "cohere":
        import cohere
        import httpx

        client = cohere.ClientV2(
            api_key="benchmark-key", httpx_client=httpx.Client(transport=_mock_transport(httpx, provider))
        )
        messages = _messages()
        return lambda: client.chat(model="command-a-03-2025", messages=messages, temperature=0.2, max_tokens=64)
    if provider == "ollama":
        import httpx
        import ollama

        client = ollama.Client(host="http://127.0.0.1:11434", transport=_mock_transport(httpx, provider))
        messages = _messages()
        return lambda: client.chat(model="llama3.2", messages=messages, options={"temperature": 0.2})
    if provider == "litellm":
        import httpx2
        import litellm
        import openai

        litellm.telemetry = False
        client = openai.OpenAI(
            api_key="sk-benchmark",
            max_retries=0,
            http_client=openai.DefaultHttpxClient(transport=_mock_transport(httpx2, provider)),
        )
        messages = _messages()
        return lambda: litellm.completion(
            model="gpt-4o-mini",
            messages=messages,
            temperature=0.2,
            max_tokens=64,
            client=client,
            api_key="sk-benchmark",
        )
    if provider == "langchain":
        import httpx2
        import openai
        from langchain_openai import ChatOpenAI

        model = ChatOpenAI(
            model="gpt-4o-mini",
            api_key="sk-benchmark",
            max_retries=0,
            temperature=0.2,
            max_tokens=64,
            http_client=openai.DefaultHttpxClient(transport=_mock_transport(httpx2, provider)),
        )
        messages = [("system", SYSTEM), ("human", PROMPT)]
        return lambda: model.invoke(messages)
    raise ValueError(f"unknown provider {provider}")


# -- worker side -----------------------------------------------------------------------------


def _setup():
    sys.path.insert(0, str(common.HERE))
    import setups

    return setups.create("ours", os.environ["POSTHOG_HOST"])


def _switch(provider: str):
    """(calls, mode): the call for on and off, and the context each runs in."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    on = make_call(provider)
    off = make_call(provider, traced=False) if provider.startswith("anthropic") else on
    calls = {True: on, False: off}

    def mode(instrumented: bool):
        if instrumented:
            return contextlib.nullcontext()
        return _langchain_off() if provider == "langchain" else suppress_instrumentation()

    return calls, mode


@contextlib.contextmanager
def _langchain_off():
    """LangChain's callbacks do not look at the suppression: our LangChain instrumentor is
    uninstrumented for the run, and instrumented again after it (the wrapped OpenAI call is
    suppressed)."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation
    from posthog_autoinstrument.instrumentation.langchain import LangChainInstrumentor

    instrumentor = LangChainInstrumentor()  # a singleton
    instrumentor.uninstrument()
    try:
        with suppress_instrumentation():
            yield
    finally:
        instrumentor.instrument()


def timed_worker(provider: str, runs: int, calls_per_run: int) -> None:
    """One process of the timed figure (see the module's docstring)."""
    from setups import posthog_processor

    common.pin_to_cpu(common.WORKER_CPU)
    setup = _setup()
    processor = posthog_processor(setup.provider)
    calls, mode = _switch(provider)
    for instrumented in (True, False):
        with mode(instrumented):
            for _ in range(100 if runs > 3 else 3):
                calls[instrumented]()
    spans = {True: 0, False: 0}

    def exported() -> int:
        return processor.exported + processor.failed + processor.dropped

    def timed_run(instrumented: bool) -> float:
        setup.flush()
        gc.collect()
        call = calls[instrumented]
        with mode(instrumented):
            before = exported()
            start = time.process_time()
            for _ in range(calls_per_run):
                call()
            setup.flush()
            elapsed = time.process_time() - start
        spans[instrumented] += exported() - before
        return elapsed / calls_per_run * 1e6

    added, on, off = [], [], []
    for index in range(runs):
        times = {}
        for instrumented in (True, False) if index % 2 else (False, True):
            times[instrumented] = timed_run(instrumented)
        added.append(times[True] - times[False])
        on.append(times[True])
        off.append(times[False])
    common.emit(
        {
            "added_us_per_call": statistics.median(added),
            "on_us_per_call": statistics.median(on),
            "off_us_per_call": statistics.median(off),
            "spans_per_call_on": spans[True] / (runs * calls_per_run),
            "spans_per_call_off": spans[False] / (runs * calls_per_run),
        }
    )


# Regions in ABBA order: instrumented or not.
_ABBA = (True, False, False, True)


def callgrind_worker(provider: str, calls_per_region: int) -> None:
    """One process under callgrind: ABBA regions of ``calls_per_region`` calls and a drain of the
    export queue on this thread, each inside ``functools.reduce`` (the one function counted)."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation
    from setups import posthog_processor

    setup = _setup()
    processor = posthog_processor(setup.provider)
    calls, mode = _switch(provider)
    for instrumented in (True, False):
        with mode(instrumented):
            for _ in range(5):
                calls[instrumented]()
    setup.flush()

    def drain() -> None:
        with suppress_instrumentation():  # as on the export thread
            processor._export_pending(time.monotonic() + 60, drain=True)

    done, spans = [], []
    for instrumented in _ABBA:
        call = calls[instrumented]
        setup.flush()
        gc.collect()
        gc.disable()
        before = processor.exported + processor.failed + processor.dropped
        with mode(instrumented):
            functools.reduce(lambda carry, _: (call(), carry)[1], range(calls_per_region), None)  # noqa: B023
            functools.reduce(lambda carry, _: (drain(), carry)[1], range(1), None)
        gc.enable()
        spans.append(processor.exported + processor.failed + processor.dropped - before)
        done.append(instrumented)
    common.emit({"regions": done, "spans": spans})
    sys.stdout.flush()
    os._exit(0)  # no exit-time work after the last region


# -- harness side ----------------------------------------------------------------------------


# Another version of the package to measure in the workers (``--source``), else the installed one.
_SOURCE: dict = {}


def _env(url: str, **extra: str) -> dict:
    return common.worker_env(POSTHOG_HOST=url, POSTHOG_API_KEY=common.API_KEY, **_SOURCE, **extra)


def measure_timed(url: str, providers: tuple, runs: int, calls: int, processes: int, say=print) -> dict:
    results: dict = {name: [] for name in providers}
    problems: dict = {}
    for index in range(processes):
        for name in providers:
            argv = [common.MAIN_PYTHON, os.path.abspath(__file__), "--timed-worker", name, str(runs), str(calls)]
            try:
                result = common.run_json(argv, env=_env(url))
            except Exception as exc:
                problems[name] = str(exc).strip().splitlines()[-1][:300]
                say(f"    providers, timed: {name} failed: {problems[name]}")
                continue
            if result["spans_per_call_on"] < 0.99 or result["spans_per_call_off"] > 0:
                problems[name] = (
                    f"{result['spans_per_call_on']:.2f} spans a call on, {result['spans_per_call_off']:.2f} off"
                )
            results[name].append(result)
            say(f"    providers, timed, process {index + 1}: {name} +{result['added_us_per_call']:.0f} µs")
    added = {
        name: round(statistics.median(r["added_us_per_call"] for r in values), 1)
        for name, values in results.items()
        if values
    }
    reference = added.get("openai")
    return {
        "runs_per_process": runs,
        "calls_per_run": calls,
        "added_us_per_call": added,
        "ratio_to_openai": {name: round(v / reference, 2) for name, v in added.items()} if reference else {},
        "processes": {
            name: [{k: round(v, 2) for k, v in r.items()} for r in values] for name, values in results.items()
        },
        "problems": problems,
    }


def callgrind_one(url: str, provider: str, calls: int, keep: Optional[Path] = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="callgrind-") as folder:
        out = Path(folder) / "cg.out"
        argv = [
            *common.callgrind_argv(out),
            common.MAIN_PYTHON,
            os.path.abspath(__file__),
            "--callgrind-worker",
            provider,
            str(calls),
        ]
        env = _env(url, PYTHONHASHSEED="0", POSTHOG_EXPORT_INTERVAL="3600")
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=3600, stdin=subprocess.DEVNULL, cwd=str(common.REPO)
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"callgrind worker {provider} failed ({done.returncode}): {done.stderr[-2000:]}")
        result = json.loads(lines[-1])
        dumps = common.callgrind_dumps(out)
        # Two dumps a region (calls, drain); anything that ran functools.reduce earlier dumped first.
        regions = result["regions"]
        dumps = dumps[len(dumps) - 2 * len(regions) :]
        if keep is not None:  # for callgrind_annotate: region i's calls, then its drain
            keep.mkdir(parents=True, exist_ok=True)
            for index, dump in enumerate(dumps):
                state = "on" if regions[index // 2] else "off"
                part = "drain" if index % 2 else "calls"
                shutil.copy(dump, keep / f"{provider}.{index // 2}.{state}.{part}.callgrind")
        per_region = [
            (common.instructions_in(dumps[2 * i]) + common.instructions_in(dumps[2 * i + 1])) / calls
            for i in range(len(regions))
        ]
        app_only = [common.instructions_in(dumps[2 * i]) / calls for i in range(len(regions))]
        on = [v for v, r in zip(per_region, regions) if r]
        off = [v for v, r in zip(per_region, regions) if not r]
        app_on = [v for v, r in zip(app_only, regions) if r]
        app_off = [v for v, r in zip(app_only, regions) if not r]
        spans_on = sum(s for s, r in zip(result["spans"], regions) if r) / (calls * len(on))
        spans_off = sum(s for s, r in zip(result["spans"], regions) if not r)
        return {
            "added_instructions_per_call": round(statistics.mean(on) - statistics.mean(off)),
            "added_on_app_path_per_call": round(statistics.mean(app_on) - statistics.mean(app_off)),
            "sdk_instructions_per_call": round(statistics.mean(off)),
            "spans_per_call_on": spans_on,
            "spans_off": spans_off,
        }


def measure_callgrind(url: str, providers: tuple, calls: int, say=print, keep: Optional[Path] = None) -> dict:
    if shutil.which("valgrind") is None:
        return {"skipped": "valgrind is not installed"}
    from concurrent.futures import ThreadPoolExecutor

    def one(name: str) -> tuple:
        try:
            result = callgrind_one(url, name, calls, keep)
        except Exception as exc:
            say(f"    providers, callgrind: {name} failed: {str(exc).strip().splitlines()[-1][:200]}")
            return name, {"failed": str(exc)[-500:]}
        say(f"    providers, callgrind: {name} +{result['added_instructions_per_call'] / 1000:,.0f} k instructions")
        return name, result

    with ThreadPoolExecutor(2) as pool:  # instruction counts do not depend on load
        counts = dict(pool.map(one, providers))
    reference = counts.get("openai", {}).get("added_instructions_per_call")
    ratios = {
        name: round(v["added_instructions_per_call"] / reference, 2)
        for name, v in counts.items()
        if reference and "added_instructions_per_call" in v
    }
    return {"calls_per_region": calls, "per_provider": counts, "ratio_to_openai": ratios}


def measure(
    url: str,
    quick: bool,
    say=print,
    providers: tuple = PROVIDERS,
    timed: bool = True,
    counted: bool = True,
    callgrind_calls: Optional[int] = None,
    keep: Optional[Path] = None,
) -> dict:
    result: dict = {"providers": list(providers)}
    if counted:
        say("providers: callgrind, all threads' instructions per call, on against off in one process")
        calls = callgrind_calls or (3 if quick else 30)
        result["callgrind"] = measure_callgrind(url, providers, calls, say, keep)
    if timed:
        say("providers: timed, all threads' CPU per call, on against off in one process")
        result["timed"] = measure_timed(url, providers, 2 if quick else 20, 5 if quick else 100, 1 if quick else 2, say)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--providers", default=",".join(PROVIDERS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--timed-only", action="store_true")
    parser.add_argument("--callgrind-only", action="store_true")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    parser.add_argument("--source", type=Path, help="measure the package in this src folder (another version)")
    parser.add_argument("--callgrind-calls", type=int, help="calls per counted region (default 30; --quick 3)")
    parser.add_argument(
        "--keep-profiles", type=Path, help="copy each region's callgrind profile here (for callgrind_annotate)"
    )
    options = parser.parse_args()
    providers = tuple(options.providers.split(","))
    if options.source:
        _SOURCE["PYTHONPATH"] = str(options.source.resolve())
    with common.sink() as url:
        result = measure(
            url,
            options.quick,
            lambda m: print(m, file=sys.stderr, flush=True),
            providers,
            timed=not options.callgrind_only,
            counted=not options.timed_only,
            callgrind_calls=options.callgrind_calls,
            keep=options.keep_profiles,
        )
    result["machine"] = common.machine_info()
    text = json.dumps(result, indent=1)
    if options.output:
        options.output.write_text(text)
    print(text)


if __name__ == "__main__":
    os.chdir(common.REPO)
    if sys.argv[1:2] == ["--timed-worker"]:
        timed_worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1:2] == ["--callgrind-worker"]:
        callgrind_worker(sys.argv[2], int(sys.argv[3]))
    else:
        main()
