"""Where SIEM lines go: ``stdout``, ``file:///path``, ``syslog://host:port``
(RFC 5424 over UDP) or ``syslog+tcp://host:port`` (RFC 5424 with RFC 6587
octet counting).

Writes are synchronous and small.  A sink that fails (full disk, collector
down) never fails the request that caused the line: the stream counts the
drop and logs it, and a TCP sink waits a few seconds before reconnecting so a
dead collector does not slow every rejection down.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

DEFAULT_SYSLOG_PORT = 514
# authpriv (10) * 8 + warning (4): security messages, readable by admins only.
SYSLOG_PRI = 10 * 8 + 4
APP_NAME = "b24mw"
TCP_TIMEOUT_S = 1.0
TCP_RETRY_AFTER_S = 5.0


class SinkSpecError(ValueError):
    """``B24MW_SIEM_SINK`` names no sink we can write to."""


class Sink(Protocol):
    def write(self, line: str, *, msgid: str, when: datetime) -> None: ...

    def close(self) -> None: ...


class SinkKind(StrEnum):
    STDOUT = "stdout"
    FILE = "file"
    SYSLOG_UDP = "syslog_udp"  # RFC 5424 datagrams
    SYSLOG_TCP = "syslog_tcp"  # RFC 5424 with RFC 6587 octet counting


@dataclass(frozen=True, slots=True)
class SinkSpec:
    kind: SinkKind
    path: str | None = None
    host: str | None = None
    port: int | None = None


def parse_sink(spec: str) -> SinkSpec:
    """Validate a sink URL; raise ``SinkSpecError`` saying what is wrong."""
    value = spec.strip()
    if value == "stdout":
        return SinkSpec(SinkKind.STDOUT)
    if value.startswith("file://"):
        path = value.removeprefix("file://")
        if not path:
            raise SinkSpecError("file:// needs a path, e.g. file:///var/log/b24mw/siem.jsonl")
        return SinkSpec(SinkKind.FILE, path=path)
    scheme, _, _ = value.partition("://")
    kinds = {
        "syslog": SinkKind.SYSLOG_UDP,
        "syslog+udp": SinkKind.SYSLOG_UDP,
        "syslog+tcp": SinkKind.SYSLOG_TCP,
    }
    if scheme not in kinds:
        raise SinkSpecError(
            "must be stdout, file:///path, syslog://host:port or syslog+tcp://host:port"
        )
    try:
        parts = urlsplit(value)
        port = parts.port or DEFAULT_SYSLOG_PORT
    except ValueError as exc:
        raise SinkSpecError(f"bad syslog address: {exc}") from None
    if not parts.hostname:
        raise SinkSpecError("syslog sink needs a host, e.g. syslog://127.0.0.1:514")
    return SinkSpec(kinds[scheme], host=parts.hostname, port=port)


def rfc5424(message: str, *, msgid: str, when: datetime, hostname: str | None = None) -> bytes:
    """One RFC 5424 message: ``<PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG``."""
    stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    host = _header_field(hostname if hostname is not None else socket.gethostname(), 255)
    header = f"<{SYSLOG_PRI}>1 {stamp} {host} {APP_NAME} {os.getpid()} {_header_field(msgid, 32)}"
    return f"{header} - {message}".encode()


def _header_field(value: str, limit: int) -> str:
    # Header fields are PRINTUSASCII without spaces; "-" is the nil value.
    cleaned = "".join(ch for ch in value if 33 <= ord(ch) <= 126)[:limit]
    return cleaned or "-"


class StdoutSink:
    def write(self, line: str, *, msgid: str, when: datetime) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def close(self) -> None:
        return None


class FileSink:
    """Opened per line with O_APPEND: lines from several processes never
    interleave, and a rotated file is picked up at the next line."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def write(self, line: str, *, msgid: str, when: datetime) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def close(self) -> None:
        return None


class SyslogUdpSink:
    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self._sock: socket.socket | None = None

    def write(self, line: str, *, msgid: str, when: datetime) -> None:
        if self._sock is None:
            family = socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET
            self._sock = socket.socket(family, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        self._sock.sendto(rfc5424(line, msgid=msgid, when=when), self.address)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class SyslogTcpSink:
    def __init__(
        self, host: str, port: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.address = (host, port)
        self._sock: socket.socket | None = None
        self._down_until = 0.0
        self._clock = clock

    def write(self, line: str, *, msgid: str, when: datetime) -> None:
        if self._clock() < self._down_until:
            raise OSError("syslog collector unreachable; retrying later")
        frame = rfc5424(line, msgid=msgid, when=when)
        try:
            if self._sock is None:
                self._sock = socket.create_connection(self.address, timeout=TCP_TIMEOUT_S)
            self._sock.sendall(str(len(frame)).encode() + b" " + frame)
        except OSError:
            self.close()
            self._down_until = self._clock() + TCP_RETRY_AFTER_S
            raise

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def open_sink(spec: SinkSpec) -> Sink:
    match spec.kind:
        case SinkKind.FILE:
            assert spec.path is not None
            return FileSink(spec.path)
        case SinkKind.SYSLOG_UDP | SinkKind.SYSLOG_TCP:
            assert spec.host is not None and spec.port is not None
            if spec.kind is SinkKind.SYSLOG_UDP:
                return SyslogUdpSink(spec.host, spec.port)
            return SyslogTcpSink(spec.host, spec.port)
        case SinkKind.STDOUT:
            return StdoutSink()
