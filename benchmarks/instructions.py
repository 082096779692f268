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
processes. Per-call counts then agree within a few percent between runs. Per-chunk counts do not:
the same SDK work costs several thousand instructions more or less per chunk from one process to
another, with the memory layout (the same code's sync figure without the usage chunk: -1.1 k from
this worker, +3.7 k from a slightly different one; two processes of one configuration agree to
the instruction). So our per-chunk cost is measured within one process (``_within_streams``):
streams with our instrumentation on and suppressed alternate, in ABBA order; the figure is the
mean of the two halves, which came out within 0.7 k of each other. The peers' per-chunk figures, tens of
thousands of instructions, are measured across processes; ours across processes is kept in the
JSON beside it (``*_per_chunk_across_processes``).
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

from common import MAIN_PYTHON, REPO, callgrind_argv, callgrind_dumps, emit, instructions_in, worker_env
from workload import SHORT_STREAM_CHUNKS, STREAM_CHUNKS

FULL_PLAN = {
    "chat": 20,
    "embeddings": 20,
    "stream_sync_short": 20,
    "stream_sync": 4,
    "stream_async_short": 20,
    "stream_async": 4,
}
QUICK_PLAN = {"chat": 2, "stream_sync_short": 1, "stream_sync": 1}
# Our per-chunk cost, measured within one process: streams per region, (short, long).
FULL_WITHIN = {"stream_sync": (10, 2), "stream_async": (10, 2)}
QUICK_WITHIN = {"stream_sync": (1, 1)}
# Regions in ABBA order, (instrumented, long stream), so that a drift in the process's state
# during the measurement cancels out of the mean of the two halves.
_ABBA = (
    (True, False),
    (True, True),
    (False, False),
    (False, True),
    (False, True),
    (False, False),
    (True, True),
    (True, False),
)


def region(run: Callable[[], object], times: int) -> None:
    """``run`` ``times`` times inside functools.reduce, the one function callgrind counts in."""
    functools.reduce(lambda carry, _: (run(), carry)[1], range(times), None)


def counted(setup, run: Callable[[], object], times: int, name: str, done: list) -> None:
    """One counted region, after a flush and a full collection, with collections off inside it
    (see the module's docstring); noted in ``done`` for the dump of the same rank."""
    setup.flush()
    gc.collect()
    gc.disable()
    region(run, times)
    gc.enable()
    done.append([name, times])


def worker(setup_name: str, sink_url: str, plan: dict, within: dict, sdk_usage: Optional[tuple] = None) -> None:
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
        counted(setup, lambda: workload.run_once(call, asynchronous), times, name, done)  # noqa: B023 (run now)
    if within:  # last: the regions above are compared across processes, with nothing before them
        _within_streams(setup, within, done)
    if sdk_usage:
        _sdk_usage_streams(setup, sdk_usage, done)
    emit({"regions": done})
    sys.stdout.flush()
    os._exit(0)  # no exit-time work after the last region (it would be dumped too)


def _within_streams(setup, within: dict, done: list) -> None:
    """Streams with instrumentation on and suppressed (OpenTelemetry's ``suppress_instrumentation``:
    our wrappers step aside, the SDK runs alone) in the same process, for our per-chunk cost.

    Across processes, the same SDK work costs up to several thousand instructions more or less per
    chunk with the memory layout (what is where in the heap and in the type cache), which drowns a
    cost of a few thousand. Within one process, on and off regions alternate over the same heap.
    Each configuration's canned answers are made before counting (suppressed, we do not ask for
    the usage chunk, so the request differs)."""
    import contextlib

    import workload
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    def mode(instrumented: bool):
        return contextlib.nullcontext() if instrumented else suppress_instrumentation()

    for kind, times in within.items():
        by_length = {
            long: workload.make_call(kind + ("" if long else "_short"), setup.clients) for long in (True, False)
        }
        calls = {(instrumented, long): by_length[long] for instrumented in (True, False) for long in (True, False)}
        _abba_regions(setup, "within", kind, calls, mode, times, done)


def _sdk_usage_streams(setup, times: tuple, done: list) -> None:
    """The SDK alone, in one process: streams whose app asks for the usage chunk (``on``) and
    streams whose app does not (``off``), in ABBA order. What asking costs the SDK per chunk is
    the share of our figure "with the usage chunk" that is not our code: the API then puts
    ``"usage": null`` in every chunk, which the SDK parses into each chunk's model."""
    import contextlib

    import workload

    calls = {
        (asks, long): workload.make_call(
            ("stream_sync_app_usage" if asks else "stream_sync") + ("" if long else "_short"), setup.clients
        )
        for asks in (True, False)
        for long in (True, False)
    }
    _abba_regions(setup, "sdk_usage", "stream_sync", calls, lambda _: contextlib.nullcontext(), times, done)


def _abba_regions(setup, prefix: str, kind: str, calls: dict, mode, times: tuple, done: list) -> None:
    """Counted regions of ``calls[(on, long)]``, each inside ``mode(on)``, in ABBA order (after a
    warm-up of each), named ``prefix:kind:long|short:on|off:occurrence`` for ``_within_per_chunk``."""
    import workload

    asynchronous = workload.is_async(kind)
    for (on, _long), call in calls.items():
        with mode(on):
            for _ in range(3):
                workload.run_once(call, asynchronous)
    short_times, long_times = times
    seen: dict = {}
    for on, long in _ABBA:
        name = f"{prefix}:{kind}:{'long' if long else 'short'}:{'on' if on else 'off'}"
        occurrence = seen[name] = seen.get(name, -1) + 1
        with mode(on):
            counted(
                setup,
                lambda call=calls[(on, long)]: workload.run_once(call, asynchronous),
                long_times if long else short_times,
                f"{name}:{occurrence}",
                done,
            )


def _within_per_chunk(counts: dict, kind: str, prefix: str = "within") -> Optional[float]:
    """Our cost per chunk from ``_within_streams``: (long - short stream) instrumented minus the
    same suppressed, per added chunk; the mean of the two ABBA halves. (With ``prefix``
    "sdk_usage", the same from ``_sdk_usage_streams``: usage asked for minus not.)"""
    halves = []
    for occurrence in (0, 1):

        def marginal(state: str) -> float:  # (called within this iteration)
            return (
                counts[f"{prefix}:{kind}:long:{state}:{occurrence}"]  # noqa: B023
                - counts[f"{prefix}:{kind}:short:{state}:{occurrence}"]  # noqa: B023
            )

        try:
            halves.append((marginal("on") - marginal("off")) / (STREAM_CHUNKS - SHORT_STREAM_CHUNKS))
        except KeyError:
            return None
    return sum(halves) / len(halves)


def run_one(
    python: str,
    setup: str,
    sink_url: str,
    plan: dict,
    extra_env: Optional[dict] = None,
    within: Optional[dict] = None,
    sdk_usage: Optional[tuple] = None,
) -> dict:
    """Instructions per call of each workload in one configuration (and of each region of
    ``_within_streams``, given ``within``)."""
    with tempfile.TemporaryDirectory(prefix="callgrind-") as folder:
        out = Path(folder) / "cg.out"
        argv = [
            *callgrind_argv(out),
            python,
            str(Path(__file__).resolve()),
            "--worker",
            "--setup",
            setup,
            "--sink",
            sink_url,
            "--plan",
            ",".join(f"{k}:{v}" for k, v in plan.items()),
        ]
        if within:
            argv += ["--within", ",".join(f"{k}:{short}:{long}" for k, (short, long) in within.items())]
        if sdk_usage:
            argv += ["--sdk-usage", "{}:{}".format(*sdk_usage)]
        # A fixed hash seed: with a random one, dict and set layouts (and so the instructions run)
        # differ by ~1% between processes; with it, two runs agree to a few hundred instructions.
        # Exporters wait between regions, not during them: under callgrind a second of wall clock
        # is a few calls, so an exporter's timer would otherwise fire inside a region at a moment
        # that varies from run to run, and the garbage its thread makes would change when the
        # app thread's collections run (and what they cost). Each region starts after a flush.
        env = worker_env(
            POSTHOG_HOST=sink_url,
            PYTHONHASHSEED="0",
            POSTHOG_EXPORT_INTERVAL="3600",
            OTEL_BSP_SCHEDULE_DELAY="3600000",
            **(extra_env or {}),
        )
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=3600, stdin=subprocess.DEVNULL, cwd=str(REPO)
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"callgrind worker {setup} failed ({done.returncode}): {done.stderr[-2000:]}")
        regions = json.loads(lines[-1])["regions"]
        dumps = callgrind_dumps(out)
        # Anything else that ran functools.reduce (during imports) dumped first: regions are last.
        dumps = dumps[len(dumps) - len(regions) :]
        return {name: instructions_in(dump) / times for (name, times), dump in zip(regions, dumps)}


def _per_chunk(counts: dict, long_name: str) -> Optional[float]:
    long, short = counts.get(long_name), counts.get(long_name + "_short")
    if long is None or short is None:
        return None
    return (long - short) / (STREAM_CHUNKS - SHORT_STREAM_CHUNKS)


def measure(
    sink_url: str, quick: bool, peer_python: Optional[str], peer_names: list, say: Callable[[str], None] = print
) -> dict:
    if shutil.which("valgrind") is None:
        return {"skipped": "valgrind is not installed (Debian: apt-get install valgrind)"}
    from concurrent.futures import ThreadPoolExecutor

    plan = QUICK_PLAN if quick else FULL_PLAN
    within = QUICK_WITHIN if quick else FULL_WITHIN
    configs = [
        ("main/baseline", MAIN_PYTHON, "baseline", None),
        ("main/ours", MAIN_PYTHON, "ours", None),
        ("main/ours, POSTHOG_AI_STREAM_USAGE=false", MAIN_PYTHON, "ours", {"POSTHOG_AI_STREAM_USAGE": "false"}),
    ]
    if peer_python and not quick:
        configs.append(("peers/baseline", peer_python, "baseline", None))
        configs += [(f"peers/{name}", peer_python, name, None) for name in peer_names]
    say(f"  instruction counts (callgrind), {len(configs)} configurations, two at a time")

    def one(config: tuple) -> tuple:
        label, python, setup, env = config
        try:
            return label, run_one(
                python,
                setup,
                sink_url,
                plan,
                env,
                within if label.startswith("main/ours") else None,
                within["stream_sync"] if label == "main/baseline" else None,
            )
        except Exception as exc:
            say(f"    {label}: {str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else exc!r}")
            return label, {"failed": str(exc)[-500:]}

    # Instruction counts do not depend on what else runs: both cores are used.
    with ThreadPoolExecutor(2) as pool:
        counts = dict(pool.map(one, configs))
    result: dict = {"plan": plan, "within": within, "per_call": counts, "added": {}}
    for label, values in counts.items():
        base = counts.get("peers/baseline" if label.startswith("peers/") else "main/baseline", {})
        if label.endswith("/baseline") or "failed" in values or "failed" in base:
            continue
        added = {name: values[name] - base[name] for name in values if name in base}
        for long_name in ("stream_sync", "stream_async"):
            mine, sdk = _per_chunk(values, long_name), _per_chunk(base, long_name)
            if mine is not None and sdk is not None:
                added[f"{long_name}_per_chunk"] = mine - sdk
            inside = _within_per_chunk(values, long_name)
            if inside is not None:  # ours: the within-process figure is the one to read
                added[f"{long_name}_per_chunk_across_processes"] = added.pop(f"{long_name}_per_chunk", None)
                added[f"{long_name}_per_chunk"] = inside
        result["added"][label] = added
    sdk_share = _within_per_chunk(counts.get("main/baseline", {}), "stream_sync", "sdk_usage")
    if sdk_share is not None:
        result["added"]["main/baseline, the app asking for the usage chunk"] = {"stream_sync_per_chunk": sdk_share}
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--setup", required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--plan", required=True, help="workload:calls,...")
    parser.add_argument("--within", default="", help="stream workload:short calls:long calls,... (see _within_streams)")
    parser.add_argument("--sdk-usage", default="", help="short calls:long calls (see _sdk_usage_streams)")
    options = parser.parse_args()
    plan = {name: int(times) for name, times in (item.split(":") for item in options.plan.split(","))}
    within = {
        name: (int(short), int(long))
        for name, short, long in (item.split(":") for item in options.within.split(",") if item)
    }
    sdk_usage = tuple(int(n) for n in options.sdk_usage.split(":")) if options.sdk_usage else None
    worker(options.setup, options.sink, plan, within, sdk_usage)


if __name__ == "__main__":
    main()
