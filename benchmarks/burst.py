"""A burst, measured from outside as a new user would: 1,500 OpenAI chat calls back to back in
one process over an in-process transport, then a flush; the CPU of all the process's threads
(the export included); nothing dropped.

    python benchmarks/burst.py [--calls 1500] [--rounds 27] [--skip-peers] [--warm-up 20]

Each round runs the SDK alone, ours and the official OTel GenAI instrumentation (SDK
``BatchSpanProcessor`` in batches of 100 spans, PostHog's limit, + OTLP/HTTP exporter, gzip;
when the peers' venv is built), each in its own process, in an order rotated per round. A
process makes 20 calls and flushes (the SDK's and our lazy imports and first requests), then
times the burst and its flush on the process's CPU clock. The added cost per call is the median
over rounds of (setup - the same round's baseline), each environment against its own baseline.
Every process counts what its exporter took: all calls, none dropped, or the result says so.

``--warm-up N``: the calls a process makes before the burst (default 20). A long-running
service has made thousands: its bounded memories of recent span ids are full from then on
(``recent.RecentKeys``), which the default burst never reaches; ``--warm-up 5000`` measures
that steady state (flushing every 500 calls on the way).

Unlike the harness's batches of 200 calls, a backlog builds up here: the app thread makes calls
faster than one exporter thread ships them, so what each queued call keeps alive, and the
collections that it costs, are in the figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import sys
import time
from typing import Callable, Optional

import common

WARM_UP_CALLS = 20
# Rounds: the per-round difference to the baseline spreads over ±25 µs (process layout), so the
# median of 9 rounds moved the ratio by ±0.04 between invocations; 27 (~3 minutes) give the
# 90% interval printed beside it a width of about ±0.03.
ROUNDS = 27


def worker(setup_name: str, calls: int, warm_up: int = WARM_UP_CALLS) -> None:
    import setups
    import workload

    common.pin_to_cpu(common.WORKER_CPU)
    setup = setups.create(setup_name, os.environ.get("POSTHOG_HOST"))
    counted = _span_counter(setup)
    call = workload.make_call("chat", setup.clients)
    for index in range(warm_up):
        call()
        if index % 500 == 499:
            setup.flush()
    setup.flush()
    before = counted() if counted is not None else 0
    collections = _Collections()
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        call()
    setup.flush()
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
    collections.stop()
    result = {
        "cpu_us_per_call": cpu / calls * 1e6,
        "wall_us_per_call": wall / calls * 1e6,
        "collections": collections.counts,
        "collection_us_per_call": collections.seconds / calls * 1e6,
    }
    if counted is not None:
        result["exported_per_call"] = (counted() - before) / calls
    if setup.name == "ours":
        processor = setups.posthog_processor(setup.provider)
        result["dropped"] = processor.dropped
    common.emit(result)


def retained_worker(calls: int = 50) -> None:
    """Objects the garbage collector tracks that each queued call keeps alive: ``calls`` chat
    calls (fewer than a request's 100, so the export thread, with a long interval, sleeps) and
    full collections before and after. Load cannot move this figure."""
    import setups
    import workload

    setup = setups.create("ours", os.environ["POSTHOG_HOST"])
    processor = setups.posthog_processor(setup.provider)
    call = workload.make_call("chat", setup.clients)
    for _ in range(WARM_UP_CALLS):
        call()
    setup.flush()
    gc.collect()
    before = len(gc.get_objects())
    for _ in range(calls):
        call()
    gc.collect()
    queued = len(processor._queue)
    common.emit({"queued": queued, "tracked_objects_per_queued_call": (len(gc.get_objects()) - before) / queued})


def retained(url: str, other_source: Optional[str] = None) -> dict:
    """``retained_worker`` for ours (and ``ours@other``)."""
    found = {}
    for name, extra in (("ours", {}), ("ours@other", {"PYTHONPATH": other_source} if other_source else None)):
        if extra is None:
            continue
        env = common.worker_env(
            POSTHOG_HOST=url, POSTHOG_API_KEY=common.API_KEY, POSTHOG_EXPORT_INTERVAL="3600", **extra
        )
        found[name] = common.run_json([common.MAIN_PYTHON, os.path.abspath(__file__), "--retained"], env=env)
    return found


class _Collections:
    """Garbage collections during the burst, by generation, and the wall time they took (all threads)."""

    def __init__(self):
        self.counts = [0, 0, 0]
        self.seconds = 0.0
        self._began = 0.0
        gc.callbacks.append(self._note)

    def _note(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._began
            self.counts[info["generation"]] += 1

    def stop(self) -> None:
        gc.callbacks.remove(self._note)


def _span_counter(setup) -> Optional[Callable[[], int]]:
    """Spans delivered so far: our processor's count, or a peer exporter's successful exports."""
    if setup.name == "baseline":
        return None
    if setup.name == "ours":
        from setups import posthog_processor

        processor = posthog_processor(setup.provider)
        return lambda: processor.exported
    exported = [0]
    for processor in getattr(setup.provider._active_span_processor, "_span_processors", ()):
        exporter = getattr(processor, "span_exporter", None) or getattr(
            getattr(processor, "_batch_processor", None), "_exporter", None
        )
        if exporter is None:
            continue
        export = exporter.export

        def counting(spans, export=export):
            outcome = export(spans)
            if getattr(outcome, "name", "") == "SUCCESS":
                exported[0] += len(spans)
            return outcome

        exporter.export = counting
    return lambda: exported[0]


def measure(
    url: str,
    calls: int,
    rounds: int,
    peer_python: Optional[str],
    say: Callable[[str], None] = print,
    other_source: Optional[str] = None,
    warm_up: int = WARM_UP_CALLS,
) -> dict:
    """``other_source``: a ``src`` folder of another version of ours, measured beside this one
    (the setup ``ours@other``, imported through ``PYTHONPATH``)."""
    configs = [("main", common.MAIN_PYTHON, "baseline"), ("main", common.MAIN_PYTHON, "ours")]
    if other_source:
        configs.append(("main", common.MAIN_PYTHON, "ours@other"))
    if peer_python:
        configs += [("peers", peer_python, "baseline"), ("peers", peer_python, "otel_genai")]
    runs: dict = {(env, name): [] for env, _, name in configs}
    for index in range(rounds):
        order = configs[index % len(configs) :] + configs[: index % len(configs)]
        for env_name, python, name in order:
            argv = [python, os.path.abspath(__file__), "--worker", name.split("@")[0], str(calls), str(warm_up)]
            extra = {"PYTHONPATH": other_source} if name == "ours@other" else {}
            try:
                result = common.run_json(
                    argv, env=common.worker_env(POSTHOG_HOST=url, POSTHOG_API_KEY=common.API_KEY, **extra)
                )
            except Exception as exc:
                say(f"    burst: {env_name}/{name} failed: {str(exc).strip().splitlines()[-1][:200]}")
                continue
            runs[(env_name, name)].append(result)
        say(
            f"  burst round {index + 1}/{rounds}: "
            + ", ".join(f"{e}/{n} {runs[(e, n)][-1]['cpu_us_per_call']:.0f} µs" for e, _, n in configs if runs[(e, n)])
        )
    added, complete = {}, {}
    for (env_name, name), results in runs.items():
        baseline = runs.get((env_name, "baseline"), [])
        if name == "baseline" or not results or len(baseline) != len(results):
            continue
        added[name] = round(
            statistics.median(r["cpu_us_per_call"] - b["cpu_us_per_call"] for r, b in zip(results, baseline)), 1
        )
        complete[name] = {
            "exported_per_call": [round(r.get("exported_per_call", 0), 4) for r in results],
            "dropped": [r.get("dropped", 0) for r in results],
        }
    collected = {
        f"{e}/{n}": {
            "collections_by_generation": [statistics.median(r["collections"][g] for r in results) for g in range(3)],
            "collection_us_per_call": round(statistics.median(r["collection_us_per_call"] for r in results), 1),
        }
        for (e, n), results in runs.items()
        if results
    }
    peers = {k: v for k, v in added.items() if not k.startswith("ours") and v > 0}
    best = min(peers.items(), key=lambda kv: kv[1]) if peers else None
    interval = None
    if best and "ours" in added:
        interval = ratio_interval(
            _added_per_round(runs[("main", "ours")], runs[("main", "baseline")]),
            _added_per_round(runs[("peers", best[0])], runs[("peers", "baseline")]),
        )
    return {
        "calls": calls,
        "warm_up_calls": warm_up,
        "rounds": rounds,
        "added_cpu_us_per_call": added,
        "vs_best_peer": round(added["ours"] / best[1], 3) if best and "ours" in added else None,
        "best_peer": best[0] if best else None,
        "vs_best_peer_90pct_interval": interval,
        "delivered": complete,
        "garbage_collection": collected,
        "runs": {f"{e}/{n}": [round(r["cpu_us_per_call"], 1) for r in results] for (e, n), results in runs.items()},
    }


def _added_per_round(results: list, baseline: list) -> list:
    return [r["cpu_us_per_call"] - b["cpu_us_per_call"] for r, b in zip(results, baseline)]


def ratio_interval(ours: list, peer: list, draws: int = 4000) -> Optional[list]:
    """The 5th and 95th percentiles of the ratio of medians over rounds drawn again with
    replacement (a bootstrap; one seed, so the same runs always give the same interval). Rounds
    are drawn whole, ours and the peer together: a round's processes ran side by side."""
    rounds = min(len(ours), len(peer))
    if rounds < 5:
        return None
    draw = random.Random(0).randrange
    ratios = []
    for _ in range(draws):
        picked = [draw(rounds) for _ in range(rounds)]
        peer_median = statistics.median(peer[i] for i in picked)
        if peer_median > 0:
            ratios.append(statistics.median(ours[i] for i in picked) / peer_median)
    ratios.sort()
    return [round(ratios[len(ratios) // 20], 3), round(ratios[len(ratios) * 19 // 20], 3)] if ratios else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--other-source", help="a src folder of another version of ours, measured beside this one")
    parser.add_argument("--warm-up", type=int, default=WARM_UP_CALLS, help="calls made before the burst")
    options = parser.parse_args()
    peer_python = None
    if not options.skip_peers:
        import peers

        if peers.ensure(lambda m: print(m, file=sys.stderr, flush=True)) is not None:
            peer_python = str(peers.python())
    with common.sink() as url:
        result = measure(
            url,
            options.calls,
            options.rounds,
            peer_python,
            lambda m: print(m, file=sys.stderr, flush=True),
            options.other_source,
            options.warm_up,
        )
        result["retained"] = retained(url, options.other_source)
    result["machine"] = common.machine_info()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    os.chdir(common.REPO)
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else WARM_UP_CALLS)
    elif sys.argv[1:2] == ["--retained"]:
        retained_worker()
    else:
        main()
