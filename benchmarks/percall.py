"""Per-call and per-chunk overhead: every configuration in its own process, interleaved.

Each round runs every configuration once (baseline and instrumented, ours and the peers'),
in an order rotated per round so that slow drifts of the machine spread evenly. Each process
times several batches of each workload, on two clocks: wall time, and CPU time of all the
process's threads (the application's and the exporters'). A configuration's cost is the median
over all its batches; its added cost is the median over rounds of (its median - the same
round's baseline median in the same environment).

The CPU clock is what the budgets are judged on: for this in-process workload it equals wall
time on a quiet machine (threads take turns on the GIL, there is no I/O wait), and unlike
wall time it does not count the moments other programs on a shared machine hold the core.
"""

from __future__ import annotations

from typing import Callable, Optional

from common import MAIN_PYTHON, median, run_json, worker_env
from workload import OPENAI_WORKLOADS, SHORT_STREAM_CHUNKS, STREAM_CHUNKS, WORKLOADS

# [warmup calls, batches, calls per batch]
FULL_PLAN = {
    "chat": [100, 5, 200],
    "embeddings": [100, 5, 200],
    "anthropic": [100, 5, 200],
    "stream_sync": [3, 5, 8],
    "stream_async": [3, 5, 8],
    "stream_sync_short": [20, 5, 40],
    "stream_async_short": [20, 5, 40],
}
QUICK_PLAN = {
    "chat": [2, 2, 3],
    "embeddings": [2, 2, 3],
    "anthropic": [2, 2, 3],
    "stream_sync": [1, 2, 1],
    "stream_async": [1, 2, 1],
    "stream_sync_short": [1, 2, 1],
    "stream_async_short": [1, 2, 1],
}


def configurations(peer_python: Optional[str], peer_names: list) -> list:
    """(environment, python, setup, workloads) for every process kind of one round."""
    from setups import our_instrumented_workloads

    configs = [
        ("main", MAIN_PYTHON, "baseline", WORKLOADS),
        ("main", MAIN_PYTHON, "ours", our_instrumented_workloads()),
    ]
    if peer_python:
        configs.append(("peers", peer_python, "baseline", OPENAI_WORKLOADS))
        configs += [("peers", peer_python, name, OPENAI_WORKLOADS) for name in peer_names]
    return configs


def measure(
    sink_url: str,
    rounds: int,
    plan: dict,
    peer_python: Optional[str],
    peer_names: list,
    say: Callable[[str], None] = print,
    parallel: int = 1,
) -> dict:
    """``parallel`` > 1 runs a round's processes side by side: only for quick runs, which time nothing."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    configs = configurations(peer_python, peer_names)
    runs: dict = {}  # (env, setup) -> list of worker results, one per round
    failures: dict = {}

    def run(config: tuple) -> None:
        env_name, python, setup, workloads = config
        key = (env_name, setup)
        if key in failures:
            return
        argv = [
            python,
            "benchmarks/worker.py",
            "percall",
            "--setup",
            setup,
            "--sink",
            sink_url,
            "--plan",
            json.dumps({w: plan[w] for w in workloads}),
        ]
        try:
            result = run_json(argv, env=worker_env(POSTHOG_HOST=sink_url))
        except Exception as exc:  # a peer that breaks is reported, not fatal
            failures[key] = str(exc).strip().splitlines()[-1][:300]
            say(f"    {env_name}/{setup} failed: {failures[key]}")
        else:
            runs.setdefault(key, []).append(result)

    for index in range(rounds):
        order = configs[index % len(configs) :] + configs[: index % len(configs)]
        say(f"  per-call round {index + 1}/{rounds}: {', '.join(f'{e}/{s}' for e, _, s, _ in order)}")
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(run, order))
    return summarise(runs, failures, rounds)


def _values(run_results: list, workload: str, clock: str = "us_per_call") -> list:
    return [v for r in run_results for v in r["results"].get(workload, {}).get(clock, [])]


def _paired(results: list, baseline_runs: list, workload: str, clock: str) -> list:
    """Per round: this configuration's median minus the same round's baseline median."""
    return [
        median(r["results"][workload][clock]) - median(b["results"][workload][clock])
        for r, b in zip(results, baseline_runs)
        if workload in b["results"]
    ]


def summarise(runs: dict, failures: dict, rounds: int) -> dict:
    setups: dict = {}
    for (env_name, setup), results in runs.items():
        baseline_runs = runs.get((env_name, "baseline"), [])
        first = results[0]
        entry = {
            "env": env_name,
            "rounds": len(results),
            "notes": first["notes"],
            "packages": first["packages"],
            "covered": first["covered"],
            "workloads": {},
        }
        for workload in first["results"]:
            app_cpu = median(_values(results, workload, "thread_cpu_us_per_call"))
            all_cpu = median(_values(results, workload, "process_cpu_us_per_call"))
            stats = {
                "median_us": median(_values(results, workload)),
                "batches": len(_values(results, workload)),
                "app_thread_cpu_us": app_cpu,
                "other_threads_cpu_us": all_cpu - app_cpu,
                "verify": first["results"][workload].get("verify") or None,
            }
            paired = _paired(results, baseline_runs, workload, "us_per_call")
            paired_cpu = _paired(results, baseline_runs, workload, "process_cpu_us_per_call")
            stats["cpu_us"] = all_cpu
            if setup != "baseline" and paired:
                base_app = median(_values(baseline_runs, workload, "thread_cpu_us_per_call"))
                base_all = median(_values(baseline_runs, workload, "process_cpu_us_per_call"))
                stats.update(
                    {
                        "baseline_us": median(_values(baseline_runs, workload)),
                        "baseline_cpu_us": base_all,
                        "cpu_ratio": all_cpu / base_all,
                        "delta_us": median(paired),
                        "delta_range_us": [min(paired), max(paired)],
                        "delta_cpu_us": median(paired_cpu),
                        "delta_cpu_range_us": [min(paired_cpu), max(paired_cpu)],
                        "delta_app_thread_cpu_us": app_cpu - base_app,
                        "delta_other_threads_cpu_us": (all_cpu - app_cpu) - (base_all - base_app),
                    }
                )
                stats["ratio"] = stats["median_us"] / stats["baseline_us"]
                if workload.startswith("stream"):
                    stats["delta_per_chunk_us"] = stats["delta_us"] / STREAM_CHUNKS
                    stats["delta_cpu_per_chunk_us"] = stats["delta_cpu_us"] / STREAM_CHUNKS
            entry["workloads"][workload] = stats
        for long_name in ("stream_sync", "stream_async"):
            long, short = entry["workloads"].get(long_name, {}), entry["workloads"].get(long_name + "_short", {})
            if "delta_cpu_us" in long and "delta_cpu_us" in short:
                # What one more chunk costs: the per-call work (span, input, output) cancels out.
                extra = STREAM_CHUNKS - SHORT_STREAM_CHUNKS
                long["delta_marginal_per_chunk_us"] = (long["delta_us"] - short["delta_us"]) / extra
                long["delta_cpu_marginal_per_chunk_us"] = (long["delta_cpu_us"] - short["delta_cpu_us"]) / extra
        setups[f"{env_name}/{setup}"] = entry
    for (env_name, setup), reason in failures.items():
        setups.setdefault(f"{env_name}/{setup}", {"env": env_name, "workloads": {}})["failed"] = reason
    return {"rounds": rounds, "stream_chunks": STREAM_CHUNKS, "setups": setups}
