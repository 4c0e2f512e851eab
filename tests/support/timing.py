"""Counting requests in time windows, for the rate-limit tests."""

from __future__ import annotations


def max_in_window(times: list[float], width: float) -> int:
    """The most requests that started within any sliding window of ``width`` seconds."""
    times = sorted(times)
    best = lo = 0
    for hi, t in enumerate(times):
        while t - times[lo] >= width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best
