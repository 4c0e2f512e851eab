"""The bench suite's registry and table (``bench/suite.py``): every registered
benchmark exists and takes its arguments, and a benchmark added without
declared figures (issue 19's ``reads``) still gets rows beside its baseline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import suite  # noqa: E402  (bench/ is not a package: its scripts import `common`)


@pytest.mark.parametrize("bench", suite.REGISTRY, ids=lambda b: b.name)
def test_every_registered_benchmark_accepts_its_arguments(bench: suite.Bench) -> None:
    script = BENCH / f"{bench.name}.py"
    assert script.exists()
    # --help after the arguments: argparse rejects an unknown one before helping.
    for args in (bench.quick, bench.full):
        done = subprocess.run(
            [sys.executable, str(script), *args, "--help"], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr


def test_a_benchmark_without_declared_figures_gets_rows_beside_its_baseline() -> None:
    reads = {
        "benchmark": "reads",
        "c10": {
            "baseline_health": {"p95_ms": 3.0, "throughput_rps": 5000.0},
            "returns_first": {"p95_ms": 12.5, "throughput_rps": 800.0, "statuses": {"200": 9}},
        },
        "create": {"order_create": {"throughput_rps": 450.0}},
        "order_create_within_10pct": True,
    }
    results = {"benchmarks": {"reads": {"result": reads, "seconds": 9.0, "exit_code": 0}}}
    rows = suite.table(results).splitlines()
    assert "| `reads` | c10.returns_first p95_ms | 12.5 | 3 | ms |" in rows
    assert "| `reads` | create.order_create throughput_rps | 450 | — | req/s |" in rows
    assert "- `reads` (9 s): order_create_within_10pct ✓" in rows


def test_a_declared_figure_and_a_failed_run_are_shown() -> None:
    doc = {"create_c10": {"p95_ms": 21.0, "throughput_rps": 500.0}}
    doc |= {"baseline_health": {"p95_ms": 3.5, "throughput_rps": 5800.0}}
    results = {
        "benchmarks": {
            "returns_create": {"result": doc, "seconds": 1.0, "exit_code": 0},
            "archive": {"error": "boom", "seconds": 1.0, "exit_code": 1},
        }
    }
    text = suite.table(results)
    assert "| 21 | 3.5 | ms |" in text and "| 500 | 5,800 | req/s |" in text
    assert "| `archive` | failed (exit 1), see the JSON |" in text


def test_support_poll_shows_order_latency_beside_its_baseline_and_the_quota_verdicts() -> None:
    doc = {
        "baseline_no_sessions": {"p95_ms": 52.0},
        "with_sessions": {"p95_ms": 117.5},
        "wire_max_per_1s": 2,
        "wire_max_per_60s": 101,
        "messages_sent": 400,
        "messages_captured": 399,
        "quota_respected": True,
        "every_message_captured": False,
    }
    results = {"benchmarks": {"support_poll": {"result": doc, "seconds": 150.0, "exit_code": 0}}}
    text = suite.table(results)
    assert "beside 200 polled chats, p95 (baseline: no chats) | 117.5 | 52 | ms |" in text
    assert "(quota 120) | 101 | — | requests |" in text
    assert "| 399 | 400 | messages |" in text
    assert "quota_respected ✓, every_message_captured ✗" in text
