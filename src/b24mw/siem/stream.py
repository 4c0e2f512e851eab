"""Security events and the stream that writes them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from prometheus_client import Counter

from b24mw.siem.sinks import Sink, open_sink, parse_sink

log = structlog.get_logger("b24mw.siem")
SIEM_DROPPED = Counter("b24mw_siem_dropped_total", "SIEM lines the sink could not take")
USER_AGENT_MAX = 256


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """What a SIEM line says.  Deliberately no body, header values or secrets:
    only what identifies the attempt."""

    reason: str
    source_ip: str | None
    request_id: str | None
    path: str
    user_agent: str | None
    kind: str = "webhook_rejected"
    time: datetime = field(default_factory=_utcnow)

    def to_json(self) -> str:
        stamp = self.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        agent = self.user_agent[:USER_AGENT_MAX] if self.user_agent is not None else None
        return json.dumps(
            {
                "time": stamp,
                "event": self.kind,
                "reason": self.reason,
                "source_ip": self.source_ip,
                "request_id": self.request_id,
                "path": self.path,
                "user_agent": agent,
            },
            ensure_ascii=True,
            separators=(",", ":"),
        )


class SiemStream:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def emit(self, event: SecurityEvent) -> None:
        try:
            self.sink.write(event.to_json(), msgid=event.kind, when=event.time)
        except OSError as exc:
            SIEM_DROPPED.inc()
            log.warning("siem_sink_failed", error=type(exc).__name__, reason=event.reason)

    def emit_record(self, kind: str, fields: dict[str, object]) -> None:
        """A line about something other than a rejected request (retention
        deletes): ``time``, ``event`` and ``fields``, the same sink and rules."""
        when = _utcnow()
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        line = json.dumps(
            {"time": stamp, "event": kind, **fields}, ensure_ascii=True, separators=(",", ":")
        )
        try:
            self.sink.write(line, msgid=kind, when=when)
        except OSError as exc:
            SIEM_DROPPED.inc()
            log.warning("siem_sink_failed", error=type(exc).__name__, reason=kind)

    def close(self) -> None:
        self.sink.close()


def open_stream(spec: str) -> SiemStream:
    return SiemStream(open_sink(parse_sink(spec)))
