"""Shared plumbing: paths, statistics, subprocess workers, the loopback stand-in, machine facts.

Standard library only: this module is imported by the harness (main venv) and by workers
running in the peers' venv.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Iterable, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
ENVS = HERE / ".envs"
MAIN_PYTHON = sys.executable

# Workers run on one core and the loopback stand-in on another, so the stand-in's work
# never competes with the process being measured (and timings do not hop between cores).
WORKER_CPU = 1
SINK_CPU = 0

API_KEY = "phc_benchmark_project_token"


def median(values: Iterable[float]) -> Optional[float]:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def pin_to_cpu(cpu: int) -> None:
    """Pin the calling process to one CPU when the machine has more than one.

    A quick run sets ``BENCHMARK_NO_PIN=1``: its processes run side by side and time nothing.
    """
    if os.environ.get("BENCHMARK_NO_PIN") == "1":
        return
    try:
        if os.cpu_count() and os.cpu_count() > 1 and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {cpu % os.cpu_count()})
    except OSError:
        pass


def run_json(argv: list, env: Optional[dict] = None, timeout: float = 1800) -> dict:
    """Run a worker that prints one JSON object as its last stdout line; return it."""
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=str(REPO)
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"worker failed ({done.returncode}): {' '.join(map(str, argv))}\n{done.stderr[-3000:]}{done.stdout[-1000:]}"
        )
    return json.loads(lines[-1])


def worker_env(**extra: str) -> dict:
    """The harness's environment minus anything that configures PostHog or OpenTelemetry.

    ``PYTHONDONTWRITEBYTECODE`` goes too: with it, every start-up compiles each module whose
    ``.pyc`` is missing or stale from source, which apps in production do not pay.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            (
                "POSTHOG_",
                "OTEL_",
                "_POSTHOG",
                "OPENAI_",
                "ANTHROPIC_",
                "TRACELOOP_",
                "OPENINFERENCE_",
                "PYTHONPATH",
                "PYTHONPROFILEIMPORTTIME",
                "PYTHONDONTWRITEBYTECODE",
            )
        )
    }
    env["PATH"] = f"{Path(MAIN_PYTHON).parent}{os.pathsep}{env.get('PATH', '')}"
    # No OpenTelemetry export of the user's own, also where opentelemetry-distro is installed
    # (the test extra installs it), whose defaults would otherwise export to localhost.
    env.update(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    env.update(extra)
    return env


def free_port() -> int:
    """A loopback port nothing listens on (the 'dead endpoint')."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def sink():
    """The loopback stand-in for PostHog / an OTLP collector, in its own process and core."""
    process = subprocess.Popen(
        [MAIN_PYTHON, str(HERE / "sink.py")], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    )
    try:
        line = process.stdout.readline()
        if not line.strip():
            raise RuntimeError("the loopback stand-in did not start")
        yield f"http://127.0.0.1:{int(line)}"
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()


def sink_stats(url: str) -> dict:
    from urllib.request import urlopen

    with urlopen(f"{url}/stats", timeout=5) as response:
        return json.loads(response.read())


def versions(names: Iterable[str]) -> dict:
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def machine_info() -> dict:
    cpu_model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def rss_kib() -> dict:
    """Current and peak resident memory of this process (Linux /proc)."""
    values = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                values[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        pass
    return {"rss_kib": values.get("VmRSS"), "peak_rss_kib": values.get("VmHWM")}


def emit(result: dict) -> None:
    """Workers end by printing their result as one JSON line."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def callgrind_argv(out: Path, cache_misses: bool = False) -> list:
    """valgrind's arguments for instruction counts of the regions a worker runs inside
    ``functools.reduce`` (counting is off elsewhere), one profile a region: ``out``.1, .2, ...
    ``cache_misses``: simulate the caches as well (``events_in`` reads the misses), with address
    randomisation off where ``setarch`` can do it, so that runs place memory alike."""
    prefix = ["setarch", "-R"] if cache_misses and shutil.which("setarch") else []
    return [
        *prefix,
        "valgrind",
        "--tool=callgrind",
        *(["--cache-sim=yes"] if cache_misses else []),
        "--collect-atstart=no",
        "--toggle-collect=functools_reduce",
        "--dump-after=functools_reduce",
        f"--callgrind-out-file={out}",
    ]


def callgrind_dumps(out: Path) -> list:
    """The profiles ``callgrind_argv(out)`` wrote, in the order of their regions."""
    return sorted(out.parent.glob(out.name + ".*"), key=lambda p: int(p.suffix[1:]))


def events_in(profile: Path) -> dict:
    """What one callgrind profile counted, by event: ``Ir`` (instructions) and, with the cache
    simulation, ``I1mr`` / ``D1mr`` / ``D1mw`` (first-level instruction, data read and data
    write misses) and the last-level ones."""
    names: list = []
    for line in profile.read_text(errors="replace").splitlines():
        if line.startswith("events:"):
            names = line.split()[1:]
        elif line.startswith("summary:"):
            return dict(zip(names, map(int, line.split()[1:])))
    return {}


def instructions_in(profile: Path) -> int:
    """The instructions one callgrind profile counted."""
    return events_in(profile).get("Ir", 0)
