"""The application thread's added cost per chat call, fresh and in a long-running process
(callgrind: instructions and simulated cache misses, which load cannot move).

    python benchmarks/long_running.py [--source SRC] [--calls 60]

Why: the app's thread notes every call's span id in bounded memories of recent ids
(``recent.RecentKeys``). They fill after some thousands of calls and stay full for the rest of
a service's life, a state the other benchmarks' processes (a few thousand calls at most) never
reach. A process under callgrind makes ~3 calls a second, so the state is made directly: the
memories are filled with 15,000 random span ids, as 15,000 earlier calls would have left them.

One process of ours, pinned to one core, collections off, export thread asleep (a long
interval; fewer than 100 queued calls never wake it): runs of ``--calls`` chat calls alternate
between our instrumentation suppressed and on (3 pairs), fresh, then again after the filling.
Printed per call, on minus suppressed (the median of the 3 pairs' differences): instructions,
first-level instruction-cache misses, data-read misses. A data-read miss costs ~10 to 40
cycles (next levels of cache), an instruction ~0.3 to 1 on this code.
``--source SRC``: another copy of our package, measured instead (through ``PYTHONPATH``).
Needs valgrind.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import common

PAIRS = 3
EARLIER_CALLS = 15_000
EVENTS = ("Ir", "I1mr", "D1mr")


def worker(calls: int) -> None:
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    import setups
    import workload

    common.pin_to_cpu(common.WORKER_CPU)
    setup = setups.create("ours", os.environ["POSTHOG_HOST"])
    call = workload.make_call("chat", setup.clients)
    for _ in range(30):
        call()
    setup.flush()

    def run() -> None:
        for _ in range(calls):
            call()

    def counted() -> None:  # functools.reduce: the region callgrind counts in
        functools.reduce(lambda _, item: run(), [0], None)

    def pairs() -> None:
        for _ in range(PAIRS):
            gc.collect()
            gc.disable()
            with suppress_instrumentation():
                counted()
            counted()
            gc.enable()
            setup.flush()

    pairs()
    _fill_recent_span_ids(setups.posthog_processor(setup.provider))
    pairs()


def _fill_recent_span_ids(processor) -> None:
    """The memories of recent span ids as EARLIER_CALLS direct calls leave them: each call's id
    among the provider calls and among the AI spans (``note_provider_call``, ``on_direct_start``)."""
    from posthog_autoinstrument.genai import one_generation

    for _ in range(EARLIER_CALLS):
        one_generation.note_provider_call(random.getrandbits(64))
        processor.on_direct_start(random.getrandbits(64))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", type=Path, help="a src folder of another version of ours")
    parser.add_argument("--calls", type=int, default=60, help="chat calls per counted run")
    options = parser.parse_args()
    with common.sink() as url, tempfile.TemporaryDirectory(prefix="callgrind-") as folder:
        extra = {"PYTHONPATH": str(options.source.resolve())} if options.source else {}
        env = common.worker_env(
            POSTHOG_HOST=url,
            POSTHOG_API_KEY=common.API_KEY,
            POSTHOG_EXPORT_INTERVAL="3600",
            PYTHONHASHSEED="0",
            **extra,
        )
        out = Path(folder) / "long_running.out"
        argv = [
            *common.callgrind_argv(out, cache_misses=True),
            common.MAIN_PYTHON,
            str(Path(__file__).resolve()),
            "--worker",
            str(options.calls),
        ]
        done = subprocess.run(argv, env=env, cwd=common.REPO, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"callgrind worker failed ({done.returncode}): {done.stderr[-2000:]}")
        counts = [common.events_in(dump) for dump in common.callgrind_dumps(out)]
    added = [{e: (on[e] - off[e]) / options.calls for e in EVENTS} for off, on in zip(counts[::2], counts[1::2])]
    result = {
        state: {e: round(statistics.median(pair[e] for pair in pairs)) for e in EVENTS}
        for state, pairs in (("fresh", added[:PAIRS]), ("long_running", added[PAIRS:]))
    }
    print(json.dumps({"added_per_call": result, "pairs": added, "calls_per_run": options.calls}, indent=1))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(int(sys.argv[2]))
    else:
        main()
