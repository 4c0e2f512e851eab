"""Webhook ingest on PostgreSQL through one API process, against a baseline.

    python bench/webhooks_ingest.py [--duration 8] [--concurrency 10]

Starts a throw-away PostgreSQL (as the tests do), migrates it, runs
``b24mw serve`` (one uvicorn process, pinned to core 0 when ``taskset``
exists) with HMAC webhook auth, and from this process (core 1) runs bounded
phases with a minimal keep-alive HTTP/1.1 load generator:

- ``baseline_health``: ``GET /health`` — the framework and middlewares alone;
- ``accepted``: ``POST /api/v1/webhooks/bitrix24``, a Bitrix24 ``ONTASKADD``
  in its native form encoding, signed (``X-Signature``, ``X-Request-Timestamp``,
  a fresh ``X-Request-Id`` each) — verify, parse, replay guard, inbox insert,
  commit, answer;
- ``duplicates``: the same signed request again and again (a proxy retrying)
  — answered ``duplicate`` from the replay guard;
- ``rejected``: a wrong signature — 401 and a line on the file SIEM sink.

Afterwards the database is checked: one inbox row per ``accepted``.  Bar:
≥ 1,000 accepted events/s with p99 ≤ 50 ms.  Prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.postgres import PostgresServer, free_port  # noqa: E402

JWT_SECRET = "bench-secret-that-is-long-enough-for-hs256!"
WEBHOOK_SECRET = "bench-webhook-secret"
TARGET_RPS = 1000.0
TARGET_P99_MS = 50.0
SERVER_CORE, CLIENT_CORE = "0", "1"
PATH = "/api/v1/webhooks/bitrix24"
Build = Callable[[int, int], bytes]


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0

    def summary(self, seconds: float, concurrency: int) -> dict[str, Any]:
        ok = sorted(self.latencies)

        def pct(p: float) -> float | None:
            if not ok:
                return None
            return round(ok[min(len(ok) - 1, int(p / 100 * len(ok)))] * 1000, 2)

        return {
            "concurrency": concurrency,
            "requests": len(ok),
            "duration_s": round(seconds, 2),
            "throughput_rps": round(len(ok) / seconds, 1),
            "p50_ms": pct(50),
            "p95_ms": pct(95),
            "p99_ms": pct(99),
            "max_ms": round(ok[-1] * 1000, 2) if ok else None,
            "mean_ms": round(statistics.fmean(ok) * 1000, 2) if ok else None,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "transport_errors": self.transport_errors,
        }


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for raw in lines[1:]:
        name, _, value = raw.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _client(port: int, stop_at: float, phase: Phase, build: Build, worker_no: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    try:
        while time.perf_counter() < stop_at:
            request = build(worker_no, n)
            n += 1
            started = time.perf_counter()
            try:
                writer.write(request)
                await writer.drain()
                status, _ = await asyncio.wait_for(_read_response(reader), timeout=30)
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                phase.transport_errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            phase.latencies.append(time.perf_counter() - started)
            phase.statuses[status] = phase.statuses.get(status, 0) + 1
    finally:
        writer.close()


async def run_phase(port: int, concurrency: int, seconds: float, build: Build) -> Phase:
    phase = Phase()
    stop_at = time.perf_counter() + seconds
    await asyncio.gather(*(_client(port, stop_at, phase, build, i) for i in range(concurrency)))
    return phase


def health(_: int, __: int) -> bytes:
    return b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n"


def event_body(task_id: int) -> bytes:
    pairs = [
        ("event", "ONTASKADD"),
        ("event_handler_id", "975"),
        ("data[FIELDS_BEFORE]", "undefined"),
        ("data[FIELDS_AFTER][ID]", str(task_id)),
        ("data[IS_ACCESSIBLE_BEFORE]", "N"),
        ("data[IS_ACCESSIBLE_AFTER]", "undefined"),
        ("ts", str(int(time.time()))),
        ("auth[domain]", "bench.bitrix24.ru"),
        ("auth[client_endpoint]", "https://bench.bitrix24.ru/rest/"),
        ("auth[server_endpoint]", "https://oauth.bitrix.info/rest/"),
        ("auth[member_id]", "d897063e1ce7c5eb9f04b9751eef5915"),
        ("auth[application_token]", "jvh9y1ulvt2m6k5or90v9mg8nn32ozas"),
    ]
    return urlencode(pairs).encode()


def signed(body: bytes, request_id: str, secret: str = WEBHOOK_SECRET) -> bytes:
    ts = str(int(time.time()))
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: bench\r\n"
        "User-Agent: bench-proxy\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"X-Request-Id: {request_id}\r\n"
        f"X-Request-Timestamp: {ts}\r\n"
        f"X-Signature: sha256={mac}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def accepted(worker_no: int, n: int) -> bytes:
    task_id = worker_no * 1_000_000 + n
    return signed(event_body(task_id), uuid.uuid4().hex)


def duplicates() -> Build:
    # One request per client, sent over and over (its timestamp stays fresh
    # for the whole bounded run).
    fixed = {w: signed(event_body(900_000_000 + w), f"dup-{w}") for w in range(1000)}
    return lambda worker_no, _: fixed[worker_no]


def rejected(worker_no: int, n: int) -> bytes:
    return signed(event_body(n), uuid.uuid4().hex, secret="not-the-secret")


def _pin(core: str) -> list[str]:
    return ["taskset", "-c", core] if shutil.which("taskset") and os.cpu_count() else []


async def migrate(url: str) -> None:
    from b24mw.kit.db import Database
    from b24mw.migrations import upgrade
    from b24mw.settings import Settings

    db = Database(Settings(_env_file=None, database_url=url, jwt_secret=JWT_SECRET))  # type: ignore[call-arg]
    try:
        await upgrade(db.engine)
    finally:
        await db.dispose()


async def inbox_rows(url: str) -> int:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return int(
                (await conn.execute(text("SELECT count(*) FROM webhook_inbox"))).scalar_one()
            )
    finally:
        await engine.dispose()


def start_api(url: str, port: int, log_level: str, tmp: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("B24MW_")}
    env.update(
        {
            "B24MW_DATABASE_URL": url,
            "B24MW_JWT_SECRET": JWT_SECRET,
            "B24MW_LOG_LEVEL": log_level,
            "B24MW_WEBHOOK_AUTH": "hmac",
            "B24MW_WEBHOOK_SECRETS": f"{WEBHOOK_SECRET},bench-previous-secret",
            "B24MW_SIEM_SINK": f"file://{tmp}/siem.jsonl",
            "B24MW_EVENT_SINKS": f"file://{tmp}/events.jsonl",
        }
    )
    cmd = [*_pin(SERVER_CORE), sys.executable, "-m", "b24mw", "serve", "--port", str(port)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"API exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(health(0, 0))
            await writer.drain()
            status, _ = await _read_response(reader)
            writer.close()
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("API did not start in 30 s")


async def timed(port: int, concurrency: int, seconds: float, build: Build) -> dict[str, Any]:
    started = time.perf_counter()
    phase = await run_phase(port, concurrency, seconds, build)
    return phase.summary(time.perf_counter() - started, concurrency)


async def main(duration: float, concurrency: int, log_level: str) -> dict[str, Any]:
    server = PostgresServer.start()
    proc = None
    try:
        name = "bench_" + uuid.uuid4().hex[:8]
        server.createdb(name)
        url = server.url(name)
        await migrate(url)
        port = free_port()
        tmp = Path(server.root)
        proc = start_api(url, port, log_level, tmp)
        await wait_ready(port, proc)
        await run_phase(port, concurrency, 1.0, accepted)  # warm-up: pool, caches
        before = await inbox_rows(url)

        base = await timed(port, concurrency, duration, health)
        ingest = await timed(port, concurrency, duration, accepted)
        dup = await timed(port, concurrency, duration / 2, duplicates())
        bad = await timed(port, concurrency, duration / 4, rejected)

        new_rows = await inbox_rows(url) - before
        siem_lines = len((tmp / "siem.jsonl").read_text().splitlines())
        ok = ingest["statuses"].get("200", 0)
        return {
            "benchmark": "webhooks_ingest",
            "engine": "postgresql",
            "api_processes": 1,
            "log_level": log_level,
            "pinned": bool(_pin(SERVER_CORE)),
            "baseline_health": base,
            "accepted": ingest,
            "duplicates": dup,
            "rejected_bad_signature": bad,
            "accepted_vs_baseline_throughput": (
                round(ingest["throughput_rps"] / base["throughput_rps"], 2)
                if base["throughput_rps"]
                else None
            ),
            "target": {"throughput_rps": TARGET_RPS, "p99_ms": TARGET_P99_MS},
            "target_met": bool(
                ingest["throughput_rps"] >= TARGET_RPS
                and ingest["p99_ms"] is not None
                and ingest["p99_ms"] <= TARGET_P99_MS
                and ingest["transport_errors"] == 0
                and set(ingest["statuses"]) == {"200"}
            ),
            "database_check": {
                "accepted_200": ok,
                "new_inbox_rows": new_rows,
                "one_row_per_accepted": new_rows == ok + concurrency,  # + the duplicate seeds
                "siem_lines": siem_lines,
                "one_siem_line_per_401": siem_lines == bad["statuses"].get("401", 0),
            },
        }
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per phase (≤ 15)")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--log-level", default="WARNING", choices=["INFO", "WARNING"])
    args = parser.parse_args()
    duration = min(max(args.duration, 1.0), 15.0)
    if _pin(CLIENT_CORE):
        os.sched_setaffinity(0, {int(CLIENT_CORE)})
    result = asyncio.run(main(duration, max(1, args.concurrency), args.log_level))
    print(json.dumps(result, indent=2))
