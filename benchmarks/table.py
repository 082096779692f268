"""The human-readable report: the same numbers as ``results/latest.json``, as tables."""

from __future__ import annotations

from setups import PEERS

WORKLOAD_LABELS = {
    "chat": "chat completion",
    "embeddings": "embeddings",
    "anthropic": "anthropic messages",
    "stream_sync": "stream 200 chunks, sync",
    "stream_async": "stream 200 chunks, async",
    "stream_sync_short": "stream 2 chunks, sync",
    "stream_async_short": "stream 2 chunks, async",
}


def _num(value, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _grid(header: list, rows: list) -> list:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _short(name: str) -> str:
    return PEERS[name].split(" (")[0]


def render(report: dict) -> str:
    out: list = []
    m = report["machine"]
    p = report["packages"]
    kind = "QUICK smoke run: tiny counts, timings mean nothing" if report["quick"] else "full run"
    out.append(f"posthog-autoinstrument benchmarks ({kind})")
    out.append(
        f"machine: {m['cpu_model']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}; "
        f"openai {p.get('openai')}, anthropic {p.get('anthropic')}, opentelemetry-sdk {p.get('opentelemetry-sdk')}, "
        f"protobuf {p.get('protobuf')}"
    )
    out.append(f"load average before/after: {report['load_average_before'][:1]} / {report['load_average_after'][:1]}")
    # A phase re-run alone (--only, no earlier results) leaves the sections of the others out.
    sections = (
        ("percall", _percall),
        ("percall", _chunks),
        (None, _instructions),
        (None, _providers),
        (None, _burst),
        ("startup", _startup),
        ("export", _export),
        ("memory", _memory),
        (None, _budgets),
        (None, _hotspots),
        ("percall", _footnotes),
    )
    for phase, section in sections:
        if phase is None or phase in report:
            out += ["", *section(report)]
    return "\n".join(out)


def _columns(report: dict) -> list:
    setups = report["percall"]["setups"]
    cols = [("ours", setups.get("main/ours", {}))]
    cols += [(_short(name), setups[f"peers/{name}"]) for name in PEERS if f"peers/{name}" in setups]
    return cols


def _cell(entry: dict, workload: str, key: str) -> str:
    if entry.get("failed"):
        return "failed"
    stats = entry.get("workloads", {}).get(workload)
    if not stats or stats.get(key) is None:
        return "n/a"
    if "per_chunk" in key:
        return f"{stats[key]:+.2f}"
    ratio = stats["cpu_ratio"] if key == "delta_cpu_us" else stats["ratio"]
    return f"{stats[key]:+,.0f} ({ratio:.2f}x)"


def _percall(report: dict) -> list:
    setups = report["percall"]["setups"]
    base = setups.get("main/baseline", {}).get("workloads", {})
    cols = _columns(report)
    header = ["workload", "baseline µs", *(c for c, _ in cols)]
    rounds = report["percall"]["rounds"]
    lines = [
        f"1. Added cost per call, µs of CPU (all threads of the process: app + exporter), median over {rounds} "
        "interleaved rounds of instrumented minus baseline; ratio to the baseline. Budgets use these."
    ]
    lines += _grid(
        header,
        [
            [WORKLOAD_LABELS[w], _num(base.get(w, {}).get("cpu_us"))] + [_cell(e, w, "delta_cpu_us") for _, e in cols]
            for w in WORKLOAD_LABELS
        ],
    )
    lines += ["", "1b. The same on the wall clock (noisier when other programs load the machine)"]
    lines += _grid(
        header,
        [
            [WORKLOAD_LABELS[w], _num(base.get(w, {}).get("median_us"))] + [_cell(e, w, "delta_us") for _, e in cols]
            for w in WORKLOAD_LABELS
        ],
    )
    return lines


def _chunks(report: dict) -> list:
    cols = _columns(report)
    rows = [
        [f"{WORKLOAD_LABELS[w]}, {clock}"] + [_cell(e, w, key) for _, e in cols]
        for w in ("stream_sync", "stream_async")
        for clock, key in (
            ("CPU, marginal", "delta_cpu_marginal_per_chunk_us"),
            ("CPU, amortised", "delta_cpu_per_chunk_us"),
            ("wall, amortised", "delta_per_chunk_us"),
        )
    ]
    lines = [
        "2. Added cost per streamed chunk, µs. Marginal: what one more chunk costs, (added cost of the 200-chunk "
        "stream - of the 2-chunk stream) / 198. Amortised: the 200-chunk stream's whole added cost (span, "
        "input, output included) / 200.",
        *_grid(["workload", *(c for c, _ in cols)], rows),
    ]
    ours = report["percall"]["setups"].get("main/ours", {}).get("workloads", {})
    split = [
        f"{WORKLOAD_LABELS[w]}: app thread {_num(s.get('delta_app_thread_cpu_us'), 1)}, export thread "
        f"{_num(s.get('delta_other_threads_cpu_us'), 1)}"
        for w, s in ours.items()
        if "delta_app_thread_cpu_us" in s
    ]
    if split:
        lines += ["   ours, added CPU µs per call by thread: " + split[0], *("     " + s for s in split[1:])]
    return lines


def _instructions(report: dict) -> list:
    counts = report.get("instructions")
    if not counts:
        return ["2b. Instruction counts: not measured in this run"]
    if counts.get("skipped"):
        return [f"2b. Instruction counts: skipped ({counts['skipped']})"]
    workloads = [w for w in ("chat", "embeddings", "stream_sync_short", "stream_async_short") if w in counts["plan"]]
    per_chunk = [w for w in ("stream_sync", "stream_async") if w in counts["plan"]]
    rows = []
    for label, added in counts["added"].items():
        rows.append(
            [label] + [_num(added.get(w)) for w in workloads] + [_num(added.get(f"{w}_per_chunk")) for w in per_chunk]
        )
    base = counts["per_call"].get("main/baseline", {})
    header = (
        ["configuration"]
        + [f"{WORKLOAD_LABELS[w]}" for w in workloads]
        + [f"per chunk, {w.split('_')[1]}" for w in per_chunk]
    )
    return [
        "2b. Added instructions on the application thread (callgrind; load cannot move them; our per-chunk figures within one process, instrumented vs suppressed, the peers' across processes: see instructions.py), per call and "
        "per streamed chunk (marginal). SDK alone: "
        + ", ".join(f"{WORKLOAD_LABELS[w]} {_num(base.get(w))}" for w in counts["plan"] if w in base),
        *_grid(header, rows),
    ]


def _providers(report: dict) -> list:
    found = report.get("providers")
    if not found:
        return ["2c. Provider adapters: not measured in this run"]
    timed = found.get("timed", {})
    counted = found.get("callgrind", {})
    rows = []
    for name in found["providers"]:
        count = counted.get("per_provider", {}).get(name, {})
        rows.append(
            [
                name,
                _num(timed.get("added_us_per_call", {}).get(name)),
                _num(timed.get("ratio_to_openai", {}).get(name), 2),
                _num((count.get("added_instructions_per_call") or 0) / 1000)
                if count.get("added_instructions_per_call") is not None
                else "-",
                _num(counted.get("ratio_to_openai", {}).get(name), 2),
            ]
        )
    header = ["provider", "added µs, all threads", "x OpenAI", "added k instructions, all threads", "x OpenAI"]
    notes = [f"- {name}: {problem}" for name, problem in timed.get("problems", {}).items()]
    return [
        "2c. Each provider adapter's added cost per call, on against off within one process (providers.py)",
        *_grid(header, rows),
        *notes,
    ]


def _burst(report: dict) -> list:
    found = report.get("burst")
    if not found:
        return ["2d. Burst: not measured in this run"]
    rows = [[name, _num(value)] for name, value in found["added_cpu_us_per_call"].items()]
    return [
        f"2d. A burst of {found['calls']:,} chat calls then a flush, all threads' added CPU per call "
        f"(median of {found['rounds']} interleaved rounds; ours vs the best peer: {_num(found['vs_best_peer'], 2)}x"
        + _interval(found.get("vs_best_peer_90pct_interval"))
        + ")",
        *_grid(["setup", "added µs"], rows),
    ]


def _interval(bounds) -> str:
    return f", 90% interval {bounds[0]:.2f} to {bounds[1]:.2f}" if bounds else ""


def _startup(report: dict) -> list:
    s = report["startup"]
    medians, cpu = s["median_ms"], s["median_cpu_ms"]
    names = list(medians)
    pairs = {names[1]: names[0], names[2]: names[0], names[4]: names[3]}
    rows = [
        [
            name,
            _num(medians[name], 1),
            f"{medians[name] - medians[pairs[name]]:+,.1f}" if name in pairs else "",
            _num(cpu[name], 1),
            f"{cpu[name] - cpu[pairs[name]]:+,.1f}" if name in pairs else "",
        ]
        for name in names
    ]
    imports = s["importtime"]
    packages = ", ".join(f"{e['package']} {e['self_ms']:.0f}" for e in imports["self_ms_by_package"][:8])
    modules = ", ".join(f"{e['module']} {e['cumulative_ms']:.0f}" for e in imports["top_modules_by_cumulative"][:6])
    llm = s["sys_modules"]["llm_libraries_imported"]
    return [
        f"3. Start-up, ms (median of {s['reps']}, interleaved, one core)",
        *_grid(["command", "wall ms", "added", "CPU ms", "added"], rows),
        f"   LLM libraries imported by our start-up of `python -c pass`: {', '.join(llm) if llm else 'none'}",
        f"   third-party packages our start-up imports: {', '.join(s['sys_modules']['added_third_party_packages'])}",
        f"   import time under sitecustomize: {_num(imports['sitecustomize_total_ms'])} ms; self ms by package: {packages}",
        f"   largest imports (cumulative ms): {modules}",
    ]


def _export(report: dict) -> list:
    e = report["export"]
    end = e["end_to_end"]
    flow = e.get("steady")
    st = e["stages"]
    return [
        "4. Export pipeline, one core (real spans from our OpenAI adapter, content on, "
        f"~{e['span_attribute_chars']} attribute chars each)",
        *(
            [
                f"   steady flow (100 calls recorded, then exported, and again): {flow['spans_per_cpu_second']:,.0f} spans "
                f"per CPU second, {flow['spans_per_second']:,.0f} per wall second ({flow['spans']:,} spans; exported "
                f"{flow['exported']:,}, dropped {flow['dropped']}, failed {flow['failed']})"
            ]
            if flow
            else []
        ),
        f"   draining a backlog: {end['spans_per_cpu_second']:,.0f} spans per CPU second, {end['spans_per_second']:,.0f} "
        f"per wall second ({end['spans']:,} spans handed over at once; exported {end['exported']:,}, "
        f"dropped {end['dropped']}, failed {end['failed']})",
        f"   app thread, handing over a call: {e['on_end_us_per_span']:.2f} µs CPU/span with the export thread asleep, "
        f"{end['on_end_us_per_span_while_exporting']:.2f} µs wall/span while it exports",
        f"   export thread, µs CPU/span: build span (deferred translation) {st['build_span_us_per_span']:.1f}, "
        f"PostHog copy {st['posthog_copy_us_per_span']:.1f}, OTLP encode "
        f"{st['otlp_encode_us_per_span']:.1f}, gzip {st['gzip_us_per_span']:.1f}, HTTP POST incl. gzip "
        f"{st['http_post_incl_gzip_us_per_span']:.1f} ({st['request_body_bytes_per_span']:.0f} body bytes/span)",
    ]


def _memory(report: dict) -> list:
    mem = report["memory"]
    rows = []
    for label, r in mem["runs"].items():
        proc = r.get("processor")
        counters = (
            "" if not proc else f"exported {proc['exported']:,}, dropped {proc['dropped']:,}, queued {proc['queued']}"
        )
        rows.append(
            [
                label,
                _num(r["rss_before_mib"], 1),
                _num(r["rss_after_mib"], 1),
                _num(r["peak_rss_mib"], 1),
                f"{r['vs_baseline_mib']:+.1f}",
                counters,
            ]
        )
    return [
        f"5. Resident memory, MiB, after {mem['calls']:,} chat calls",
        *_grid(["run", "before", "after", "peak", "vs baseline", "our processor"], rows),
    ]


def _budgets(report: dict) -> list:
    rows = []
    for b in report["budgets"]:
        verdict = "n/a" if b["pass"] is None else ("PASS" if b["pass"] else "FAIL")
        if report["quick"] and b["pass"] is not None:
            verdict += " (quick: meaningless)"
        digits = 2 if b["unit"] in ("x", "µs") and abs(b["value"] or 0) < 10 else 0
        wall = "" if b.get("wall") is None else f"{_num(b['wall'], digits)} {b['unit']}"
        rows.append([b["budget"], f"{_num(b['value'], digits)} {b['unit']}", wall, b["limit"], verdict])
    return [
        "6. Budgets (judged on CPU time; wall clock alongside)",
        *_grid(["budget", "measured (CPU)", "wall clock", "limit", "result"], rows),
    ]


def _hotspots(report: dict) -> list:
    lines = ["7. Where our per-call time goes (cProfile, application thread; proportions, profiler-inflated)"]
    for workload, h in report.get("hotspots", {}).items():
        total = h["profiled_us_per_call"]
        lines.append(
            f"   {WORKLOAD_LABELS[workload]}: profiled µs/call baseline {total['baseline']:,.0f}, ours {total['ours']:,.0f}"
        )
        lines.append(
            "     our functions, cumulative µs/call: "
            + "; ".join(
                f"{f['function'].split('/')[-1]} {f['cumulative_us']:.0f}"
                for f in h["our_functions_by_cumulative"][1:7]
            )
        )
        lines.append(
            "     largest added self time, µs/call: "
            + "; ".join(
                f"{f['function'].split('/')[-1]} {f['added_self_us']:+.0f}" for f in h["largest_added_self_time"][:6]
            )
        )
    return lines


def _footnotes(report: dict) -> list:
    setups = report["percall"]["setups"]
    ours = setups.get("main/ours", {})
    notes = ["Notes:"]
    if "anthropic" not in ours.get("covered", []):
        notes.append(
            "- ours/anthropic n/a: no Anthropic instrumentor of ours is registered in entry points yet; it is "
            "measured automatically once one is. Peers: their OpenAI packages only, Anthropic not compared."
        )
    notes.append(
        "- ours: the real start-up path (startup.initialize, no OpenTelemetry export of the user's own): "
        "PostHogSpanProcessor -> bounded queue -> OTLP protobuf, gzip, HTTP POST to a loopback stand-in "
        "(its own process, other core)."
    )
    peer_entries = [(name, setups[f"peers/{name}"]) for name in PEERS if f"peers/{name}" in setups]
    if peer_entries:
        notes.append(
            "- peers: SDK TracerProvider + BatchSpanProcessor (100 spans a batch, PostHog's limit) + OTLPSpanExporter (protobuf over HTTP, "
            "gzip) to the same kind of loopback stand-in; PostHog SDK: its own client queue and consumer thread "
            "posting gzip JSON batches to it. Installed in benchmarks/.envs/peers with the same SDK versions."
        )
        base = setups.get("peers/baseline", {}).get("workloads", {})
        notes.append(
            "- peers' baseline (their venv), µs: "
            + ", ".join(f"{WORKLOAD_LABELS[w]} {_num(s.get('median_us'))}" for w, s in base.items())
        )
        for name, entry in peer_entries:
            packages = ", ".join(
                f"{k} {v}"
                for k, v in entry.get("packages", {}).items()
                if k not in ("openai", "anthropic", "httpx2", "pydantic")
            )
            detail = entry.get("failed") or "; ".join(entry.get("notes", []))
            notes.append(f"- {_short(name)}: {packages}; {detail}")
    for label, entry in [("ours", ours), *((_short(n), e) for n, e in peer_entries)]:
        odd = [
            f"{w}: {s['verify']}"
            for w, s in entry.get("workloads", {}).items()
            if s.get("verify")
            and (
                s["verify"].get("records_per_call") != 1
                or not s["verify"].get("input_captured")
                or not s["verify"].get("output_captured")
            )
        ]
        if odd:
            notes.append(f"- check {label}: not one record per call with content: {'; '.join(odd)}")
    if not any(n.startswith("- check") for n in notes):
        notes.append(
            "- verified: every measured configuration emitted one span/event per call with input and output content."
        )
    for note in report.get("peers_env", {}).get("notes", []):
        notes.append(f"- peers' venv: {note}")
    if report.get("peers_env", {}).get("skipped"):
        notes.append(f"- peers not measured: {report['peers_env']['skipped']}")
    if report.get("rerun_phases"):
        notes.append(
            f"- re-measured in this invocation: {', '.join(report['rerun_phases'])}; the other sections "
            "come from the previous run in the same file"
        )
    notes.append(
        f"- load average before/after (other work on the machine adds noise): {report['load_average_before']} / "
        f"{report['load_average_after']}"
    )
    return notes
