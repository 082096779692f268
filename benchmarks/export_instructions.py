"""Instructions per span of each export-thread stage (callgrind): what load cannot move.

    python benchmarks/export_instructions.py [--source SRC]

100 OpenAI chat calls recorded by our adapter as in production (direct, their translation left
for the export thread: ``export.make_calls``) are exported twice, stage by stage: building the
spans (the deferred translation), the PostHog copies, the OTLP request, gzip. Each stage runs
inside ``functools.reduce``, the one function callgrind counts in (``--toggle-collect``), with
``PYTHONHASHSEED=0`` and collections off. Prints the instructions per span of each stage (the
two rounds agree within a few hundred). ``--source SRC``: another copy of our package, measured
instead (through ``PYTHONPATH``). Needs valgrind.
"""

from __future__ import annotations

import argparse
import functools
import gc
import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import MAIN_PYTHON, REPO, callgrind_argv, callgrind_dumps, instructions_in

STAGES = ("build_span", "posthog_copy", "otlp_encode", "gzip")
ROUNDS = 2


def worker() -> None:
    import export

    from posthog_autoinstrument import config
    from posthog_autoinstrument.export.dialect import for_posthog
    from posthog_autoinstrument.export.exporter import GZIP_LEVEL, split_into_requests

    config.reset()
    settings = config.settings()
    calls = export.make_calls(100)

    def counted(function, argument, count: bool):
        # functools.reduce over one item: the region callgrind counts, when asked to.
        return functools.reduce(lambda _, item: function(item), [argument], None) if count else function(argument)

    def stages(items, count: bool) -> None:
        spans = counted(lambda batch: [call.build_span() for call, _ in batch], items, count)
        copies = counted(lambda built: [for_posthog(span, settings) for span in built], spans, count)
        bodies = counted(split_into_requests, copies, count)
        counted(lambda requests: [gzip.compress(body, compresslevel=GZIP_LEVEL) for _, body in requests], bodies, count)

    for _ in range(5):
        stages(export.fresh(calls, 100), count=False)
    batches = [export.fresh(calls, 100) for _ in range(ROUNDS)]
    gc.collect()
    gc.disable()
    for batch in batches:
        stages(batch, count=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", type=Path, help="a src folder of another version of ours")
    options = parser.parse_args()
    env = dict(os.environ, PYTHONHASHSEED="0", POSTHOG_HOST="http://127.0.0.1:9", POSTHOG_API_KEY="phc_benchmark")
    if options.source:
        env["PYTHONPATH"] = str(options.source.resolve())
    with tempfile.TemporaryDirectory(prefix="callgrind-") as folder:
        out = Path(folder) / "stages.out"
        argv = [*callgrind_argv(out), MAIN_PYTHON, str(Path(__file__).resolve()), "--worker"]
        done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"callgrind worker failed ({done.returncode}): {done.stderr[-2000:]}")
        totals = [instructions_in(dump) / 100 for dump in callgrind_dumps(out)]
    rounds = [dict(zip(STAGES, totals[i : i + len(STAGES)])) for i in range(0, len(totals), len(STAGES))]
    result = {stage: round(min(r[stage] for r in rounds)) for stage in STAGES}
    result["all"] = sum(result.values())
    print(json.dumps({"instructions_per_span": result, "rounds": rounds}, indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if sys.argv[1:2] == ["--worker"]:
        worker()
    else:
        main()
