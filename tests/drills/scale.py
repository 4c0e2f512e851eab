"""How big the drills are: 1 in ``make test`` (seconds each), more as bench
scenarios (``bench/drills.py`` sets ``B24MW_DRILL_SCALE``): more work in
flight when the fault strikes, and longer outages."""

from __future__ import annotations

import os

SCALE = max(1, int(os.environ.get("B24MW_DRILL_SCALE", "1")))
