"""Where our per-call cost goes: cProfile of the instrumented loop against the baseline loop.

``python hotspots.py --setup ours|baseline --sink URL --workload chat --calls N`` profiles N
calls on the application thread, on its CPU clock, and prints per-function costs per call. The harness runs
both and reports (a) our package's functions by cumulative time per call and (b) every
function whose own time per call grew most against the baseline. cProfile inflates code that
makes many small calls, so read the figures as proportions, not as the overhead itself. The
export thread is not profiled here; ``export.py`` breaks its cost down by stage.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from typing import Callable

from common import MAIN_PYTHON, WORKER_CPU, emit, pin_to_cpu, run_json, worker_env


def _label(filename: str, line: int, name: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line}({name})"


def profile(setup_name: str, sink_url: str, workload_name: str, calls: int) -> dict:
    import setups
    import workload

    setup = setups.create(setup_name, sink_url)
    call = workload.make_call(workload_name, setup.clients)
    for _ in range(min(calls, 200)):
        workload.run_once(call, workload.is_async(workload_name))
    # Thread CPU time as the profiler's clock: the export thread's work, which runs whenever the
    # application thread releases the GIL, is not charged to whatever function released it.
    profiler = cProfile.Profile(time.thread_time)
    if workload.is_async(workload_name):
        raise SystemExit("profile a synchronous workload")
    profiler.enable()
    for _ in range(calls):
        call()
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    return {
        _label(*key): {"self_us": tt / calls * 1e6, "cumulative_us": ct / calls * 1e6, "calls": nc / calls}
        for key, (cc, nc, tt, ct, callers) in stats.items()
    }


def compare(sink_url: str, workload_name: str, calls: int, say: Callable[[str], None] = print) -> dict:
    say(f"  hotspots: cProfile of {calls} '{workload_name}' calls, ours vs baseline")
    results = {}
    for setup in ("baseline", "ours"):
        argv = [
            MAIN_PYTHON,
            "benchmarks/hotspots.py",
            "--setup",
            setup,
            "--sink",
            sink_url,
            "--workload",
            workload_name,
            "--calls",
            str(calls),
        ]
        results[setup] = run_json(argv, env=worker_env(POSTHOG_HOST=sink_url))["functions"]
    base, ours = results["baseline"], results["ours"]
    grown = []
    for name, stats in ours.items():
        delta = stats["self_us"] - base.get(name, {}).get("self_us", 0.0)
        grown.append({"function": name, "added_self_us": delta, "calls_per_call": stats["calls"]})
    grown.sort(key=lambda r: -r["added_self_us"])
    ours_only = sorted(
        (
            {"function": n, "cumulative_us": s["cumulative_us"], "self_us": s["self_us"], "calls_per_call": s["calls"]}
            for n, s in ours.items()
            if n.startswith("posthog_autoinstrument/")
        ),
        key=lambda r: -r["cumulative_us"],
    )
    total = lambda funcs: max((s["cumulative_us"] for s in funcs.values()), default=0.0)  # noqa: E731
    return {
        "workload": workload_name,
        "calls": calls,
        "profiled_us_per_call": {"baseline": total(base), "ours": total(ours)},
        "our_functions_by_cumulative": ours_only[:15],
        "largest_added_self_time": grown[:20],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--setup", required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--workload", default="chat")
    parser.add_argument("--calls", type=int, default=2000)
    options = parser.parse_args()
    pin_to_cpu(WORKER_CPU)
    emit({"functions": profile(options.setup, options.sink, options.workload, options.calls)})


if __name__ == "__main__":
    main()
