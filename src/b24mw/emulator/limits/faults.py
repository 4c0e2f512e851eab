"""Injected faults: what a flaky portal or the proxy in front of it does to a call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FAULT_KINDS = (
    "latency",
    "http_500",
    "html_502",
    "hang",
    "query_limit",
    "operation_limit",
    "no_code",
)
PHASES = ("before", "after")
DEFAULT_LATENCY_S = {"latency": 1.0, "hang": 60.0}


class FaultSpecError(ValueError):
    pass


@dataclass
class Fault:
    id: int
    kind: str
    method: str | None
    count: int | None
    expires_at: float | None
    latency_s: float
    phase: str
    created_at: float
    # phase "after" only: the call runs this long after it arrived instead of
    # at once (a portal that applies a write after its answer was lost).
    apply_delay_s: float | None = None
    # no_code: the error_description of an error whose code is empty.
    description: str = "Not found"
    hits: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "method": self.method,
            "count": self.count,
            "expires_at": self.expires_at,
            "latency_s": self.latency_s,
            "phase": self.phase,
            "apply_delay_s": self.apply_delay_s,
            "description": self.description,
            "hits": self.hits,
        }


def _number(spec: Mapping[str, Any], key: str, *, integer: bool = False) -> float | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultSpecError(f"{key} must be a number")
    if value < 0 or (integer and int(value) != value):
        raise FaultSpecError(f"{key} must be a non-negative {'integer' if integer else 'number'}")
    return float(value)


class FaultSet:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(self, spec: Mapping[str, Any], now: float) -> Fault:
        unknown = set(spec) - {
            "kind",
            "method",
            "count",
            "duration_s",
            "latency_s",
            "phase",
            "apply_delay_s",
            "description",
        }
        if unknown:
            raise FaultSpecError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        kind = spec.get("kind")
        if kind not in FAULT_KINDS:
            raise FaultSpecError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        method = spec.get("method")
        if method is not None and (not isinstance(method, str) or not method.strip()):
            raise FaultSpecError("method must be a method name")
        phase = spec.get("phase", "before")
        if phase not in PHASES:
            raise FaultSpecError("phase must be 'before' or 'after'")
        count = _number(spec, "count", integer=True)
        if count == 0:
            raise FaultSpecError("count must be at least 1")
        duration = _number(spec, "duration_s")
        latency = _number(spec, "latency_s")
        apply_delay = _number(spec, "apply_delay_s")
        description = spec.get("description", "Not found")
        if not isinstance(description, str):
            raise FaultSpecError("description must be a string")
        if apply_delay is not None and (phase != "after" or kind == "latency"):
            raise FaultSpecError(
                "apply_delay_s needs phase 'after' and a kind that loses the answer"
            )
        fault = Fault(
            id=self._next_id,
            kind=kind,
            method=method.strip().lower() if method else None,
            count=int(count) if count is not None else None,
            expires_at=now + duration if duration is not None else None,
            latency_s=latency if latency is not None else DEFAULT_LATENCY_S.get(kind, 0.0),
            phase=phase,
            created_at=now,
            apply_delay_s=apply_delay,
            description=description,
        )
        self._next_id += 1
        self._faults.append(fault)
        return fault

    def take(self, method: str, now: float, *, top_level: bool) -> Fault | None:
        """The first live fault for this call, counting it as used.

        A fault without a method hits every top-level call; one with a method hits
        top-level calls to it and `batch` commands calling it.
        """
        if not self._faults:
            return None
        self._faults = [f for f in self._faults if f.expires_at is None or f.expires_at > now]
        for fault in self._faults:
            if fault.method is None and not top_level:
                continue
            if fault.method is not None and fault.method != method:
                continue
            fault.hits += 1
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
            return fault
        return None

    def active(self, now: float) -> list[Fault]:
        self._faults = [f for f in self._faults if f.expires_at is None or f.expires_at > now]
        return list(self._faults)

    def remove(self, fault_id: int) -> bool:
        before = len(self._faults)
        self._faults = [f for f in self._faults if f.id != fault_id]
        return len(self._faults) != before

    def clear(self) -> int:
        cleared = len(self._faults)
        self._faults.clear()
        return cleared
