"""Webhook ingest on PostgreSQL through one API process, against a baseline.

    python bench/webhooks_ingest.py [--duration 8] [--concurrency 10]

Starts a throw-away PostgreSQL (as the tests do), migrates it, runs
``b24mw serve`` (one uvicorn process, pinned to core 0 when ``taskset``
exists; PostgreSQL shares core 1 with this process) with HMAC webhook auth,
and from this process runs bounded phases with a minimal keep-alive HTTP/1.1
load generator:

- ``baseline_health``: ``GET /health`` — the framework and middlewares alone;
- ``accepted``: ``POST /api/v1/webhooks/bitrix24``, a Bitrix24 ``ONTASKADD``
  in its native form encoding, signed (``X-Signature``, ``X-Request-Timestamp``,
  a fresh ``X-Request-Id`` each) — verify, parse, the repeat checks (delivery
  id, a pending row with the same content, the per-content cap), inbox insert,
  commit, answer;
- ``duplicates``: the same signed request again and again (a proxy retrying)
  — answered ``duplicate`` (its delivery id is known);
- ``rejected``: a wrong signature — 401 and a line on the file SIEM sink.

Afterwards the database is checked: one inbox row per ``accepted``.  Bar:
≥ 1,000 accepted events/s with p99 ≤ 50 ms.  Prints one JSON document.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from common import (  # bench/ is on sys.path when run as a script
    SERVER_CORE,
    Build,
    arg_parser,
    can_pin,
    count_rows,
    health_request,
    pin_self,
    pinned_api,
    prepare_database,
    print_json,
    run_phase,
    throwaway_postgres,
)

WEBHOOK_SECRET = "bench-webhook-secret"
TARGET_RPS = 1000.0
TARGET_P99_MS = 50.0
PATH = "/api/v1/webhooks/bitrix24"


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


async def inbox_rows(url: str) -> int:
    return (await count_rows(url, ("webhook_inbox",)))["webhook_inbox"]


async def timed(port: int, concurrency: int, seconds: float, build: Build) -> dict[str, Any]:
    return (await run_phase(port, concurrency, seconds, build)).summary()


async def main(duration: float, concurrency: int, log_level: str) -> dict[str, Any]:
    with throwaway_postgres() as (url, tmp):
        await prepare_database(url)
        api = pinned_api(
            url,
            tmp,
            log_level,
            webhook_auth="hmac",
            webhook_secrets=f"{WEBHOOK_SECRET},bench-previous-secret",
            siem_sink=f"file://{tmp}/siem.jsonl",
        )
        with api as port:
            await run_phase(port, concurrency, 1.0, accepted)  # warm-up: pool, caches
            before = await inbox_rows(url)

            base = await timed(port, concurrency, duration, health_request)
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
        "pinned": can_pin(SERVER_CORE),
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


if __name__ == "__main__":
    parser = arg_parser(__doc__)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per phase (≤ 15)")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--log-level", default="WARNING", choices=["INFO", "WARNING"])
    args = parser.parse_args()
    duration = min(max(args.duration, 1.0), 15.0)
    pin_self()
    print_json(asyncio.run(main(duration, max(1, args.concurrency), args.log_level)))
