"""Run every benchmark, print one table, write ``benchmarks/results/latest.json``.

    python benchmarks/run.py            # full run (builds the peers' venv the first time)
    python benchmarks/run.py --quick    # smoke run of every code path with tiny counts (CI)

Timings of a ``--quick`` run mean nothing and are never asserted on; budgets are reported
(PASS/FAIL) and never change the exit status. Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import app_thread  # noqa: E402
import burst  # noqa: E402
import common  # noqa: E402
import hotspots  # noqa: E402
import instructions  # noqa: E402
import memory  # noqa: E402
import peers  # noqa: E402
import percall  # noqa: E402
import providers  # noqa: E402
import startup  # noqa: E402
import table  # noqa: E402
from common import MAIN_PYTHON, RESULTS, machine_info, run_json, sink, versions, worker_env  # noqa: E402
from setups import PEERS  # noqa: E402

BUDGETS = {
    "chat_added_us": 45.0,
    "vs_best_peer": 1 / 3,
    "chunk_added_us": 1.0,
    "startup_added_ms": 150.0,
    "export_spans_per_second": 10_000.0,
    "vs_openai_chat": 1.5,
}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _load() -> list:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny counts: checks the harness, not the code")
    parser.add_argument("--rounds", type=int, help="per-call rounds (default 5, quick 1)")
    parser.add_argument("--startup-reps", type=int, help="start-up repetitions (default 20, quick 1)")
    parser.add_argument("--memory-calls", type=int, help="calls per memory run (default 100000, quick 200)")
    parser.add_argument("--export-spans", type=int, help="spans through the export pipeline (default 20000)")
    parser.add_argument("--skip-peers", action="store_true", help="do not build or measure the peers")
    parser.add_argument(
        "--build-peers",
        action="store_true",
        help="with --quick: build the peers' venv if missing (a full run always does)",
    )
    parser.add_argument(
        "--only",
        help="comma-separated phases to re-run (startup, percall, app_thread, all_threads, "
        "burst, providers, instructions, export, memory, hotspots); "
        "the others are kept from the existing --output file",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    options = parser.parse_args(argv)
    quick = options.quick
    rounds = options.rounds or (1 if quick else 5)
    startup_reps = options.startup_reps or (1 if quick else 20)
    memory_calls = options.memory_calls or (200 if quick else 100_000)
    export_spans = options.export_spans or (300 if quick else 20_000)
    plan = percall.QUICK_PLAN if quick else percall.FULL_PLAN
    began = time.time()

    report: dict = {
        "quick": quick,
        "machine": machine_info(),
        "load_average_before": _load(),
        "packages": versions(
            [
                "posthog-autoinstrument",
                "openai",
                "anthropic",
                "httpx2",
                "httpx",
                "pydantic",
                "opentelemetry-api",
                "opentelemetry-sdk",
                "opentelemetry-instrumentation",
                "opentelemetry-exporter-otlp-proto-common",
                "protobuf",
                "wrapt",
            ]
        ),
        "budgets_limits": BUDGETS,
    }

    peer_python, peer_names = None, []
    if options.skip_peers:
        report["peers_env"] = {"skipped": "--skip-peers"}
    elif quick and not options.build_peers and not peers.ready():
        # Building the venv downloads and installs ~40 packages (30-60 s): too slow for a smoke run.
        report["peers_env"] = {"skipped": "peers' venv not built (run once without --quick, or add --build-peers)"}
    else:
        state = peers.ensure(say)
        if state is None:
            report["peers_env"] = {"skipped": f"the peers' venv could not be built; see {peers.LOG}"}
        else:
            peer_python, peer_names = str(peers.python()), list(PEERS)
            report["peers_env"] = {"path": str(peers.ENV), "notes": state.get("notes", [])}
    if "skipped" in report["peers_env"]:
        say(f"peers skipped: {report['peers_env']['skipped']}")

    if quick:
        os.environ["BENCHMARK_NO_PIN"] = "1"  # phases run side by side (see below)
    with sink() as url:

        def start_up():
            say(f"start-up ({startup_reps} repetitions per command)")
            return startup.measure(url, startup_reps, say, warm=not quick)

        def per_call():
            say(f"per-call and per-chunk ({rounds} rounds)")
            return percall.measure(url, rounds, plan, peer_python, peer_names, say, parallel=2 if quick else 1)

        def export():
            say(f"export pipeline ({export_spans} spans)")
            return run_json(
                [
                    MAIN_PYTHON,
                    "benchmarks/export.py",
                    "--sink",
                    url,
                    "--spans",
                    str(export_spans),
                    "--repeat",
                    "2" if quick else "20",
                ],
                env=worker_env(),
            )

        def hot():
            found = {"chat": hotspots.compare(url, "chat", 20 if quick else 3000, say)}
            found["stream_sync"] = hotspots.compare(url, "stream_sync", 2 if quick else 40, say)
            return found

        def counts():
            return instructions.measure(url, quick, peer_python, peer_names, say)

        def app_thread_within():
            say("app thread: instrumented against suppressed, in the same process")
            return app_thread.measure_within(url, runs=2 if quick else 60, processes=1 if quick else 3)

        def all_threads_within():
            say("all threads: each setup on and off, in the same process")
            return app_thread.measure_within_all(
                url,
                peer_python,
                peer_names,
                runs=2 if quick else 30,
                calls=5 if quick else 200,
                processes=1 if quick else 2,
                say=say,
            )

        def burst_figure():
            say("burst: 1,500 chat calls back to back, then a flush, each setup in its own processes")
            found = burst.measure(url, 50 if quick else 1500, 1 if quick else burst.ROUNDS, peer_python, say)
            found["retained"] = burst.retained(url)
            return found

        def per_provider():
            # Callgrind takes minutes a provider: a quick run times them only.
            return providers.measure(url, quick, say, counted=not quick)

        phases = {
            "startup": start_up,
            "percall": per_call,
            "app_thread": app_thread_within,
            "all_threads": all_threads_within,
            "burst": burst_figure,
            "providers": per_provider,
            "instructions": counts,
            "export": export,
            "memory": lambda: memory.measure(url, memory_calls, say),
            "hotspots": hot,
        }
        if options.only:
            wanted = options.only.split(",")
            unknown = set(wanted) - set(phases)
            if unknown:
                parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
            previous = json.loads(options.output.read_text()) if options.output.exists() else {}
            report.update({name: previous[name] for name in phases if name not in wanted and name in previous})
            report["rerun_phases"] = wanted
            phases = {name: phases[name] for name in wanted}
        if quick:
            # Nothing a quick run measures means anything, so its phases share the machine.
            with ThreadPoolExecutor(3) as pool:
                futures = {name: pool.submit(phase) for name, phase in phases.items()}
                report.update({name: future.result() for name, future in futures.items()})
        else:
            report.update({name: phase() for name, phase in phases.items()})

    report["load_average_after"] = _load()
    report["budgets"] = evaluate(report)
    report["seconds"] = round(time.time() - began, 1)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(report, indent=1))
    print(table.render(report))
    say(f"wrote {options.output} in {report['seconds']} s")
    return 0


def evaluate(report: dict) -> list:
    """Each budget with its measured value and PASS/FAIL (None when it cannot be judged).

    Time budgets are judged on CPU time (see percall.py); the wall-clock figure is reported
    next to each.
    """
    # A phase re-run alone (--only) may have no per-call results beside it to judge by.
    setups = report.get("percall", {}).get("setups", {})
    ours = setups.get("main/ours", {}).get("workloads", {})
    rows = []

    def row(budget: str, value, wall, unit: str, limit: str, ok) -> None:
        rows.append(
            {
                "budget": budget,
                "value": value,
                "wall": wall,
                "unit": unit,
                "limit": limit,
                "pass": None if value is None else ok,
            }
        )

    # Per call: the cost the app pays on its own thread (the call's latency); the export
    # thread's share is judged by the export budget below. Judged on the timed figure taken
    # within one process (app_thread.py --within: processes up to 9 µs apart); the cross-process
    # figure (66 to 112 µs for the same code) and the instruction count (which misses what cold caches cost our code,
    # run once between long stretches of the SDK's) are shown beside it.
    chat = ours.get("chat", {})
    app_cpu = chat.get("delta_app_thread_cpu_us")
    within = report.get("app_thread", {}).get("added_app_thread_us_per_call")
    row(
        "added cost per chat call, app thread (timed within one process)",
        within,
        None,
        "µs",
        f"<= {BUDGETS['chat_added_us']:g} µs",
        within is not None and within <= BUDGETS["chat_added_us"],
    )
    row("... the same, across processes (percall)", app_cpu, None, "µs", "-", None)
    app = instructions_us(report, "main/ours", "chat")
    row("... its instructions at the SDK's rate (callgrind, no collections)", app, None, "µs", "-", None)
    cpu, wall = chat.get("delta_cpu_us"), chat.get("delta_us")
    row("added cost per chat call, all threads (timed)", cpu, wall, "µs", "see the ratios below", None)
    peer_chat = {name: setups.get(f"peers/{name}", {}).get("workloads", {}).get("chat", {}) for name in PEERS}
    peer_chat = {k: v for k, v in peer_chat.items() if v.get("delta_cpu_us") is not None}
    if peer_chat and cpu is not None:
        name, best = min(peer_chat.items(), key=lambda kv: kv[1]["delta_cpu_us"])
        ratio = cpu / best["delta_cpu_us"] if best["delta_cpu_us"] > 0 else None
        wall_ratio = wall / best["delta_us"] if best.get("delta_us") else None
        # Shown, not judged: across processes this ratio has moved from 0.31x to 0.39x between runs
        # of the same code (each setup's memory layout); the within-process row below judges it.
        row(
            f"... all threads vs best peer, across processes ({PEERS[name].split(' (')[0]}: "
            f"{best['delta_cpu_us']:.0f} µs)",
            ratio,
            wall_ratio,
            "x",
            "see the next row",
            None,
        )
    else:
        row("... all threads vs best peer (no peer measured)", None, None, "x", "-", None)
    # The same ratio with each setup on and off inside its own processes (app_thread.py
    # measure_within_all): the cross-process one above moves by a few hundredths between runs.
    within_all = report.get("all_threads", {}).get("added_us_per_call", {})
    peer_within = {k: v for k, v in within_all.items() if k != "ours" and v > 0}
    if "ours" in within_all and peer_within:
        name, best = min(peer_within.items(), key=lambda kv: kv[1])
        ratio = within_all["ours"] / best
        row(
            f"... all threads vs best peer, within one process (ours {within_all['ours']:.0f} µs, "
            f"{PEERS[name].split(' (')[0]} {best:.0f} µs)",
            ratio,
            None,
            "x",
            f"<= {BUDGETS['vs_best_peer']:.2f}x",
            ratio <= BUDGETS["vs_best_peer"],
        )
    bursting = report.get("burst", {})
    if bursting.get("vs_best_peer") is not None:
        ratio, added = bursting["vs_best_peer"], bursting["added_cpu_us_per_call"]
        row(
            f"... all threads in a burst of {bursting['calls']:,} calls (ours {added['ours']:.0f} µs, "
            f"{PEERS[bursting['best_peer']].split(' (')[0]} {added[bursting['best_peer']]:.0f} µs)",
            ratio,
            None,
            "x",
            f"<= {BUDGETS['vs_best_peer']:.2f}x",
            ratio <= BUDGETS["vs_best_peer"],
        )
    for method in ("callgrind", "timed"):
        ratios = report.get("providers", {}).get(method, {}).get("ratio_to_openai", {})
        if len(ratios) > 1:
            # Shown, not judged: a LangChain step records two spans (the step and its generation);
            # Anthropic's own span is the configuration with telemetry of the app's own, where an
            # OpenAI call is a live SDK span too, not the direct call it is compared with here.
            name, worst = max(
                ((k, v) for k, v in ratios.items() if k not in ("openai", "langchain", "anthropic_sdk_span")),
                key=lambda kv: kv[1],
            )
            row(
                f"provider adapters' added cost vs OpenAI chat's, the highest ({name}; {method})",
                worst,
                None,
                "x",
                f"<= {BUDGETS['vs_openai_chat']:.1f}x",
                worst <= BUDGETS["vs_openai_chat"],
            )
    peer_app = {name: v["delta_app_thread_cpu_us"] for name, v in peer_chat.items() if v.get("delta_app_thread_cpu_us")}
    ours_app = within if within is not None else app_cpu
    if peer_app and ours_app is not None:
        name, best = min(peer_app.items(), key=lambda kv: kv[1])
        ratio = ours_app / best
        row(
            f"... app thread vs best peer (timed; {PEERS[name].split(' (')[0]}: {best:.0f} µs)",
            ratio,
            None,
            "x",
            f"<= {BUDGETS['vs_best_peer']:.2f}x",
            ratio <= BUDGETS["vs_best_peer"],
        )
    added = report.get("instructions", {}).get("added", {})
    peer_counts = {name: added.get(f"peers/{name}", {}).get("chat") for name in PEERS}
    peer_counts = {k: v for k, v in peer_counts.items() if v}
    ours_count = added.get("main/ours", {}).get("chat")
    if peer_counts and ours_count is not None:
        name, best = min(peer_counts.items(), key=lambda kv: kv[1])
        ratio = ours_count / best
        row(
            f"... app thread vs best peer (callgrind; {PEERS[name].split(' (')[0]}: {best / 1000:,.0f} k instructions)",
            ratio,
            None,
            "x",
            f"<= {BUDGETS['vs_best_peer']:.2f}x",
            ratio <= BUDGETS["vs_best_peer"],
        )
    for label, what in (
        ("main/ours", "with the usage chunk we ask for"),
        ("main/ours, POSTHOG_AI_STREAM_USAGE=false", "POSTHOG_AI_STREAM_USAGE=false"),
    ):
        for workload in ("stream_sync", "stream_async"):
            stats = ours.get(workload, {}) if label == "main/ours" else {}
            value = instructions_us(report, label, f"{workload}_per_chunk", workload)
            # With the usage chunk the figure includes the SDK's own parsing of it (measured below),
            # most of a microsecond by itself: shown, and judged on our code alone.
            judged = label != "main/ours"
            row(
                f"added cost per streamed chunk, {workload.split('_')[1]}, {what} (callgrind)",
                value,
                stats.get("delta_marginal_per_chunk_us"),
                "µs",
                f"<= {BUDGETS['chunk_added_us']:g} µs" if judged else "see our code's row",
                (value is not None and value <= BUDGETS["chunk_added_us"]) if judged else None,
            )
        if label == "main/ours":
            # Asking for the usage chunk makes the API put "usage": null in every chunk; parsing it
            # is the SDK's own work, measured with the app asking and no instrumentation.
            sdk = instructions_us(
                report, "main/baseline, the app asking for the usage chunk", "stream_sync_per_chunk", "stream_sync"
            )
            total = instructions_us(report, label, "stream_sync_per_chunk", "stream_sync")
            row(
                "... of which the SDK's own parsing of the usage field (sync, callgrind, uninstrumented)",
                sdk,
                None,
                "µs",
                "-",
                None,
            )
            ours_alone = None if sdk is None or total is None else total - sdk
            row(
                "... and our code with the usage chunk (sync: its total above, less the SDK's share)",
                ours_alone,
                None,
                "µs",
                f"<= {BUDGETS['chunk_added_us']:g} µs",
                ours_alone is not None and ours_alone <= BUDGETS["chunk_added_us"],
            )
    if "startup" in report:
        start = report["startup"]
        added = start["overhead_cpu_ms"]["python -c pass"]
        row(
            "start-up overhead (python -c pass)",
            added,
            start["overhead_ms"]["python -c pass"],
            "ms",
            f"<= {BUDGETS['startup_added_ms']:g} ms",
            added <= BUDGETS["startup_added_ms"],
        )
        llm = start["sys_modules"]["llm_libraries_imported"]
        row("start-up imports no LLM library", len(llm), None, "imported", "0", not llm)
    if "export" not in report:
        return rows
    flow = report["export"].get("steady") or report["export"]["end_to_end"]
    row(
        "export throughput, one core (steady flow)",
        flow["spans_per_cpu_second"],
        flow["spans_per_second"],
        "spans/s",
        f">= {BUDGETS['export_spans_per_second']:,.0f}",
        flow["spans_per_cpu_second"] >= BUDGETS["export_spans_per_second"],
    )
    end = report["export"]["end_to_end"]
    row(
        "... draining a backlog of 20,000 calls recorded beforehand",
        end["spans_per_cpu_second"],
        end["spans_per_second"],
        "spans/s",
        "-",
        None,
    )
    return rows


def instructions_us(report: dict, label: str, key: str, workload: str | None = None):
    """Added instructions (callgrind) of ``key`` in µs, at the rate the SDK's own ``workload``
    runs here (its CPU µs per instruction, uninstrumented).

    Timing cannot resolve these: the marginal cost per chunk is ~1 µs inside ~160 µs of SDK
    work per chunk, and a call's app-thread share shifts with whatever the export thread left
    in the caches of the one core they share. The instruction count is exact; converting it at
    the SDK's own rate is conservative for our short loops (they run more instructions per ns
    than the SDK's object building).
    """
    workload = workload or key
    counts = report.get("instructions", {})
    added = counts.get("added", {}).get(label, {}).get(key)
    base_instr = counts.get("per_call", {}).get("main/baseline", {}).get(workload)
    base_cpu = (
        report.get("percall", {})
        .get("setups", {})
        .get("main/baseline", {})
        .get("workloads", {})
        .get(workload, {})
        .get("cpu_us")
    )
    if added is None or not base_instr or not base_cpu:
        return None
    return added * base_cpu / base_instr


if __name__ == "__main__":
    os.chdir(common.REPO)
    sys.exit(main())
