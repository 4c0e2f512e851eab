"""The fault drills at a larger size: the slow versions of what ``make test`` runs.

    python bench/drills.py [--scale 10] [--backends postgresql]

Runs the scalable drills of ``tests/drills/`` (a worker SIGKILLed mid-batch,
PostgreSQL stopped under load, the portal down for a while) twice with
pytest, as real processes against the emulator: at scale 1 (the CI size,
the baseline) and at ``--scale`` (``B24MW_DRILL_SCALE``: that many times the
work in flight when the fault strikes, and outages that long times the CI's,
with retry schedules stretched to match).  Each drill ends with the shared
"account for everything" check (``tests/drills/ledger.py``): every order,
return and event accounted for, no duplicate effect at the portal.  Reports
per drill its outcome and seconds at each size.  Prints one JSON document.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from common import ROOT, arg_parser, print_json  # bench/ is on sys.path when run as a script

DRILLS = {
    "worker_kill": "tests/drills/test_worker_kill.py",
    "database_restart": "tests/drills/test_database_restart.py",
    "portal_outage": "tests/drills/test_portal_outage.py",
}


def run(scale: int, backends: str) -> dict[str, Any]:
    """pytest on the drills at ``scale``; per drill its outcome and seconds."""
    with tempfile.TemporaryDirectory(prefix="b24mw-drills-") as tmp:
        report = Path(tmp) / "junit.xml"
        env = os.environ | {"B24MW_DRILL_SCALE": str(scale), "B24MW_TEST_BACKENDS": backends}
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", f"--junitxml={report}"]
        started = time.monotonic()
        proc = subprocess.run(
            [*argv, *DRILLS.values()], cwd=ROOT, env=env, capture_output=True, text=True
        )
        wall = time.monotonic() - started
        drills: dict[str, Any] = {}
        for case in ET.parse(report).getroot().iter("testcase") if report.exists() else []:
            # classname: tests.drills.test_<drill>
            name = (case.get("classname") or "").rsplit(".", 1)[-1].removeprefix("test_")
            outcome = "passed"
            if case.find("failure") is not None or case.find("error") is not None:
                outcome = "failed"
            elif case.find("skipped") is not None:
                outcome = "skipped"
            param = (case.get("name") or "").partition("[")[2].rstrip("]") or backends
            drills[f"{name}[{param}]"] = {
                "outcome": outcome,
                "seconds": round(float(case.get("time") or 0), 1),
            }
    ran = [d for d in drills.values() if d["outcome"] != "skipped"]
    return {
        "scale": scale,
        "exit_code": proc.returncode,
        "wall_s": round(wall, 1),
        "drills": drills,
        "passed": sum(d["outcome"] == "passed" for d in ran),
        "failed": sum(d["outcome"] == "failed" for d in ran),
        "tail": proc.stdout[-1500:] if proc.returncode else "",
    }


def main(scale: int, backends: str) -> dict[str, Any]:
    baseline = run(1, backends)
    scaled = run(scale, backends)
    return {
        "benchmark": "drills",
        "backends": backends,
        "baseline_scale_1": baseline,
        "scaled": scaled,
        "all_passed": baseline["failed"] == scaled["failed"] == 0
        and baseline["exit_code"] == scaled["exit_code"] == 0,
    }


if __name__ == "__main__":
    parser = arg_parser(__doc__)
    parser.add_argument("--scale", type=int, default=10, help="B24MW_DRILL_SCALE of the slow run")
    parser.add_argument(
        "--backends", default="postgresql", help="B24MW_TEST_BACKENDS (sqlite, postgresql or both)"
    )
    args = parser.parse_args()
    print_json(main(args.scale, args.backends))
