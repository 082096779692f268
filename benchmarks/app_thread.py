"""Why our app-thread cost per chat call times higher than its instructions (not in ``run.py``).

    python benchmarks/app_thread.py [--run N] [--collections on|off]

Baseline and ours alternate, 3 processes each, pinned to one core. Each times the application
thread's CPU over runs of N chat calls (default 90), with the export thread asleep during a run
(a long export interval; fewer than 100 queued calls never wake it), and a flush (the export
thread's work, on the same core) and a full collection between runs. Printed: the added µs
per call, and the app thread's page faults per call. Varying N shows what the export thread's
work between the app's calls costs the app thread (its caches); ``--collections off`` what the
garbage collector does.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import sys
import time

import common


def worker(setup_name: str, collections: bool, run: int) -> None:
    import setups
    import workload

    common.pin_to_cpu(common.WORKER_CPU)
    setup = setups.create(setup_name, os.environ["POSTHOG_HOST"])
    call = workload.make_call("chat", setup.clients)
    for _ in range(300):
        call()
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=int, default=90, help="calls per timed run (< 100: the export thread sleeps)")
    parser.add_argument("--collections", choices=("on", "off"), default="on")
    options = parser.parse_args()
    with common.sink() as url:
        env = common.worker_env(POSTHOG_HOST=url, POSTHOG_EXPORT_INTERVAL="3600", POSTHOG_API_KEY=common.API_KEY)
        collections = options.collections == "on"
        medians: dict = {"baseline": [], "ours": []}
        faults: dict = {"baseline": [], "ours": []}
        for _ in range(3):
            for setup in medians:
                argv = [common.MAIN_PYTHON, os.path.abspath(__file__), "--worker", setup,
                        "on" if collections else "off", str(options.run)]
                result = common.run_json(argv, env=env)
                medians[setup].append(result["us_per_call"])
                faults[setup].append(result["page_faults_per_call"])
        added = statistics.median(medians["ours"]) - statistics.median(medians["baseline"])
        print(json.dumps({"run": options.run, "collections": collections,
                          "added_app_thread_us_per_call": round(added, 1),
                          "runs_us_per_call": medians, "page_faults_per_call": faults}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2], sys.argv[3] == "on", int(sys.argv[4]))
    else:
        main()
