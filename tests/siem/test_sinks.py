"""The SIEM stream's sinks: file, stdout, syslog RFC 5424 over UDP and TCP."""

from __future__ import annotations

import json
import re
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from b24mw.settings import SettingsError
from b24mw.siem import SecurityEvent, SinkSpecError, open_stream, parse_sink
from tests.support.config import make_settings

# <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD SP MSG
RFC5424 = re.compile(
    r"^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (\S+) b24mw (\d+) "
    r"webhook_rejected - (\{.*\})$"
)


def event(reason: str = "bad_signature") -> SecurityEvent:
    return SecurityEvent(
        reason=reason,
        source_ip="203.0.113.9",
        request_id="rid-1",
        path="/api/v1/webhooks/bitrix24",
        user_agent="curl/8",
        time=datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
    )


def test_syslog_udp_sink_sends_one_rfc5424_message() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(5)
        port = server.getsockname()[1]
        stream = open_stream(f"syslog://127.0.0.1:{port}")
        stream.emit(event("stale_timestamp"))
        datagram, _ = server.recvfrom(65535)
        stream.close()
    match = RFC5424.match(datagram.decode())
    assert match, datagram
    pri, stamp, _host, _pid, message = match.groups()
    assert int(pri) == 10 * 8 + 4  # authpriv.warning
    assert stamp == "2026-03-01T12:00:00.123456Z"
    line = json.loads(message)
    assert line["reason"] == "stale_timestamp"
    assert line["source_ip"] == "203.0.113.9"


def test_syslog_tcp_sink_uses_octet_counting() -> None:
    received = bytearray()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(5)
        port = server.getsockname()[1]

        def accept() -> None:
            conn, _ = server.accept()
            with conn:
                conn.settimeout(5)
                while len(received) < 2 or received.count(b"<") < 2:
                    chunk = conn.recv(65535)
                    if not chunk:
                        break
                    received.extend(chunk)

        thread = threading.Thread(target=accept)
        thread.start()
        stream = open_stream(f"syslog+tcp://127.0.0.1:{port}")
        stream.emit(event("replayed"))
        stream.emit(event("bad_token"))
        thread.join(5)
        stream.close()
    frames = []
    rest = bytes(received)
    while rest:
        length, _, rest = rest.partition(b" ")
        frames.append(rest[: int(length)].decode())
        rest = rest[int(length) :]
    assert [json.loads(RFC5424.match(f).group(5))["reason"] for f in frames] == [  # type: ignore[union-attr]
        "replayed",
        "bad_token",
    ]


def test_file_sink_appends_one_json_line_per_event(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "siem.jsonl"
    stream = open_stream(f"file://{path}")
    stream.emit(event("malformed"))
    stream.emit(event("too_large"))
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["reason"] for x in lines] == ["malformed", "too_large"]
    assert lines[0]["time"] == "2026-03-01T12:00:00.123456Z"


def test_stdout_sink_prints_the_line(capsys: pytest.CaptureFixture[str]) -> None:
    open_stream("stdout").emit(event("missing_header"))
    assert json.loads(capsys.readouterr().out)["reason"] == "missing_header"


def test_unreachable_collector_never_fails_the_caller() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stream = open_stream(f"syslog+tcp://127.0.0.1:{port}")
    stream.emit(event())  # connection refused: counted and logged, not raised


@pytest.mark.parametrize("spec", ["syslog://", "kafka://x", "file://", "syslog://h:notaport"])
def test_bad_sink_is_refused(spec: str) -> None:
    with pytest.raises(SinkSpecError):
        parse_sink(spec)


def test_bad_sink_setting_stops_the_process_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from b24mw.settings import load_settings

    monkeypatch.setenv("B24MW_SIEM_SINK", "kafka://broker")
    with pytest.raises(SettingsError, match="B24MW_SIEM_SINK"):
        load_settings()
    assert make_settings("sqlite+aiosqlite://", siem_sink="syslog://10.0.0.1").siem_sink
