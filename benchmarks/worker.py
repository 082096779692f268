"""One measurement process: ``python worker.py MODE --setup NAME ...``; prints one JSON line.

Patching is process-wide, so every configuration runs in its own process (in the main venv,
or in the peers' venv for the peers). Modes:

- ``percall``: time batches of each workload (µs per call), then verify what was emitted.
- ``memory``: resident memory before and after N chat calls.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time

from common import WORKER_CPU, emit, pin_to_cpu, rss_kib, versions


def percall(setup, plan: dict) -> dict:
    import workload as w

    results = {}
    for name, (warmup, batches, per_batch) in plan.items():
        call = w.make_call(name, setup.clients)
        results[name] = w.time_batches(call, w.is_async(name), warmup, batches, per_batch, setup.flush)
    setup.flush()
    for name in plan:
        call = w.make_call(name, setup.clients)
        results[name]["verify"] = setup.verify(name, call, lambda c, a=w.is_async(name): w.run_once(c, a))  # noqa: B008 (bound per name)
    return results


def memory(setup, calls: int) -> dict:
    import workload as w
    from setups import posthog_processor

    call = w.make_call("chat", setup.clients)
    for _ in range(200):
        call()
    gc.collect()
    before = rss_kib()
    start = time.perf_counter()
    for _ in range(calls):
        call()
    elapsed = time.perf_counter() - start
    gc.collect()
    after = rss_kib()
    result = {"calls": calls, "seconds": elapsed, "before": before, "after": after}
    processor = posthog_processor(setup.provider) if setup.name == "ours" else None
    if processor is not None:
        result["processor"] = {
            "exported": processor.exported,
            "dropped": processor.dropped,
            "failed": processor.failed,
            "queued": len(processor._queue),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["percall", "memory"])
    parser.add_argument("--setup", required=True)
    parser.add_argument("--sink", help="URL of the loopback stand-in")
    parser.add_argument("--plan", help='percall: {"workload": [warmup, batches, per_batch]}')
    parser.add_argument("--calls", type=int, default=100_000, help="memory: calls to make")
    options = parser.parse_args()

    if options.mode == "percall":
        pin_to_cpu(WORKER_CPU)  # memory runs go side by side, unpinned: their clocks do not matter
    import setups

    setup = setups.create(options.setup, options.sink)
    if options.mode == "percall":
        plan = {k: v for k, v in json.loads(options.plan).items()}
        result = {"results": percall(setup, plan)}
    else:
        result = memory(setup, options.calls)
    result.update(
        {
            "setup": setup.name,
            "covered": list(setup.workloads),
            "notes": setup.notes,
            "packages": {**versions(["openai", "anthropic", "httpx2", "pydantic"]), **setup.packages},
            "python": platform.python_version(),
            "executable": sys.executable,
        }
    )
    emit(result)


if __name__ == "__main__":
    main()
