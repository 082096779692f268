"""Our added cost per chat call on the application thread, measured two ways.

    python benchmarks/app_thread.py --within [--runs N]     # run.py's per-call budget figure
    python benchmarks/app_thread.py [--run N] [--collections on|off]

``--within``: in each of 3 processes of ours, runs of 90 chat calls alternate between
instrumentation on and suppressed (OpenTelemetry's ``suppress_instrumentation``: our wrappers
pass straight through), export thread asleep during a run, collections off inside it; the
median of the per-pair differences. One process, one heap and one set of loaded modules for
both sides, so what separates processes (memory layout, the ~15 µs that merely loading
OpenTelemetry and our package costs the SDK's own code) is not in the figure, and the figure
moves less between processes (up to 9 µs apart in four runs of three) than the comparison
across processes (66 to 112 µs in runs of the same code).

Default: baseline and ours alternate, 3 processes each, pinned to one core. Each times the
application thread's CPU over runs of N chat calls (default 90), with the export thread asleep
during a run (a long export interval; fewer than 100 queued calls never wake it), and a flush
(the export thread's work, on the same core) and a full collection between runs. Printed: the
added µs per call, and the app thread's page faults per call. Varying N shows what the export
thread's work between the app's calls costs the app thread (its caches); ``--collections off``
what the garbage collector does.

Both time our code where it runs: once per call, between long stretches of the SDK's own
work, with cold caches. It then takes about twice as long as the same code in a tight loop
(and as its instruction count, converted at the SDK's own rate, suggests).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import resource
import statistics
import sys
import time
from typing import Optional

import common


def worker(setup_name: str, collections: bool, run: int) -> None:
    setup, call = _warmed_up(setup_name)
    samples, fault_counts = [], []
    for _ in range(max(150 * 90 // run // 3, 50)):
        setup.flush()
        gc.collect()
        if not collections:
            gc.disable()
        faults = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        start = time.thread_time()
        for _ in range(run):
            call()
        samples.append((time.thread_time() - start) / run * 1e6)
        fault_counts.append((resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - faults) / run)
        gc.enable()
    common.emit({"us_per_call": statistics.median(samples), "page_faults_per_call": statistics.median(fault_counts)})


def within(runs: int) -> None:
    """One process of ``--within``: instrumented and suppressed runs, alternating."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    setup, call = _warmed_up("ours", 300 if runs > 5 else 5)

    def timed_run(instrumented: bool) -> float:
        setup.flush()
        gc.collect()
        gc.disable()
        with contextlib.nullcontext() if instrumented else suppress_instrumentation():
            start = time.thread_time()
            for _ in range(90):
                call()
            elapsed = time.thread_time() - start
        gc.enable()
        return elapsed / 90 * 1e6

    added, on, off = _alternating(runs, timed_run)
    common.emit(
        {
            "added_us_per_call": statistics.median(added),
            "instrumented_us_per_call": statistics.median(on),
            "suppressed_us_per_call": statistics.median(off),
        }
    )


def within_all(setup_name: str, runs: int, calls: int) -> None:
    """One process of ``measure_within_all``: runs of ``calls`` chat calls with the setup's
    instrumentation on and off, alternating, each timed on the CPU of all the process's threads
    from its first call to the end of a flush (so the export of its spans is inside it)."""
    setup, call = _warmed_up(setup_name, 300 if runs > 5 else 5)
    recorded = _span_counter(setup)
    spans = {True: 0, False: 0}

    def timed_run(instrumented: bool) -> float:
        setup.flush()
        gc.collect()
        with contextlib.nullcontext() if instrumented else _switched_off(setup):
            before = recorded()
            start = time.process_time()
            for _ in range(calls):
                call()
            setup.flush()
            elapsed = time.process_time() - start
            spans[instrumented] += recorded() - before
        return elapsed / calls * 1e6

    added, _, _ = _alternating(runs, timed_run)
    # The check that switching off worked, and on again: one span a call when on, none when off.
    common.emit(
        {
            "added_us_per_call": statistics.median(added),
            "spans_per_call_on": spans[True] / (runs * calls),
            "spans_per_call_off": spans[False] / (runs * calls),
        }
    )


def _warmed_up(setup_name: str, warm_up_calls: int = 300) -> tuple:
    """The setup, pinned to the worker's core, and its chat call, warmed up."""
    import setups
    import workload

    common.pin_to_cpu(common.WORKER_CPU)
    setup = setups.create(setup_name, os.environ["POSTHOG_HOST"])
    call = workload.make_call("chat", setup.clients)
    for _ in range(warm_up_calls):
        call()
    return setup, call


def _alternating(runs: int, timed_run) -> tuple:
    """``runs`` pairs of ``timed_run(True)`` and ``timed_run(False)``, alternating which goes
    first; (per-pair differences, on, off)."""
    added, on, off = [], [], []
    for index in range(runs):
        times = {}
        for instrumented in (True, False) if index % 2 else (False, True):
            times[instrumented] = timed_run(instrumented)
        added.append(times[True] - times[False])
        on.append(times[True])
        off.append(times[False])
    return added, on, off


@contextlib.contextmanager
def _switched_off(setup):
    """The setup's instrumentation off for one run: OpenTelemetry's suppression for ours; for a
    peer (not all of them honour it), its instrumentor uninstrumented, and instrumented again
    afterwards, both outside the timed run."""
    from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    if setup.name == "ours":
        with suppress_instrumentation():
            yield
        return

    def subclasses(kind):
        for sub in kind.__subclasses__():
            yield sub
            yield from subclasses(sub)

    active = [
        kind._instance
        for kind in subclasses(BaseInstrumentor)
        if getattr(kind, "_instance", None) is not None and kind._instance._is_instrumented_by_opentelemetry
    ]
    for instrumentor in active:
        instrumentor.uninstrument()
    try:
        yield
    finally:
        for instrumentor in active:
            instrumentor.instrument(tracer_provider=setup.provider)


def _span_counter(setup):
    """A function returning how many spans the setup has recorded so far."""
    if setup.name == "ours":
        from setups import posthog_processor

        processor = posthog_processor(setup.provider)
        return lambda: processor.exported + processor.failed + processor.dropped
    from opentelemetry.sdk.trace import SpanProcessor

    class Counter(SpanProcessor):
        def __init__(self):
            self.ended = 0

        def on_end(self, span):
            self.ended += 1

    counter = Counter()
    setup.provider.add_span_processor(counter)
    return lambda: counter.ended


def measure_within_all(
    url: str,
    peer_python: Optional[str],
    peer_names: list,
    runs: int = 30,
    calls: int = 200,
    processes: int = 2,
    say=print,
) -> dict:
    """All threads' added CPU per chat call, each setup on and off within its own processes:
    what separates processes (their memory layout: tens of µs a call, either way) cancels out.
    Ours and each peer that is an OpenTelemetry instrumentor (the PostHog SDK wrapper is a
    client swap, with nothing to switch off in place); processes of each setup in turn."""
    configs = [("ours", common.MAIN_PYTHON)] + [
        (name, peer_python) for name in peer_names if peer_python and name != "posthog_sdk"
    ]
    results: dict = {name: [] for name, _ in configs}
    for _ in range(processes):
        for name, python in configs:
            env = common.worker_env(POSTHOG_HOST=url, POSTHOG_API_KEY=common.API_KEY)
            argv = [python, os.path.abspath(__file__), "--within-all-worker", name, str(runs), str(calls)]
            try:
                result = common.run_json(argv, env=env)
            except Exception as exc:  # a peer that breaks is reported, not fatal
                say(f"    all threads within one process: {name} failed: {str(exc).strip().splitlines()[-1][:200]}")
                continue
            if result["spans_per_call_on"] < 0.99 or result["spans_per_call_off"] > 0:
                say(
                    f"    all threads within one process: {name} left out, switching it off did not work "
                    f"({result['spans_per_call_on']:.2f} spans a call on, {result['spans_per_call_off']:.2f} off)"
                )
                continue
            results[name].append(result["added_us_per_call"])
    return {
        "runs_per_process": runs,
        "calls_per_run": calls,
        "added_us_per_call": {name: round(statistics.median(values), 1) for name, values in results.items() if values},
        "processes": {name: [round(v, 1) for v in values] for name, values in results.items()},
    }


def measure_within(url: str, runs: int = 60, processes: int = 3) -> dict:
    """``--within`` against the stand-in at ``url``: the median over ``processes`` processes."""
    env = common.worker_env(POSTHOG_HOST=url, POSTHOG_EXPORT_INTERVAL="3600", POSTHOG_API_KEY=common.API_KEY)
    results = [
        common.run_json([common.MAIN_PYTHON, os.path.abspath(__file__), "--within-worker", str(runs)], env=env)
        for _ in range(processes)
    ]
    return {
        "added_app_thread_us_per_call": round(statistics.median(r["added_us_per_call"] for r in results), 1),
        "runs_per_process": runs,
        "processes": [{k: round(v, 1) for k, v in r.items()} for r in results],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=int, default=90, help="calls per timed run (< 100: the export thread sleeps)")
    parser.add_argument("--collections", choices=("on", "off"), default="on")
    parser.add_argument("--within", action="store_true", help="instrumented against suppressed, in the same process")
    parser.add_argument("--runs", type=int, default=60, help="--within: pairs of runs per process")
    options = parser.parse_args()
    with common.sink() as url:
        if options.within:
            print(json.dumps(measure_within(url, options.runs)))
            return
        env = common.worker_env(POSTHOG_HOST=url, POSTHOG_EXPORT_INTERVAL="3600", POSTHOG_API_KEY=common.API_KEY)
        collections = options.collections == "on"
        medians: dict = {"baseline": [], "ours": []}
        faults: dict = {"baseline": [], "ours": []}
        for _ in range(3):
            for setup in medians:
                argv = [
                    common.MAIN_PYTHON,
                    os.path.abspath(__file__),
                    "--worker",
                    setup,
                    "on" if collections else "off",
                    str(options.run),
                ]
                result = common.run_json(argv, env=env)
                medians[setup].append(result["us_per_call"])
                faults[setup].append(result["page_faults_per_call"])
        added = statistics.median(medians["ours"]) - statistics.median(medians["baseline"])
        print(
            json.dumps(
                {
                    "run": options.run,
                    "collections": collections,
                    "added_app_thread_us_per_call": round(added, 1),
                    "runs_us_per_call": medians,
                    "page_faults_per_call": faults,
                }
            )
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--within-worker"]:
        within(int(sys.argv[2]))
    elif sys.argv[1:2] == ["--within-all-worker"]:
        within_all(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2], sys.argv[3] == "on", int(sys.argv[4]))
    else:
        main()
