"""The load benchmark's table: reads the results directory that benches/load/run filled
(conditions.tsv, runs.tsv, memory.tsv and the raw dnsperf outputs) and prints one markdown
table plus the ratios, then the clusters table (CPU per gathered query for 1, 2, 4, 8
clusters). Exits 1 if a target answered nothing, or, with --strict (smoke mode), if any reply
was not NOERROR or shorter than a complete answer."""

from __future__ import annotations

import argparse
import gzip
import os
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Row order and labels; the keys are the target names of the run script.
TARGETS = {
    "knot": "Knot direct (floor), UDP",
    "dnsdist": "dnsdist → Knot, UDP",
    "smol": "gatherdns-smol, gathered, UDP",
    "glommio": "gatherdns-glommio, gathered, UDP",
    "smol-cache": "gatherdns-smol with cache, UDP (hits)",
    "dnsdist-cache": "dnsdist packet cache → gatherdns-smol, UDP (hits)",
    "knot-tcp": "Knot direct, 50 endpoints, TCP",
    "smol-tcp": "gatherdns-smol, 2×50 gathered, TCP",
    "glommio-tcp": "gatherdns-glommio, 2×50 gathered, TCP",
    "smol-pin": "gatherdns-smol on one CPU (taskset), gathered, UDP",
    "glommio-pin": "gatherdns-glommio on one CPU (-cpus), gathered, UDP",
    "dnsdist-t2": "dnsdist → Knot, UDP, dnsperf -T 2",
    "smol-t2": "gatherdns-smol, gathered, UDP, dnsperf -T 2",
    "glommio-t2": "gatherdns-glommio, gathered, UDP, dnsperf -T 2",
}
PINNED = ("smol-pin", "glommio-pin")
TWO_THREADS = ("dnsdist-t2", "smol-t2", "glommio-t2")

# The clusters phase: binary -> label, and the cluster counts; targets are "smol-c4" etc.
BINARIES = {"smol": "gatherdns-smol", "glommio": "gatherdns-glommio"}
CLUSTER_COUNTS = (1, 2, 4, 8)
CLUSTERED = {
    f"{b}-c{n}": f"{label}, {n} cluster{'s' if n > 1 else ''}, UDP"
    for b, label in BINARIES.items()
    for n in CLUSTER_COUNTS
}
LABELS = TARGETS | CLUSTERED


def phase_of(target: str) -> str:
    """The phase of a target's saturation runs, as runs.tsv names it."""
    if target.endswith("-tcp"):
        return "tcp"
    if target in PINNED:
        return "pinned"
    if target in CLUSTERED:
        return "clusters"
    if target in TWO_THREADS:
        return "sat2"
    return "sat"

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """What one dnsperf run printed."""

    sent: int = 0
    completed: int = 0
    lost: int = 0
    rcodes: dict[str, int] = field(default_factory=dict)
    response_bytes: int = 0
    qps: float = 0.0
    avg_latency: float = 0.0  # seconds
    stddev: float = 0.0
    latencies: list[float] = field(default_factory=list)  # from -v, seconds
    run_time: float = 0.0  # seconds
    cpu_ticks: int = 0
    rss_kb_after: int = 0


def parse_dnsperf(path: Path) -> Run:
    opener = gzip.open if path.suffix == ".gz" else open
    run = Run()
    with opener(path, "rt") as f:
        for line in f:
            if line.startswith("Connection Statistics"):
                break  # TCP: the connection latencies that follow are not query latencies
            if line.startswith("> "):
                # -v: "> NOERROR name type latency", or "> T name type" for a timeout
                fields = line.split()
                if len(fields) == 5:
                    run.latencies.append(float(fields[4]))
            elif m := re.match(r"\s+Queries sent:\s+(\d+)", line):
                run.sent = int(m[1])
            elif m := re.match(r"\s+Queries completed:\s+(\d+)", line):
                run.completed = int(m[1])
            elif m := re.match(r"\s+Queries lost:\s+(\d+)", line):
                run.lost = int(m[1])
            elif m := re.match(r"\s+Response codes:\s+(.*)", line):
                for code, count in re.findall(r"(\w+) (\d+) \(", m[1]):
                    run.rcodes[code] = int(count)
            elif m := re.match(r"\s+Average packet size:.*response (\d+)", line):
                run.response_bytes = int(m[1])
            elif m := re.match(r"\s+Run time \(s\):\s+([\d.]+)", line):
                run.run_time = float(m[1])
            elif m := re.match(r"\s+Queries per second:\s+([\d.]+)", line):
                run.qps = float(m[1])
            elif m := re.match(r"\s+Average Latency \(s\):\s+([\d.]+)", line):
                run.avg_latency = float(m[1])
            elif m := re.match(r"\s+Latency StdDev \(s\):\s+([\d.]+)", line):
                run.stddev = float(m[1])
    return run


def load(results: Path) -> tuple[dict, dict, dict, list]:
    runs: dict[tuple[str, str], list[Run]] = {}
    for line in (results / "runs.tsv").read_text().splitlines():
        phase, target, _round, path, ticks, rss = line.split("\t")
        run = parse_dnsperf(Path(path + ".gz") if phase == "rate" else Path(path))
        run.cpu_ticks = int(ticks)
        run.rss_kb_after = int(rss)
        runs.setdefault((phase, target), []).append(run)
    memory = {}
    for line in (results / "memory.tsv").read_text().splitlines():
        target, _phase, *kb = line.split("\t")
        memory[target] = kb
    expected = {}
    if (results / "expected.tsv").exists():
        for line in (results / "expected.tsv").read_text().splitlines():
            target, size = line.split("\t")
            expected[target] = int(size) if size.isdigit() else None
    conditions = [
        line.split("\t", 1) for line in (results / "conditions.tsv").read_text().splitlines()
    ]
    return runs, memory, expected, conditions


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs"


def mib(kb: str) -> str:
    return f"{int(kb) / 1024:.1f}"


def reply_bytes(runs: list[Run], full: int | None) -> str:
    """The smallest per-run average reply size, flagged when below the full answer's."""
    if not runs:
        return "—"
    smallest = min(r.response_bytes for r in runs)
    if full is None:
        return str(smallest)
    return f"{smallest} ({full})" if smallest >= full else f"**{smallest}** ({full})"


def percentile(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]


def row(target: str, runs: dict, memory: dict, full: int | None, rate: int) -> tuple[list, dict]:
    sat = runs.get((phase_of(target), target), [])
    fixed = runs.get(("rate", target), [])
    qps = [r.qps for r in sat]
    completed = sum(r.completed for r in sat)
    ticks = sum(r.cpu_ticks for r in sat)
    all_runs = sat + fixed
    not_noerror = sum(n for r in all_runs for code, n in r.rcodes.items() if code != "NOERROR")
    codes = sorted({c for r in all_runs for c in r.rcodes if c != "NOERROR"})
    latency_sat = (
        sum(r.avg_latency * r.completed for r in sat) / completed if completed else 0.0
    )
    cells = [
        LABELS[target],
        f"{statistics.median(qps):,.0f}" if qps else "—",
        f"{min(qps):,.0f}–{max(qps):,.0f}" if qps else "—",
        us(latency_sat) if completed else "—",
    ]
    facts = {
        "qps": statistics.median(qps) if qps else 0.0,
        "completed": completed,
        "cpu_us": ticks / CLOCK_TICKS / completed * 1e6 if completed else None,
        "lost": sum(r.lost for r in sat),
        # The share of one CPU the process used while dnsperf ran (median of the runs).
        "busy": statistics.median(r.cpu_ticks / CLOCK_TICKS / r.run_time for r in sat)
        if sat and all(r.run_time for r in sat)
        else None,
    }
    if fixed:
        f = fixed[0]
        note = "" if f.qps >= 0.95 * rate else f" (only {f.qps:,.0f} qps)"
        cells.append(f"{us(f.avg_latency)} ± {f.stddev * 1e6:,.0f}{note}")
        lat = sorted(f.latencies)
        cells.append(
            f"{us(percentile(lat, 50))} / {us(percentile(lat, 99))}" if lat else "—"
        )
        facts["latency"] = f.avg_latency
        facts["p50"] = percentile(lat, 50) if lat else None
        lost = f"{sum(r.lost for r in sat):,} / {f.lost:,}"
    else:
        cells += ["—", "—"]
        lost = f"{sum(r.lost for r in sat):,} / —"
    sent = sum(r.sent for r in all_runs)
    cells += [
        lost,
        f"{not_noerror:,} ({' '.join(codes)})" if not_noerror else "0",
        reply_bytes(all_runs, full),
        f"{ticks / CLOCK_TICKS / completed * 1000:.4f}" if completed else "—",
    ]
    if target in memory:
        start, _end, hwm = memory[target]
        rounds = ", ".join(mib(str(r.rss_kb_after)) for r in sat)
        # The kernel's RSS counters are approximate (per-thread batches), so VmHWM can read
        # below an RSS seen earlier: the peak is the larger of the two.
        peak = max([int(hwm), int(start)] + [r.rss_kb_after for r in sat])
        cells += [f"{mib(start)} → {rounds}", mib(str(peak))]
        facts["peak_kb"] = peak
    else:
        cells += ["—", "—"]
    facts["not_noerror"] = not_noerror
    facts["cpu"] = ticks / CLOCK_TICKS / completed * 1000 if completed else None
    facts["short"] = full is not None and any(r.response_bytes < full for r in all_runs)
    facts["sent"] = sent
    facts["all_completed"] = sum(r.completed for r in all_runs)
    facts["empty_runs"] = sum(1 for r in all_runs if r.completed == 0)
    return cells, facts


def per_extra_cluster(facts: dict, binary: str) -> float | None:
    """CPU µs of one more cluster: (cost of the most clusters − cost of one) ÷ the difference."""
    first, last = CLUSTER_COUNTS[0], CLUSTER_COUNTS[-1]
    a = facts.get(f"{binary}-c{first}", {}).get("cpu_us")
    b = facts.get(f"{binary}-c{last}", {}).get("cpu_us")
    return (b - a) / (last - first) if a is not None and b is not None else None


def goals(facts: dict, rate: str, smoke: bool) -> list[str]:
    """Each goal of the lean-path work that this run measures, with its figures and whether
    it is met: every figure named must be there and within the goal."""

    def get(target: str, key: str):
        return facts.get(target, {}).get(key)

    def line(text: str, figures: list[tuple[str, float | None]], ok, fmt: str) -> str:
        shown = ", ".join(
            f"{name} {format(v, fmt)}" if v is not None else f"{name} —" for name, v in figures
        )
        met = bool(figures) and all(v is not None and ok(v) for _, v in figures)
        return f"- {text}: {shown} — **{'met' if met else 'not met'}**"

    dnsdist_cpu = get("dnsdist", "cpu_us")
    cpu_ratio = [
        (label, get(b, "cpu_us") / dnsdist_cpu if get(b, "cpu_us") and dnsdist_cpu else None)
        for b, label in BINARIES.items()
    ]

    def qps_ratio(a: str, b: str) -> float | None:
        return get(a, "qps") / get(b, "qps") if get(a, "qps") and get(b, "qps") else None

    qps = [(BINARIES[b], qps_ratio(b, "dnsdist")) for b in BINARIES] + [
        (f"{BINARIES[b]} -T 2", qps_ratio(f"{b}-t2", "dnsdist-t2")) for b in BINARIES
    ]
    extra = [
        (label, per_extra_cluster(facts, b) / dnsdist_cpu
         if per_extra_cluster(facts, b) is not None and dnsdist_cpu else None)
        for b, label in BINARIES.items()
    ]
    shapes = [("UDP", "glommio", "smol"), ("TCP", "glommio-tcp", "smol-tcp"),
              ("-T 2", "glommio-t2", "smol-t2")]
    shapes += [(f"{n} cl.", f"glommio-c{n}", f"smol-c{n}") for n in CLUSTER_COUNTS]
    versus = [(name, qps_ratio(g, s)) for name, g, s in shapes if g in facts and s in facts]

    def p50_added(target: str) -> float | None:
        t, floor = get(target, "p50"), get("knot", "p50")
        return t - floor if t is not None and floor is not None else None

    dnsdist_added = p50_added("dnsdist")
    latency = [
        (label, p50_added(b) / dnsdist_added
         if p50_added(b) is not None and dnsdist_added else None)
        for b, label in BINARIES.items()
    ]
    rss = [(label, get(b, "peak_kb") / 1024 if get(b, "peak_kb") else None)
           for b, label in BINARIES.items()]
    lines = ["", "Goals of the lean path (issue 12) measured by this run:"]
    if smoke:
        lines[-1] = (
            "Goals of the lean path (issue 12), printed to check the report only: a smoke "
            "run's light load, often on debug binaries, says nothing about them:"
        )
    lines.append(line("1. CPU per gathered query ÷ dnsdist's per forwarded query ≤ 1.5",
                      cpu_ratio, lambda v: v <= 1.5, ".2f"))
    lines.append(line("2. gathered qps ÷ dnsdist's ≥ 0.8", qps, lambda v: v >= 0.8, ".2f"))
    lines.append(line("3. CPU per extra cluster ÷ dnsdist's per forwarded query ≤ 0.5",
                      extra, lambda v: v <= 0.5, ".2f"))
    if "glommio-pin" in facts:
        lines.append(line("4a. pinned to one CPU, gatherdns-glommio ÷ gatherdns-smol qps ≥ 1.1",
                          [("pinned", qps_ratio("glommio-pin", "smol-pin"))],
                          lambda v: v >= 1.1, ".2f"))
    lines.append(line("4b. gatherdns-glommio ÷ gatherdns-smol qps ≥ 1 in every shape",
                      versus, lambda v: v >= 1.0, ".2f"))
    lines.append(line(f"6. p50 latency added over Knot at {rate} qps ÷ dnsdist's ≤ 1.5",
                      latency, lambda v: v <= 1.5, ".1f"))
    lines.append(line("7. peak RSS under UDP saturation ≤ 20 MiB", rss,
                      lambda v: v <= 20, ".1f"))
    return lines


def clusters_table(facts: dict) -> list[str]:
    """CPU µs per gathered query for each cluster count and binary, the cost of one more
    cluster and its ratio to dnsdist's CPU per forwarded query."""
    first, last = CLUSTER_COUNTS[0], CLUSTER_COUNTS[-1]
    header = (
        ["CPU µs per gathered query (qps median)"]
        + [f"{n} cluster{'s' if n > 1 else ''}" for n in CLUSTER_COUNTS]
        + [
            f"per extra cluster, ({last} − {first}) ÷ {last - first}",
            "÷ dnsdist's CPU per forwarded query (goal ≤ 0.5)",
        ]
    )
    lines = ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    dnsdist = facts.get("dnsdist", {}).get("cpu_us")
    partial = False
    for binary, label in BINARIES.items():
        cells = [label]
        cpu = {}
        for n in CLUSTER_COUNTS:
            f = facts.get(f"{binary}-c{n}", {})
            cpu[n] = f.get("cpu_us")
            mark = "†" if f.get("short") or f.get("not_noerror") else ""
            partial = partial or bool(mark)
            cells.append(f"{cpu[n]:.1f}{mark} ({f['qps']:,.0f})" if cpu[n] is not None else "—")
        extra = per_extra_cluster(facts, binary)
        if extra is not None:
            cells.append(f"{extra:.1f}")
            cells.append(f"{extra / dnsdist:.2f}" if dnsdist else "—")
        else:
            cells += ["—", "—"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"- dnsdist's CPU per forwarded query (saturation rounds above): "
        + (f"{dnsdist:.1f} µs" if dnsdist else "—"),
        "- each binary's clusters process serves all four counts, one zone each (cN.local.), "
        "asked with EDNS (dnsperf -e) so that 8 clusters' 16 SRV fit one UDP reply; CPU is "
        "that process's, over its saturated runs, per completed query",
    ]
    if partial:
        lines.append(
            "- † some replies lacked a cluster or were errors (a sub-query timed out: see "
            "the warnings); their cost is in the figure all the same"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", type=Path)
    parser.add_argument("--strict", action="store_true", help="fail on any non-NOERROR reply")
    args = parser.parse_args()
    runs, memory, expected, conditions = load(args.results)
    cond = dict(conditions)
    rate = int(re.search(r"-Q (\d+)", cond.get("dnsperf", "-Q 20000"))[1])
    k = f"{rate // 1000}k" if rate % 1000 == 0 else str(rate)

    header = [
        "target",
        "qps median",
        "spread (min–max)",
        "avg latency, saturated",
        f"avg latency ± sd, {k} qps",
        f"p50 / p99, {k} qps",
        f"lost (saturated / {k})",
        "not NOERROR",
        "reply bytes: avg (full)",
        "CPU s / 1000 q",
        "RSS start → after each round (MiB)",
        "peak RSS (MiB)",
    ]
    facts = {}
    lines = ["# gatherdns load benchmark", ""]
    lines += [f"- {name}: {value}" for name, value in conditions]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for target in TARGETS:
        if any(t == target for _, t in runs):
            cells, facts[target] = row(target, runs, memory, expected.get(target), rate)
            lines.append("| " + " | ".join(cells) + " |")
    for target in CLUSTERED:
        if any(t == target for _, t in runs):
            _cells, facts[target] = row(target, runs, memory, expected.get(target), rate)

    def ratio(a: str, b: str) -> str:
        if facts.get(a, {}).get("qps") and facts.get(b, {}).get("qps"):
            return f"{facts[a]['qps'] / facts[b]['qps']:.2f}"
        return "—"

    def cpu(target: str) -> str:
        f = facts.get(target, {})
        return f"{f['cpu']:.4f}" if f.get("cpu") is not None else "—"

    def added(target: str) -> str:
        t, floor = facts.get(target, {}), facts.get("knot", {})
        if "latency" not in t or "latency" not in floor:
            return "—"
        text = f"{(t['latency'] - floor['latency']) * 1e6:+,.0f} µs avg"
        if t.get("p50") is not None and floor.get("p50") is not None:
            text += f", {(t['p50'] - floor['p50']) * 1e6:+,.0f} µs p50"
        return text

    lines += [
        "",
        f"- gathered qps / dnsdist qps: gatherdns-smol {ratio('smol', 'dnsdist')}, "
        f"gatherdns-glommio {ratio('glommio', 'dnsdist')} "
        "(each gathered query is two upstream queries; dnsdist's is one)",
        f"- added latency over Knot direct at {k} qps: gatherdns-smol {added('smol')}; "
        f"gatherdns-glommio {added('glommio')}; dnsdist {added('dnsdist')}",
        f"- cached answers: gatherdns-smol's cache / dnsdist's packet cache qps "
        f"{ratio('smol-cache', 'dnsdist-cache')}; CPU per 1000 cached answers "
        f"{cpu('smol-cache')} s vs {cpu('dnsdist-cache')} s (same gathered name; after the "
        "first query every answer of either comes from memory)",
        f"- gatherdns-glommio / gatherdns-smol qps: UDP {ratio('glommio', 'smol')}, "
        f"TCP 50 endpoints {ratio('glommio-tcp', 'smol-tcp')}",
        "- CPU is the target process only (all its threads), over the saturated runs; "
        "Knot's work for gathered queries is not in it. Figures are ratios on this machine "
        "at this moment, not promises.",
    ]
    pinned = cond.get("pinned phase", "skipped")
    if not pinned.startswith("skipped"):
        busy = [facts.get(t, {}).get("busy") for t in PINNED]
        busy_text = ", ".join(
            f"{BINARIES[t.removesuffix('-pin')]} {b:.0%}" for t, b in zip(PINNED, busy) if b
        )
        waiting = any(b is not None and b < 0.9 for b in busy)
        lines.append(
            f"- pinned to one CPU ({pinned}): gatherdns-glommio / gatherdns-smol qps "
            f"{ratio('glommio-pin', 'smol-pin')} (goal ≥ 1.1); share of its CPU each used: "
            f"{busy_text or '—'}"
            + (
                " (below 90%: the other CPU(s), Knot and dnsperf, set the pace, not the "
                "binary, and the ratio says little about the binaries)"
                if waiting
                else ""
            )
        )
    else:
        lines.append(f"- pinned to one CPU: {pinned}")
    clusters = cond.get("clusters phase", "skipped")
    if not clusters.startswith("skipped"):
        lines += clusters_table(facts)
    else:
        lines += ["", f"Clusters phase {clusters}."]
    lines += goals(facts, k, args.strict)
    problems, warnings = [], []
    for target, f in facts.items():
        if f["empty_runs"]:
            problems.append(f"{target}: {f['empty_runs']} dnsperf run(s) got no reply at all")
        if f["not_noerror"] and args.strict:
            problems.append(f"{target}: {f['not_noerror']} replies were not NOERROR")
        elif f["not_noerror"]:
            warnings.append(f"{target}: {f['not_noerror']} replies were not NOERROR")
        short = f"{target}: replies shorter than a full answer on average (partial or errors)"
        if f["short"] and args.strict:
            problems.append(short)
        elif f["short"]:
            warnings.append(short)
    required = [t for t in TARGETS if t not in PINNED]  # the two-thread targets included
    if not pinned.startswith("skipped"):
        required += PINNED
    if not clusters.startswith("skipped"):
        required += CLUSTERED
        for target in CLUSTERED:
            if facts.get(target, {}).get("lost"):
                warnings.append(f"{target}: {facts[target]['lost']} queries lost")
    missing = [t for t in required if t not in facts]
    if missing:
        problems.append(f"no runs for {', '.join(missing)}")
    if warnings:
        lines += ["", "Warnings (the servers' logs are in logs/):"]
        lines += [f"- {w}" for w in warnings]
    if problems:
        lines += ["", "Checks failed:"]
        lines += [f"- {p}" for p in problems]
    print("\n".join(lines))
    for p in problems:
        print(f"[load] check failed: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
