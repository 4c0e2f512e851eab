"""Where the run's CPU work (compression, read-back checks) happens: threads
of their own at a lower scheduling priority (``B24MW_ARCHIVE_NICE``).

The archive is a batch job beside a latency-sensitive API: measured on two
cores, the same run at nice 10 left the API's read p95 at about twice its
baseline instead of six times, at the same throughput (bench/archive.py).
On Linux the nice value is per thread, so inside ``b24mw worker`` only these
threads are lowered, never the event loop that serves the outbox.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def lower_priority(nice: int, *, whole_process: bool = False) -> None:
    """Run the calling thread (or process) at nice ``nice`` at least (never an
    error: where priorities cannot be set, it runs at the usual one)."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    who = 0 if whole_process else threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, who) < nice:
            os.setpriority(os.PRIO_PROCESS, who, nice)
    except OSError:
        pass


class CpuPool:
    def __init__(self, nice: int, workers: int = 2) -> None:
        self.executor = ThreadPoolExecutor(
            max_workers=workers,
            thread_name_prefix="retention-cpu",
            initializer=lower_priority,
            initargs=(nice,),
        )

    async def run(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        call = functools.partial(fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.executor, call)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
