"""Start-up cost of ``posthog-instrument python ...`` against plain ``python ...``.

Every command runs ``reps`` times, interleaved, pinned to one core, timed from spawn to exit
on the wall clock and as the CPU time the process used (immune to other load on a shared
machine; the budget is judged on it); medians are reported. Also: which modules our start-up adds to ``sys.modules`` (it must not
import any LLM library the app does not), where its import time goes (``-X importtime``),
and a profile of the in-process start-up (OpenTelemetry initialisation, distro, configurator).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from common import MAIN_PYTHON, WORKER_CPU, median, pin_to_cpu, worker_env

LAUNCHER = str(Path(MAIN_PYTHON).parent / "posthog-instrument")
APP_IMPORTS = "import openai, anthropic"

# Importing any of these at start-up, for an app that does not, breaks "pay only for what is used".
LLM_MODULES = (
    "openai",
    "anthropic",
    "google.genai",
    "google.generativeai",
    "vertexai",
    "boto3",
    "botocore",
    "mistralai",
    "cohere",
    "groq",
    "together",
    "ollama",
    "litellm",
    "langchain",
    "langchain_core",
    "llama_index",
    "transformers",
    "httpx2",
    "tiktoken",
)

_PROFILE_SCRIPT = """
import cProfile, io, json, os, pstats, sys
import posthog_autoinstrument
from posthog_autoinstrument.startup import initialize
boot = os.path.join(os.path.dirname(posthog_autoinstrument.__file__), "bootstrap")
profiler = cProfile.Profile(__import__("time").thread_time)  # CPU clock: immune to other load
profiler.enable()
initialize(boot)
profiler.disable()
stats = pstats.Stats(profiler)
rows = []
for (filename, line, name), (cc, nc, tt, ct, callers) in stats.stats.items():
    if filename.startswith("<frozen") or name in ("<built-in method builtins.exec>", "<module>"):
        continue
    short = filename.split("site-packages/")[-1].split("/lib/python")[-1].split("/src/")[-1]
    rows.append({"function": f"{short}:{line}({name})", "cumulative_ms": ct * 1000,
                 "self_ms": tt * 1000, "calls": nc})
rows.sort(key=lambda r: -r["cumulative_ms"])
print(json.dumps(rows[:40]))
"""


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(argv: list, env: dict) -> tuple:
    """(wall ms, CPU ms) of one run; the launcher execs Python in place, so its CPU counts too."""
    cpu = _cpu_of_children()
    start = time.perf_counter()
    subprocess.run(
        argv,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        preexec_fn=lambda: pin_to_cpu(WORKER_CPU),
        check=True,
    )
    return (time.perf_counter() - start) * 1000, (_cpu_of_children() - cpu) * 1000


def _modules(argv_prefix: list, env: dict) -> set:
    code = "import sys, json; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([*argv_prefix, "-c", code], env=env, capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _importtime(env: dict) -> dict:
    """Where the instrumented ``python -c pass`` spends its import time."""
    done = subprocess.run(
        [LAUNCHER, "python", "-X", "importtime", "-c", "pass"], env=env, capture_output=True, text=True, check=True
    )
    by_package: dict = {}
    modules = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, cumulative_us, name = line.split(":", 1)[1].split("|", 2)
        self_us, cumulative_us = int(self_us), int(cumulative_us)
        name = name[1:]  # one space follows the bar; the rest is the nesting indent
        depth = (len(name) - len(name.lstrip())) // 2
        name = name.strip()
        top = name.split(".", 1)[0]
        if top == "google":
            top = ".".join(name.split(".")[:2])
        by_package[top] = by_package.get(top, 0) + self_us
        modules.append(
            {"module": name, "depth": depth, "self_ms": self_us / 1000, "cumulative_ms": cumulative_us / 1000}
        )
    total = next((m["cumulative_ms"] for m in modules if m["module"] == "sitecustomize"), None)
    top_packages = sorted(by_package.items(), key=lambda kv: -kv[1])[:10]
    base = next((m["depth"] for m in modules if m["module"] == "sitecustomize"), 0)
    direct = sorted((m for m in modules if base < m["depth"] <= base + 3), key=lambda m: -m["cumulative_ms"])[:12]
    return {
        "sitecustomize_total_ms": total,
        "self_ms_by_package": [{"package": k, "self_ms": v / 1000} for k, v in top_packages],
        "top_modules_by_cumulative": direct,
    }


def measure(sink_url: str, reps: int, say: Callable[[str], None] = print, warm: bool = True) -> dict:
    plain_env = worker_env()
    ours_env = worker_env(POSTHOG_API_KEY="phc_benchmark_project_token", POSTHOG_HOST=sink_url)
    bootstrap_env = dict(ours_env, PYTHONPATH=str(Path(_bootstrap_dir())))
    commands = {
        "python -c pass": ([MAIN_PYTHON, "-c", "pass"], plain_env),
        "posthog-instrument python -c pass": ([LAUNCHER, "python", "-c", "pass"], ours_env),
        "bootstrap only (PYTHONPATH, no launcher) python -c pass": ([MAIN_PYTHON, "-c", "pass"], bootstrap_env),
        f"python -c '{APP_IMPORTS}'": ([MAIN_PYTHON, "-c", APP_IMPORTS], plain_env),
        f"posthog-instrument python -c '{APP_IMPORTS}'": ([LAUNCHER, "python", "-c", APP_IMPORTS], ours_env),
    }
    for argv, env in commands.values() if warm else ():  # warm the page cache and .pyc files
        _timed(argv, env)
    times: dict = {name: [] for name in commands}
    for rep in range(reps):
        for name, (argv, env) in commands.items():
            times[name].append(_timed(argv, env))
    medians = {name: median(wall for wall, _ in values) for name, values in times.items()}
    cpu = {name: median(used for _, used in values) for name, values in times.items()}
    names = list(commands)

    def overhead(clock: dict) -> dict:
        return {
            "python -c pass": clock[names[1]] - clock[names[0]],
            "of which in-process bootstrap": clock[names[2]] - clock[names[0]],
            "app importing openai+anthropic": clock[names[4]] - clock[names[3]],
        }

    plain_modules = _modules([MAIN_PYTHON], plain_env)
    our_modules = _modules([LAUNCHER, "python"], ours_env)
    added = sorted(our_modules - plain_modules)
    llm_imported = sorted(m for m in our_modules if m in LLM_MODULES or m.split(".")[0] in LLM_MODULES)
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    added_top = sorted({m.split(".")[0] for m in added} - set(stdlib) - {"sitecustomize"})
    added_top = [m for m in added_top if not m.startswith("_")]

    try:
        profile = json.loads(
            subprocess.run(
                [MAIN_PYTHON, "-c", _PROFILE_SCRIPT], env=ours_env, capture_output=True, text=True, check=True
            )
            .stdout.strip()
            .splitlines()[-1]
        )
    except Exception as exc:
        profile = [{"error": str(exc)[:300]}]

    return {
        "reps": reps,
        "median_ms": medians,
        "median_cpu_ms": cpu,
        "overhead_ms": overhead(medians),
        "overhead_cpu_ms": overhead(cpu),
        "sys_modules": {
            "llm_libraries_imported": llm_imported,
            "added_module_count": len(added),
            "added_third_party_packages": added_top,
        },
        "importtime": _importtime(ours_env),
        "initialize_profile_top": [r for r in profile if "error" in r or r.get("cumulative_ms", 0) > 0][:25],
    }


def _bootstrap_dir() -> str:
    import posthog_autoinstrument

    return os.path.join(os.path.dirname(os.path.abspath(posthog_autoinstrument.__file__)), "bootstrap")
