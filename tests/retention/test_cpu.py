"""The run's CPU work yields to the API and the worker's loop."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from b24mw.retention.cpu import CpuPool


def _my_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
async def test_compression_threads_run_at_the_archive_nice_and_the_loop_does_not() -> None:
    loop_nice = _my_nice()
    pool = CpuPool(nice=loop_nice + 7)
    try:
        assert await pool.run(_my_nice) == loop_nice + 7
    finally:
        pool.close()
    assert _my_nice() == loop_nice
