"""Instruction counts (callgrind): per-call and per-chunk costs that load and noise cannot move.

A 200-chunk OpenAI stream costs the SDK about 160 µs of CPU per chunk here (it builds pydantic
objects for every chunk), so a cost of 1 µs per chunk is a 0.6% difference: timing cannot
resolve it, on a shared machine or a quiet one. ``valgrind --tool=callgrind`` counts the
instructions the application thread executes instead, the same on every run.

Each configuration runs in one process under callgrind. Counting is off at start; each
measured region runs inside ``functools.reduce`` (``--toggle-collect=functools_reduce``), and
callgrind writes one profile per region (``--dump-after``). Only the application thread is
counted (callgrind toggles per thread): the export thread's cost is measured by ``export.py``.
Per chunk = (200-chunk stream - 2-chunk stream) / 198, minus the same for the SDK alone.

Garbage collection is off inside the regions (each starts after a full collection): when a
collection falls, and what it costs, depends on the heap's whole history, which differs between
processes. With collections on, our per-chunk count for sync streams without the usage chunk
ranged from 0.1 k to 3.0 k in five runs of the same code. With them off, per-call counts agree
within a few percent between runs, but per-chunk figures still move by up to +-1.2 k (async, with
the usage chunk: 4.9 k, 5.2 k and 7.3 k in three runs), from the memory allocator's state, which
also differs between processes: read per-chunk figures as +-1.2 k.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional

from common import MAIN_PYTHON, REPO, emit, worker_env
from workload import SHORT_STREAM_CHUNKS, STREAM_CHUNKS

FULL_PLAN = {"chat": 20, "embeddings": 20, "stream_sync_short": 20, "stream_sync": 4,
             "stream_async_short": 20, "stream_async": 4}
QUICK_PLAN = {"chat": 2, "stream_sync_short": 1, "stream_sync": 1}


def region(run: Callable[[], object], times: int) -> None:
    """``run`` ``times`` times inside functools.reduce, the one function callgrind counts in."""
    functools.reduce(lambda carry, _: (run(), carry)[1], range(times), None)


def worker(setup_name: str, sink_url: str, plan: dict) -> None:
    import setups
    import workload

    setup = setups.create(setup_name, sink_url)
    done = []
    for name, times in plan.items():
        if name not in setup.workloads and setup_name != "baseline":
            continue
        call = workload.make_call(name, setup.clients)
        asynchronous = workload.is_async(name)
        for _ in range(3):
            workload.run_once(call, asynchronous)
        setup.flush()
        gc.collect()
        gc.disable()  # see the module's docstring
        region(lambda: workload.run_once(call, asynchronous), times)
        gc.enable()
        done.append([name, times])
    emit({"regions": done})
    sys.stdout.flush()
    os._exit(0)  # no exit-time work after the last region (it would be dumped too)


def _count(profile: Path) -> int:
    for line in profile.read_text(errors="replace").splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    return 0


def run_one(python: str, setup: str, sink_url: str, plan: dict, extra_env: Optional[dict] = None) -> dict:
    """Instructions per call of each workload in one configuration."""
    with tempfile.TemporaryDirectory(prefix="callgrind-") as folder:
        out = Path(folder) / "cg.out"
        argv = ["valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=functools_reduce",
                "--dump-after=functools_reduce", f"--callgrind-out-file={out}",
                python, str(Path(__file__).resolve()), "--worker", "--setup", setup, "--sink", sink_url,
                "--plan", ",".join(f"{k}:{v}" for k, v in plan.items())]
        # A fixed hash seed: with a random one, dict and set layouts (and so the instructions run)
        # differ by ~1% between processes; with it, two runs agree to a few hundred instructions.
        # Exporters wait between regions, not during them: under callgrind a second of wall clock
        # is a few calls, so an exporter's timer would otherwise fire inside a region at a moment
        # that varies from run to run, and the garbage its thread makes would change when the
        # app thread's collections run (and what they cost). Each region starts after a flush.
        env = worker_env(POSTHOG_HOST=sink_url, PYTHONHASHSEED="0", POSTHOG_EXPORT_INTERVAL="3600",
                         OTEL_BSP_SCHEDULE_DELAY="3600000", **(extra_env or {}))
        done = subprocess.run(argv, env=env, capture_output=True,
                              text=True, timeout=3600, stdin=subprocess.DEVNULL, cwd=str(REPO))
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"callgrind worker {setup} failed ({done.returncode}): {done.stderr[-2000:]}")
        regions = json.loads(lines[-1])["regions"]
        dumps = sorted(Path(folder).glob("cg.out.*"), key=lambda p: int(p.suffix[1:]))
        # Anything else that ran functools.reduce (during imports) dumped first: regions are last.
        dumps = dumps[len(dumps) - len(regions):]
        return {name: _count(dump) / times for (name, times), dump in zip(regions, dumps)}


def _per_chunk(counts: dict, long_name: str) -> Optional[float]:
    long, short = counts.get(long_name), counts.get(long_name + "_short")
    if long is None or short is None:
        return None
    return (long - short) / (STREAM_CHUNKS - SHORT_STREAM_CHUNKS)


def measure(sink_url: str, quick: bool, peer_python: Optional[str], peer_names: list,
            say: Callable[[str], None] = print) -> dict:
    if shutil.which("valgrind") is None:
        return {"skipped": "valgrind is not installed (Debian: apt-get install valgrind)"}
    from concurrent.futures import ThreadPoolExecutor

    plan = QUICK_PLAN if quick else FULL_PLAN
    configs = [("main/baseline", MAIN_PYTHON, "baseline", None), ("main/ours", MAIN_PYTHON, "ours", None),
               ("main/ours, POSTHOG_AI_STREAM_USAGE=false", MAIN_PYTHON, "ours", {"POSTHOG_AI_STREAM_USAGE": "false"})]
    if peer_python and not quick:
        configs.append(("peers/baseline", peer_python, "baseline", None))
        configs += [(f"peers/{name}", peer_python, name, None) for name in peer_names]
    say(f"  instruction counts (callgrind), {len(configs)} configurations, two at a time")

    def one(config: tuple) -> tuple:
        label, python, setup, env = config
        try:
            return label, run_one(python, setup, sink_url, plan, env)
        except Exception as exc:
            say(f"    {label}: {str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else exc!r}")
            return label, {"failed": str(exc)[-500:]}

    # Instruction counts do not depend on what else runs: both cores are used.
    with ThreadPoolExecutor(2) as pool:
        counts = dict(pool.map(one, configs))
    result: dict = {"plan": plan, "per_call": counts, "added": {}}
    for label, values in counts.items():
        base = counts.get("peers/baseline" if label.startswith("peers/") else "main/baseline", {})
        if label.endswith("/baseline") or "failed" in values or "failed" in base:
            continue
        added = {name: values[name] - base[name] for name in values if name in base}
        for long_name in ("stream_sync", "stream_async"):
            mine, sdk = _per_chunk(values, long_name), _per_chunk(base, long_name)
            if mine is not None and sdk is not None:
                added[f"{long_name}_per_chunk"] = mine - sdk
        result["added"][label] = added
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--setup", required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--plan", required=True, help="workload:calls,...")
    options = parser.parse_args()
    plan = {name: int(times) for name, times in (item.split(":") for item in options.plan.split(","))}
    worker(options.setup, options.sink, plan)


if __name__ == "__main__":
    main()
