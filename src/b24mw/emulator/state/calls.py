"""The record of every REST request the portal received, for assertions."""

from __future__ import annotations

from collections import deque
from typing import Any


class CallLog:
    def __init__(self, maxlen: int) -> None:
        self._calls: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._seq = 0

    def open(self, method: str, args: Any, t: float, headers: dict[str, str]) -> dict[str, Any]:
        self._seq += 1
        record: dict[str, Any] = {
            "seq": self._seq,
            "method": method,
            "args": args,
            "t": t,
            "status": None,
            "error": None,
            "headers": headers,
            "commands": None,
        }
        self._calls.append(record)
        return record

    def since(self, seq: int = 0, method: str | None = None) -> list[dict[str, Any]]:
        newer: list[dict[str, Any]] = []
        # Walk back from the newest: polling with `since` stays cheap on a long log.
        for record in reversed(self._calls):
            if record["seq"] <= seq:
                break
            if method is None or record["method"] == method:
                newer.append(record)
        newer.reverse()
        return newer

    @property
    def last_seq(self) -> int:
        return self._seq

    def clear(self) -> None:
        self._calls.clear()
