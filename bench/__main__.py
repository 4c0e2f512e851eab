"""``python -m bench``: the whole bench suite (see ``bench/suite.py``)."""

import sys
from pathlib import Path

# The benchmarks import their shared plumbing as ``common``; the suite likewise.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import main

sys.exit(main())
