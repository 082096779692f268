"""Resident memory after many instrumented calls, with PostHog healthy and with it dead.

Three processes run side by side (memory, not time, is measured): the SDK alone, ours
exporting to the loopback stand-in, and ours exporting to a port nothing listens on, where
the bounded queue must keep memory flat while spans are dropped.
"""

from __future__ import annotations

import concurrent.futures
from typing import Callable

from common import MAIN_PYTHON, free_port, run_json, worker_env


def measure(sink_url: str, calls: int, say: Callable[[str], None] = print) -> dict:
    dead_url = f"http://127.0.0.1:{free_port()}"
    runs = {
        "baseline": ("baseline", sink_url),
        "ours, healthy endpoint": ("ours", sink_url),
        "ours, dead endpoint": ("ours", dead_url),
    }
    say(f"  memory: {calls} chat calls in each of {', '.join(runs)} (side by side)")

    def run(item):
        label, (setup, url) = item
        argv = [MAIN_PYTHON, "benchmarks/worker.py", "memory", "--setup", setup, "--sink", url, "--calls", str(calls)]
        return label, run_json(argv, env=worker_env(POSTHOG_HOST=url, POSTHOG_FLUSH_TIMEOUT="1"), timeout=3600)

    with concurrent.futures.ThreadPoolExecutor(len(runs)) as pool:
        results = dict(pool.map(run, runs.items()))
    summary = {"calls": calls, "runs": {}}
    base_after = results["baseline"]["after"]["rss_kib"]
    for label, result in results.items():
        after = result["after"]["rss_kib"]
        summary["runs"][label] = {
            "rss_before_mib": result["before"]["rss_kib"] / 1024,
            "rss_after_mib": after / 1024,
            "peak_rss_mib": result["after"]["peak_rss_kib"] / 1024,
            "growth_mib": (after - result["before"]["rss_kib"]) / 1024,
            "vs_baseline_mib": (after - base_after) / 1024,
            "processor": result.get("processor"),
        }
    return summary
