"""The bench suite: every benchmark in ``bench/``, one JSON file, one table.

    python -m bench [--full] [--only NAME ...] [--list] [--table RESULTS.json]

Each benchmark is its own script (``bench/<name>.py``) that starts what it
measures, measures its baseline in the same run and prints one JSON
document; the suite runs them one after the other as subprocesses (so one
that fails is reported and the others still run), gathers their documents
with the machine they ran on into ``var/bench/results-<UTC time>.json``,
and prints a Markdown table: each figure beside its baseline.

``REGISTRY`` below is the one place that lists them.  By default each runs
with quick settings (the suite takes minutes: smaller data, shorter phases,
figures noisier and not comparable with the bars); ``--full`` runs each with
its own defaults, the sizes its bar is stated for (allow an hour or more).

A benchmark without declared figures still gets rows: every phase summary in
its JSON (a dict with a p95, a throughput or a rate) beside the ``baseline*``
summary next to it, so adding a script is one line in the registry.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = ROOT / "var" / "bench"
# A phase summary's headline, in order of preference, when no figure is declared.
METRICS = ("p95_ms", "p95_s", "throughput_rps", "requests_per_s", "ops_per_s", "rows_per_s")


@dataclass(frozen=True)
class Figure:
    """One row of the table: a value and its same-run baseline, both as dotted
    paths into the benchmark's JSON document."""

    label: str
    value: str
    baseline: str | None
    unit: str


@dataclass(frozen=True)
class Bench:
    name: str  # bench/<name>.py
    quick: tuple[str, ...] = ()  # arguments for the default, quick suite
    full: tuple[str, ...] = ()  # arguments for --full (the script's defaults if empty)
    figures: tuple[Figure, ...] = ()  # empty: found in the JSON (see module doc)


F = Figure
REGISTRY: list[Bench] = [
    Bench(
        "emulator_throughput",
        quick=("--duration", "2"),
        figures=(
            F(
                "tasks.task.get, raw HTTP/1.1 (baseline: fixed JSON)",
                "clients.raw_http11.emulator.requests_per_s",
                "clients.raw_http11.baseline.requests_per_s",
                "req/s",
            ),
        ),
    ),
    Bench(
        "outbound_quota",
        quick=("--jobs", "1000", "--baseline-s", "5"),
        figures=(
            F(
                "comments delivered (baseline: unbatched)",
                "batched.ops_per_s",
                "baseline_unbatched.ops_per_s",
                "ops/s",
            ),
            F("busiest 1 s on the wire (quota 2)", "batched.max_requests_in_1s", None, "requests"),
        ),
    ),
    Bench(
        "outbound_latency",
        quick=("--samples", "10"),
        figures=(
            F(
                "job enqueued → call at Bitrix24, p95 (baseline: direct call)",
                "enqueue_to_bitrix24.p95_ms",
                "baseline_direct_call.p95_ms",
                "ms",
            ),
        ),
    ),
    Bench(
        "outbound_adaptive",
        quick=("--before-s", "5", "--after-s", "20"),
        figures=(
            F(
                "503s after the portal's cut (baseline: fixed rate)",
                "adaptive.query_limit_after_cut_total",
                "baseline_fixed_rate.query_limit_after_cut_total",
                "answers",
            ),
            F(
                "jobs dead (baseline: fixed rate)",
                "adaptive.jobs_dead",
                "baseline_fixed_rate.jobs_dead",
                "jobs",
            ),
        ),
    ),
    Bench(
        "webhooks_ingest",
        quick=("--duration", "3"),
        figures=(
            F(
                "signed events accepted (baseline: /health)",
                "accepted.throughput_rps",
                "baseline_health.throughput_rps",
                "req/s",
            ),
            F(
                "signed events accepted, p99 (baseline: /health)",
                "accepted.p99_ms",
                "baseline_health.p99_ms",
                "ms",
            ),
        ),
    ),
    Bench(
        "webhooks_e2e",
        quick=("--count", "8"),
        figures=(
            F(
                "tagged task → answer in it, p95 (baseline: direct comment)",
                "task_to_answer.p95_s",
                "baseline_direct_comment.p95_s",
                "s",
            ),
        ),
    ),
    Bench(
        "deliveries_latency",
        quick=("--count", "40"),
        figures=(
            F(
                "1C delivery → its task, p95 (baseline: direct task add)",
                "post_to_task.p95_s",
                "baseline_direct_add.p95_s",
                "s",
            ),
        ),
    ),
    Bench(
        "returns_create",
        quick=("--duration", "3"),
        figures=(
            F(
                "POST /returns, 10 clients, p95 (baseline: /health)",
                "create_c10.p95_ms",
                "baseline_health.p95_ms",
                "ms",
            ),
            F(
                "POST /returns, 10 clients (baseline: /health)",
                "create_c10.throughput_rps",
                "baseline_health.throughput_rps",
                "req/s",
            ),
        ),
    ),
    Bench(
        "orders_status",
        quick=("--duration", "3"),
        figures=(
            F(
                "status change, 10 clients, p95 (baseline: GET the order)",
                "status_c10.p95_ms",
                "baseline_get_c10.p95_ms",
                "ms",
            ),
            F(
                "status change, 10 clients (baseline: GET the order)",
                "status_c10.throughput_rps",
                "baseline_get_c10.throughput_rps",
                "req/s",
            ),
        ),
    ),
    Bench(
        "report",
        quick=("--orders", "20000", "--day-changes", "2000", "--json-requests", "50"),
        figures=(
            F(
                "deliveries report, a courier's month, p95 (baseline: /health)",
                "json_month_courier.p95_ms",
                "baseline_health_sequential.p95_ms",
                "ms",
            ),
            F(
                "deliveries report, a year as CSV (baseline: COPY)",
                "csv_year.rows_per_s",
                "baseline_copy_year.rows_per_s",
                "rows/s",
            ),
            F(
                "KMP4 export, a day's changes (baseline: COPY)",
                "kmp4_day.rows_per_s",
                "baseline_copy_day.rows_per_s",
                "rows/s",
            ),
        ),
    ),
    Bench(
        "archive",
        quick=("--rows", "100000", "--days", "4", "--duration", "3"),
        figures=(
            F(
                "archive run, end to end (baseline: COPY out)",
                "archive.rows_per_s_end_to_end",
                "baseline_copy.rows_per_s",
                "rows/s",
            ),
            F(
                "API p95 while archiving (baseline: API alone)",
                "api_during_archive.p95_ms",
                "api_baseline.p95_ms",
                "ms",
            ),
        ),
    ),
    Bench(
        "drills",
        quick=("--scale", "3"),
        full=("--scale", "10"),
        figures=tuple(
            F(
                f"{what} drill, ×scale (baseline: CI size)",
                f"scaled.drills.{name}[postgresql].seconds",
                f"baseline_scale_1.drills.{name}[postgresql].seconds",
                "s",
            )
            for name, what in (
                ("worker_kill", "worker SIGKILLed mid-batch"),
                ("database_restart", "PostgreSQL restarted under load"),
                ("portal_outage", "portal down, then back"),
            )
        ),
    ),
    # Lists and single reads at a million rows (issue 19); the quick suite seeds less.
    Bench("reads", quick=("--rows", "20000", "--duration", "1")),
    # Issue 17: 200 open chats polled beside order traffic; the quick suite
    # keeps the 200 sessions and shortens the phase to one 60 s window.
    Bench(
        "support_poll",
        quick=("--duration", "60", "--samples", "15"),
        figures=(
            F(
                "order comment → call at Bitrix24 beside 200 polled chats, p95 "
                "(baseline: no chats)",
                "with_sessions.p95_ms",
                "baseline_no_sessions.p95_ms",
                "ms",
            ),
            F(
                "busiest 1 s on the wire, chats and orders (quota 2)",
                "wire_max_per_1s",
                None,
                "requests",
            ),
            F(
                "busiest 60 s on the wire, chats and orders (quota 120)",
                "wire_max_per_60s",
                None,
                "requests",
            ),
            F(
                "chat messages captured (baseline: sent)",
                "messages_captured",
                "messages_sent",
                "messages",
            ),
        ),
    ),
]


# --- running ----------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with_model = Path("/proc/cpuinfo")
    if with_model.exists():
        for line in with_model.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def run_one(bench: Bench, full: bool) -> dict[str, Any]:
    """``python bench/<name>.py`` with the quick (or full) arguments; its JSON."""
    argv = [sys.executable, str(BENCH / f"{bench.name}.py"), *(bench.full if full else bench.quick)]
    started = time.monotonic()
    load = os.getloadavg()[0]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    entry: dict[str, Any] = {
        "argv": argv[1:],
        "seconds": round(time.monotonic() - started, 1),
        "load_average": {"start": round(load, 2), "end": round(os.getloadavg()[0], 2)},
        "exit_code": proc.returncode,
    }
    try:
        entry["result"] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        entry["error"] = (proc.stderr or proc.stdout)[-3000:]
    if proc.returncode != 0 and "error" not in entry:
        entry["error"] = proc.stderr[-3000:]
    return entry


# --- the table ----------------------------------------------------------------------


def lookup(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def found_figures(doc: dict[str, Any], prefix: str = "") -> Iterator[Figure]:
    """Rows for a benchmark with no declared figures: each phase summary beside
    the ``baseline*`` summary at its level (or the top level) with the same metric."""
    baselines = [k for k, v in doc.items() if k.startswith("baseline") and isinstance(v, dict)]
    for key, value in doc.items():
        if not isinstance(value, dict) or key.startswith("baseline"):
            continue
        metric = next((m for m in METRICS if isinstance(value.get(m), int | float)), None)
        if metric is None:
            yield from found_figures(value, f"{prefix}{key}.")
            continue
        base = next((b for b in baselines if metric in doc[b]), None)
        unit = metric.rsplit("_", 1)[-1].replace("rps", "req/s")
        yield Figure(
            f"{prefix}{key} {metric}",
            f"{prefix}{key}.{metric}",
            f"{prefix}{base}.{metric}" if base else None,
            unit,
        )


# Booleans in a benchmark's JSON that describe the run rather than judge it.
NOT_VERDICTS = frozenset({"pinned", "cursors", "adaptive"})


def checks(doc: dict[str, Any]) -> list[str]:
    """The benchmark's own pass/fail verdicts (targets, quota, database checks)."""
    out = []
    for key, value in doc.items():
        if key in NOT_VERDICTS:
            continue
        if isinstance(value, bool):
            out.append(f"{key} {'✓' if value else '✗'}")
        elif isinstance(value, dict) and key in ("targets_met", "met", "database_check", "target"):
            out += [f"{k} {'✓' if v else '✗'}" for k, v in value.items() if isinstance(v, bool)]
    return out


def number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:,.1f}"
    return f"{int(value):,}" if isinstance(value, int | float) else str(value)


def table(results: dict[str, Any]) -> str:
    """Markdown: benchmark, figure, value, baseline, unit; then each one's checks."""
    lines = ["| Benchmark | Figure | Value | Baseline | Unit |", "|---|---|---:|---:|---|"]
    notes = []
    declared = {b.name: b.figures for b in REGISTRY}
    for name, entry in results["benchmarks"].items():
        doc = entry.get("result")
        if not isinstance(doc, dict):
            lines.append(f"| `{name}` | failed (exit {entry['exit_code']}), see the JSON | | | |")
            continue
        for fig in declared.get(name) or tuple(found_figures(doc)):
            base = number(lookup(doc, fig.baseline)) if fig.baseline else "—"
            value = number(lookup(doc, fig.value))
            lines.append(f"| `{name}` | {fig.label} | {value} | {base} | {fig.unit} |")
        verdicts = checks(doc)
        if verdicts:
            notes.append(f"- `{name}` ({entry['seconds']:g} s): {', '.join(verdicts)}")
    return "\n".join([*lines, "", *notes])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--full", action="store_true", help="each benchmark at its bar's size")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these benchmarks only")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--table", type=Path, metavar="RESULTS", help="print a results file's table"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the results file goes")
    args = parser.parse_args(argv)
    if args.list:
        for bench in REGISTRY:
            print(f"{bench.name:22} quick: {' '.join(bench.quick) or '(defaults)'}")
        return 0
    if args.table:
        print(table(json.loads(args.table.read_text())))
        return 0
    chosen = [b for b in REGISTRY if not args.only or b.name in args.only]
    unknown = set(args.only or ()) - {b.name for b in REGISTRY}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    stamp = datetime.now(UTC)
    results: dict[str, Any] = {
        "started_at": stamp.isoformat(timespec="seconds"),
        "mode": "full" if args.full else "quick",
        "machine": machine(),
        "benchmarks": {},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"results-{stamp:%Y%m%dT%H%M%SZ}.json"
    for bench in chosen:
        print(f"running {bench.name} ...", file=sys.stderr, flush=True)
        entry = run_one(bench, args.full)
        results["benchmarks"][bench.name] = entry
        results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        path.write_text(json.dumps(results, indent=2, ensure_ascii=False))  # kept as it grows
        status = "ok" if "error" not in entry else f"FAILED (exit {entry['exit_code']})"
        print(f"  {bench.name}: {status} in {entry['seconds']:g} s", file=sys.stderr, flush=True)
    print(table(results))
    print(f"\nresults: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 1 if any("error" in e for e in results["benchmarks"].values()) else 0
