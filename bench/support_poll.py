"""Order traffic beside 200 open customer chats being polled (issue 17).

    python bench/support_poll.py [--sessions 200] [--duration 300] [--samples 40]
                                 [--message-every 30] [--spacing 1.5]

Starts a throw-away PostgreSQL and three real processes, as
``webhooks_e2e.py`` does: the emulator (its bucket: 2 requests/s, burst 50;
events signed and POSTed to the API), ``b24mw serve`` and ``b24mw worker``
with the default shared quota (2 requests/s, 120/min) and the default poller
(``B24MW_SUPPORT_POLL_INTERVAL_S`` 20, ``B24MW_SUPPORT_POLL_ROUND_S`` 2).

Order traffic is ``--samples`` task comments, one every ``--spacing``
seconds, each committed to the outbox by this process; its latency runs from
the commit to the start of the REST call that carries it at the emulator
(the comment's own event is read back too, so each costs about two
requests).  Measured twice in the same run:

- ``baseline_no_sessions``: nothing else going on;
- ``with_sessions``: ``--sessions`` open-line sessions (started as customers
  start them: ``ONCRMACTIVITYADD`` → the inbox → the worker), each receiving a
  client message every ``--message-every`` seconds, for ``--duration``
  seconds, the order samples spread over that time.

Also: the emulator's busiest 1 s and 60 s (every REST request, a batch is
one; the quota is 2 and 120) from the first session on (their intake, the
phase, the catch-up) and over the whole run (``whole_run``, with the
requests of its busiest second), and the session messages b24mw
stored against those sent (after the phase, the poller is given time to
catch up).  Prints one JSON document.  Bars: the quota held; every message
captured; order traffic's p95 ≤ 300 ms as in ``outbound_latency.py``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from sqlalchemy import text

from b24mw.kit.db import Database
from b24mw.outbox import Outbox
from common import (  # bench/ is on sys.path when run as a script
    QUOTA,
    arg_parser,
    bench_settings,
    create_tasks,
    deployment,
    last_seq,
    latency_stats,
    max_in_window,
    paced,
    print_json,
)

WEBHOOK_SECRET = "bench-webhook-secret"
TARGET_P95_MS = 300.0
PROBE = "order traffic probe"
MESSAGES = (
    "Здравствуйте, когда приедет курьер?",
    "Можно перенести доставку на вечер?",
    "Спасибо, жду.",
)


class CallLog:
    """Every REST request the emulator saw after ``since``, followed every 20 ms."""

    def __init__(self, emulator: str, since: int) -> None:
        self.emulator = emulator
        self.since = since
        self.calls: list[dict[str, Any]] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _follow(self) -> None:
        async with httpx.AsyncClient(base_url=self.emulator, timeout=30) as client:
            while not self._stop.is_set():
                response = await client.get("/_emulator/calls", params={"since": self.since})
                new = response.json()
                if new:
                    self.since = max(c["seq"] for c in new)
                    self.calls.extend(new)
                await asyncio.sleep(0.02)

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow())

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    def probe_arrival(self, text: str) -> float | None:
        """When the request carrying the comment ``text`` started at the emulator."""
        for call in self.calls:
            commands = call.get("commands") if call["method"] == "batch" else [call]
            for command in commands or []:
                if command.get("method") != "task.commentitem.add":
                    continue
                fields = (command.get("args") or {}).get("FIELDS") or {}
                if str(fields.get("POST_MESSAGE", "")).startswith(text):
                    return float(call["t"])
        return None

    def busiest_second(self) -> list[dict[str, Any]]:
        """The requests of the busiest 1 s window, to tell a limiter fault
        (several sent close together) from scheduling jitter on a loaded
        machine (a request held up, then handled just before the next ones)."""
        calls = sorted(self.calls, key=lambda c: float(c["t"]))
        best: list[dict[str, Any]] = []
        lo = 0
        for hi, call in enumerate(calls):
            while float(call["t"]) - float(calls[lo]["t"]) >= 1.0:
                lo += 1
            if hi - lo + 1 > len(best):
                best = calls[lo : hi + 1]
        first = float(best[0]["t"]) if best else 0.0
        return [
            {"seq": c["seq"], "at_ms": round((float(c["t"]) - first) * 1000), "method": c["method"]}
            for c in best
        ]

    def times(self, start: float, end: float) -> list[float]:
        return [float(c["t"]) for c in self.calls if start <= float(c["t"]) <= end]


async def order_traffic(
    db: Database, outbox: Outbox, log: CallLog, tasks: list[int], spacing: float, tag: str
) -> list[float]:
    """Comment jobs, one every ``spacing`` s; the commit → wire latency of each."""
    latencies: list[float] = []
    for n, task_id in enumerate(tasks):
        text = f"{PROBE} {tag} {n}"
        async with db.unit_of_work() as session:
            outbox.b24_comment(session, task_id, text)
        committed = time.time()
        deadline = time.monotonic() + 60
        arrived = log.probe_arrival(text)
        while arrived is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            arrived = log.probe_arrival(text)
        if arrived is not None:
            latencies.append(arrived - committed)
        await asyncio.sleep(spacing)
    return latencies


async def quiet(log: CallLog, seconds: float, within: float = 120) -> None:
    """Until the emulator has seen no request for ``seconds``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        last = max((float(c["t"]) for c in log.calls), default=0.0)
        if time.time() - last >= seconds:
            return
        await asyncio.sleep(0.2)


async def scalar(db: Database, sql: str) -> int:
    async with db.reader() as session:
        return int((await session.execute(text(sql))).scalar_one())


async def open_sessions(
    emulator: str, db: Database, count: int, within: float = 180
) -> tuple[list[int], float]:
    """``count`` sessions started by customers; waits until b24mw has each one
    registered and read once.  Their ids and the seconds that took."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=emulator, timeout=30) as client:
        ids = []
        for n in range(count):
            response = await client.post(
                "/_emulator/person/openlines/sessions",
                json={"line_id": 1 + n % 3, "connector": "telegram", "client_name": f"Клиент {n}"},
            )
            response.raise_for_status()
            ids.append(int(response.json()["id"]))
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await scalar(db, "SELECT count(*) FROM chat_sessions WHERE NOT read_due") >= count:
            break
        await asyncio.sleep(1.0)
    else:
        raise SystemExit(f"b24mw did not register {count} sessions within {within:g} s")
    return ids, time.monotonic() - started


async def client_messages(emulator: str, sessions: list[int], every: float, duration: float) -> int:
    """Each session gets a client message every ``every`` s (round robin) for
    ``duration`` s; the number sent."""
    rate = len(sessions) / every
    sent = 0
    async with httpx.AsyncClient(base_url=emulator, timeout=30) as client:
        async for n in paced(int(duration * rate), rate):
            session = sessions[n % len(sessions)]
            text = f"{MESSAGES[n % len(MESSAGES)]} ({n})"
            response = await client.post(
                f"/_emulator/person/openlines/sessions/{session}/messages",
                json={"from": "client", "text": text},
            )
            response.raise_for_status()
            sent += 1
    return sent


async def captured(db: Database) -> int:
    return await scalar(db, "SELECT count(*) FROM chat_messages WHERE sender_kind = 'client'")


def summary(values: list[float], samples: int) -> dict[str, Any]:
    return {"n": len(values), "lost": samples - len(values), **latency_stats(values, unit="ms")}


async def main(
    sessions: int,
    duration: float,
    samples: int,
    every: float,
    spacing: float,
    margin_s: float | None = None,
) -> dict[str, Any]:
    async with deployment({}, WEBHOOK_SECRET) as deployed:
        emulator = deployed.emulator
        if margin_s is not None:
            deployed.env["B24MW_B24_WINDOW_MARGIN_S"] = str(margin_s)
        async with httpx.AsyncClient(base_url=emulator, timeout=30) as control:
            tasks = await create_tasks(control, 2 * samples + 1)
            since = await last_seq(control)
        url = deployed.env["B24MW_DATABASE_URL"]
        settings = bench_settings(url, emulator)
        db, outbox = Database(settings), Outbox(settings)
        log = CallLog(emulator, since)
        log.start()
        try:
            deployed.start_worker()
            await asyncio.sleep(2.0)  # the task events, the first scans
            await quiet(log, 2.0)
            # One job not counted: the worker's first call opens its connection.
            await order_traffic(db, outbox, log, tasks[:1], spacing, "warm-up")
            await quiet(log, 2.0)
            baseline = await order_traffic(db, outbox, log, tasks[1 : samples + 1], spacing, "base")
            await quiet(log, 2.0)
            sessions_start = time.time()

            ids, intake_s = await open_sessions(emulator, db, sessions)
            await quiet(log, 2.0)
            phase_start = time.time()
            messages = asyncio.create_task(client_messages(emulator, ids, every, duration))
            # The order samples spread over the phase, the first after one poll interval.
            await asyncio.sleep(min(20.0, duration / 4))
            room = max(spacing, (duration - min(20.0, duration / 4)) / samples - 0.3)
            loaded = await order_traffic(
                db, outbox, log, tasks[samples + 1 : 2 * samples + 1], room, "load"
            )
            sent = await messages
            phase_end = time.time()
            catch_up_start = time.monotonic()
            stored = await captured(db)
            while stored < sent and time.monotonic() - catch_up_start < 120:
                await asyncio.sleep(1.0)
                stored = await captured(db)
            catch_up_s = time.monotonic() - catch_up_start
            all_end = time.time()
        finally:
            await log.close()
            await db.dispose()

    phase = log.times(phase_start, phase_end)
    # From the first session on: their intake, the phase and the catch-up.
    with_chats = log.times(sessions_start, all_end)
    everything = log.times(0.0, all_end)
    with_sessions = summary(loaded, samples)
    base = summary(baseline, samples)
    peaks = {
        "wire_max_per_1s": max_in_window(with_chats, 1.0),
        "wire_max_per_60s": max_in_window(with_chats, 60.0),
    }
    whole_1s, whole_60s = max_in_window(everything, 1.0), max_in_window(everything, 60.0)
    whole = {
        "wire_max_per_1s": whole_1s,
        "wire_max_per_60s": whole_60s,
        "busiest_1s": log.busiest_second(),
    }
    return {
        "benchmark": "support_poll",
        "engine": "postgresql",
        "quota": QUOTA,
        "sessions": sessions,
        "message_every_s": every,
        "duration_s": duration,
        "window_margin_s": margin_s if margin_s is not None else "default",
        "order_spacing_s": {"baseline": spacing, "with_sessions": round(room, 2)},
        "baseline_no_sessions": base,
        "with_sessions": with_sessions,
        "sessions_intake_s": round(intake_s, 1),
        "messages_sent": sent,
        "messages_captured": stored,
        "catch_up_after_phase_s": round(catch_up_s, 1),
        "wire_requests_in_phase": len(phase),
        "wire_requests_per_s_in_phase": round(len(phase) / max(1.0, phase_end - phase_start), 2),
        **peaks,
        "whole_run": whole,
        "quota_respected": peaks["wire_max_per_1s"] <= 2 and peaks["wire_max_per_60s"] <= 120,
        "quota_respected_whole_run": whole_1s <= 2 and whole_60s <= 120,
        "every_message_captured": stored == sent,
        "target_p95_ms": TARGET_P95_MS,
        "p95_target_met": with_sessions["p95_ms"] is not None
        and with_sessions["p95_ms"] <= TARGET_P95_MS
        and with_sessions["lost"] == 0,
    }


if __name__ == "__main__":
    parser = arg_parser(__doc__)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of chat traffic")
    parser.add_argument("--samples", type=int, default=40, help="order comments per phase")
    parser.add_argument(
        "--message-every", type=float, default=30.0, help="seconds between a session's messages"
    )
    parser.add_argument("--spacing", type=float, default=1.5, help="seconds between baseline jobs")
    parser.add_argument(
        "--window-margin-s",
        type=float,
        default=None,
        help="the worker's B24MW_B24_WINDOW_MARGIN_S (default: the setting's default)",
    )
    args = parser.parse_args()
    print_json(
        asyncio.run(
            main(
                max(1, args.sessions),
                max(10.0, args.duration),
                max(1, args.samples),
                max(1.0, args.message_every),
                max(0.5, args.spacing),
                args.window_margin_s,
            )
        )
    )
