"""Shared plumbing for the ``bench/*.py`` benchmarks.

``bench/`` is on ``sys.path`` when a script runs (``python bench/<name>.py``),
so each script does ``from common import ...``.  What is here:

- processes: the ``B24MW_`` environment, CPU pinning, spawning a command,
  waiting for its health URL, stopping it; a throw-away PostgreSQL (the tests'
  ``tests/support/postgres.py``) migrated and seeded with couriers;
- load: a minimal keep-alive HTTP/1.1 client on asyncio streams running N
  closed-loop (or paced) clients for a bounded time, and their statistics;
- the emulator: its call log (``/_emulator/calls``) and requests per window;
- the outbound benchmarks' in-process worker on a fresh SQLite database;
- printing the JSON document.

Imports of ``b24mw`` and SQLAlchemy are local to the functions that need them,
so a load-generating process stays light.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from b24mw.kit.db import Database
    from b24mw.outbox.worker import Worker
    from b24mw.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
JWT_SECRET = "bench-secret-that-is-long-enough-for-hs256!"
SERVER_CORE, CLIENT_CORE = 0, 1
EMULATOR_SECRET = "emulator"
REST = f"/rest/1/{EMULATOR_SECRET}"
Popen = subprocess.Popen[bytes]


# --- command line and output ------------------------------------------------


def arg_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser described by the first line of the script's docstring."""
    return argparse.ArgumentParser(description=(doc or "").splitlines()[0])


def print_json(result: dict[str, Any]) -> None:
    print(json.dumps(result, indent=2))


def token(role: str, sub: str) -> str:
    import jwt

    now = int(time.time())
    return jwt.encode(
        {"sub": sub, "role": role, "iat": now, "exp": now + 3600}, JWT_SECRET, "HS256"
    )


# --- processes ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def can_pin(core: int) -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) > core


def pinned(command: list[str], core: int) -> list[str]:
    """``command`` run on ``core`` (``taskset -c``) when the machine allows."""
    return ["taskset", "-c", str(core), *command] if can_pin(core) else command


def pin_postgres(datadir: Path, core: int = CLIENT_CORE) -> int | None:
    """Pin the postmaster (and so every backend it forks from now on) to
    ``core``, beside the load generator: the API process measured on
    ``SERVER_CORE`` then has its core to itself.  The core, or None."""
    if not (hasattr(os, "sched_setaffinity") and can_pin(core)):
        return None
    postmaster = int((datadir / "postmaster.pid").read_text().split()[0])
    os.sched_setaffinity(postmaster, {core})
    return core


def pin_self(core: int = CLIENT_CORE) -> int | None:
    """Pin this process (the load generator) to ``core``; the core, or None."""
    if hasattr(os, "sched_setaffinity") and can_pin(core):
        os.sched_setaffinity(0, {core})
        return core
    return None


def b24mw_env(**settings: str) -> dict[str, str]:
    """This environment without ``B24MW_*``, plus ``settings`` as ``B24MW_<NAME>``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("B24MW_")}
    env.update({f"B24MW_{k.upper()}": v for k, v in settings.items()})
    return env


def b24mw(*args: str) -> list[str]:
    return [sys.executable, "-m", "b24mw", *args]


def spawn(
    command: list[str],
    env: dict[str, str] | None = None,
    *,
    log: Path | None = None,
    stdout_to_log: bool = True,
) -> Popen:
    """Start ``command``.  Without ``log`` its output is discarded; with it, its
    stderr (and its stdout unless ``stdout_to_log`` is false) goes to that file."""
    out: IO[bytes] | int = subprocess.DEVNULL
    err: IO[bytes] | int = subprocess.DEVNULL
    if log is not None:
        err = log.open("wb")
        if stdout_to_log:
            out, err = err, subprocess.STDOUT
    return subprocess.Popen(command, env=env, stdout=out, stderr=err)


def wait_http(url: str, proc: Popen, log: Path | None = None, timeout: float = 30) -> None:
    """Until ``url`` answers 200; fails if ``proc`` exits first (with its log's tail)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{url}: process exited\n{tail}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not ready in {timeout:g} s")
        time.sleep(0.1)


def stop(proc: Popen, timeout: float = 10) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def running(
    command: list[str],
    env: dict[str, str] | None = None,
    *,
    health: str | None = None,
    log: Path | None = None,
    stdout_to_log: bool = True,
    stop_timeout: float = 10,
) -> Iterator[Popen]:
    """``command`` running (and answering ``health`` when given) until the block ends."""
    proc = spawn(command, env, log=log, stdout_to_log=stdout_to_log)
    try:
        if health is not None:
            wait_http(health, proc, log)
        yield proc
    finally:
        stop(proc, stop_timeout)


def keep_running(
    stack: ExitStack, env: dict[str, str], log: Path, *args: str, health: str | None = None
) -> Popen:
    """``b24mw <args>`` (its output to ``log``) until ``stack`` closes, then stopped
    (15 s to exit before it is killed)."""
    command = b24mw(*args)
    return stack.enter_context(running(command, env, health=health, log=log, stop_timeout=15))


@contextmanager
def emulator_process(*, rps: float, burst: float) -> Iterator[str]:
    """``b24mw emulator`` (output discarded) on a free port; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = b24mw("emulator", "--port", str(port), "--rps", str(rps), "--burst", str(burst))
    with running(
        [*command, "--operating-limit-s", "0"], b24mw_env(), health=f"{base}/_emulator/health"
    ):
        yield base


# --- PostgreSQL -----------------------------------------------------------------


@contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """This repository at ``rev`` in a temporary worktree (removed after)."""
    where = Path(tempfile.mkdtemp(prefix="b24mw-rev-")) / "tree"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(where), rev], check=True
    )
    try:
        yield where
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)])
        shutil.rmtree(where.parent, ignore_errors=True)


@contextmanager
def throwaway_postgres() -> Iterator[tuple[str, Path]]:
    """A fresh PostgreSQL server with one empty database, as the tests start it;
    yields the database URL and the server's temporary directory."""
    sys.path.insert(0, str(ROOT))
    from tests.support.postgres import PostgresServer

    server = PostgresServer.start()
    pin_postgres(server.datadir)
    try:
        name = "bench_" + uuid.uuid4().hex[:8]
        server.createdb(name)
        yield server.url(name), Path(server.root)
    finally:
        server.stop()


async def prepare_database(
    url: str,
    couriers: dict[str, int] | None = None,
    seed: Callable[[AsyncConnection], Awaitable[Any]] | None = None,
) -> None:
    """Migrate, then insert ``couriers`` (id -> Bitrix24 user id) and run ``seed``
    in one transaction."""
    from sqlalchemy import text

    from b24mw.kit.db import Database
    from b24mw.migrations import upgrade
    from b24mw.settings import Settings

    db = Database(Settings(_env_file=None, database_url=url, jwt_secret=JWT_SECRET))  # type: ignore[call-arg]
    try:
        await upgrade(db.engine)
        async with db.engine.begin() as conn:
            for cid, uid in (couriers or {}).items():
                await conn.execute(
                    text(
                        "INSERT INTO couriers (id, display_name, is_active, b24_user_id,"
                        " created_at, updated_at) VALUES (:id, :name, true, :uid, now(), now())"
                    ),
                    {"id": cid, "name": f"Bench {cid}", "uid": uid},
                )
            if seed is not None:
                await seed(conn)
    finally:
        await db.dispose()


async def count_rows(url: str, tables: tuple[str, ...]) -> dict[str, int]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            out = {}
            for table in tables:
                result = await conn.execute(text(f"SELECT count(*) FROM {table}"))
                out[table] = int(result.scalar_one())
            return out
    finally:
        await engine.dispose()


def api_env(url: str, tmp: Path, log_level: str = "WARNING", **settings: str) -> dict[str, str]:
    """The environment of the ``b24mw`` processes: this database, the bench JWT
    secret, CloudEvents to a file in ``tmp``, plus ``settings``."""
    return b24mw_env(
        database_url=url,
        jwt_secret=JWT_SECRET,
        log_level=log_level,
        event_sinks=f"file://{tmp}/events.jsonl",
        **settings,
    )


@contextmanager
def pinned_api(url: str, tmp: Path, log_level: str = "WARNING", **settings: str) -> Iterator[int]:
    """One ``b24mw serve`` on a free port, pinned to the server core, its output
    discarded (errors to ``tmp/api.err``); yields the port."""
    with pinned_api_process(url, tmp, log_level, **settings) as (port, _):
        yield port


@contextmanager
def pinned_api_process(
    url: str, tmp: Path, log_level: str = "WARNING", *, src: Path | None = None, **settings: str
) -> Iterator[tuple[int, Popen]]:
    """``pinned_api``, yielding its process too; ``src``: the ``src/`` of
    another checkout to serve instead of this one (errors to ``tmp/api-rev.err``)."""
    port = free_port()
    command = pinned(b24mw("serve", "--port", str(port)), SERVER_CORE)
    env = api_env(url, tmp, log_level, **settings)
    if src is not None:
        # Ahead of the editable install's path entry.
        env["PYTHONPATH"] = str(src)
    health = f"http://127.0.0.1:{port}/health"
    log = tmp / ("api.err" if src is None else "api-rev.err")
    with running(command, env, health=health, log=log, stdout_to_log=False) as proc:
        yield port, proc


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Deployment:
    """The emulator, ``b24mw serve`` and (once started) ``b24mw worker`` as real
    processes on one throw-away PostgreSQL; their logs in ``root``."""

    root: Path
    emulator: str
    api: str
    env: dict[str, str]
    procs: ExitStack

    def start_worker(self) -> None:
        keep_running(self.procs, self.env, self.root / "worker.log", "worker")


@asynccontextmanager
async def deployment(
    couriers: dict[str, int], webhook_secret: str | None = None
) -> AsyncIterator[Deployment]:
    """Migrate and seed ``couriers``, start the emulator (its default bucket) and
    the API; with ``webhook_secret`` the emulator signs its events with it and
    POSTs them to the API.  Everything is stopped and removed afterwards."""
    with throwaway_postgres() as (url, root), ExitStack() as procs:
        await prepare_database(url, couriers)
        emulator_port, api_port = free_port(), free_port()
        emulator = f"http://127.0.0.1:{emulator_port}"
        api = f"http://127.0.0.1:{api_port}"
        settings = {
            "b24_url": f"{emulator}{REST}/",
            "siem_sink": f"file://{root}/siem.jsonl",
            # serve and worker refuse a Bitrix24 setup without webhook secrets.
            "webhook_secrets": webhook_secret or "bench-webhook-secret-unused",
        }
        emulator_args = ["emulator", "--port", str(emulator_port)]
        if webhook_secret is not None:
            hook = f"{api}/api/v1/webhooks/bitrix24"
            emulator_args += ["--handler-url", hook, "--sign-secret", webhook_secret]
        env = api_env(url, root, **settings)
        emulator_health = f"{emulator}/_emulator/health"
        keep_running(procs, env, root / "emulator.log", *emulator_args, health=emulator_health)
        serve_args = ["serve", "--port", str(api_port)]
        keep_running(procs, env, root / "api.log", *serve_args, health=f"{api}/health")
        yield Deployment(root, emulator, api, env, procs)


# --- closed-loop load over raw HTTP/1.1 ---------------------------------------

Build = Callable[[int, int], bytes]  # (client number, request number) -> request bytes
OnStatus = Callable[[int, int], None]  # (client number, status) after each answer


def nearest_rank(ordered: list[float], p: float) -> float:
    """The value at index ``int(p% of n)`` of the sorted values (no interpolation)."""
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def latency_stats(values: list[float], unit: str = "ms") -> dict[str, float | None]:
    """p50/p95/p99/max/mean of latencies given in seconds: in ms to 2 decimals
    (``unit="ms"``) or in s to 3 decimals (``unit="s"``); None when there are none."""
    ordered = sorted(values)
    keys = [f"{name}_{unit}" for name in ("p50", "p95", "p99", "max", "mean")]
    if not ordered:
        return dict.fromkeys(keys)
    scale, digits = (1000, 2) if unit == "ms" else (1, 3)
    figures = [*(nearest_rank(ordered, p) for p in (50, 95, 99)), ordered[-1]]
    figures.append(statistics.fmean(ordered))
    return {key: round(v * scale, digits) for key, v in zip(keys, figures, strict=True)}


def count_statuses(statuses: dict[int, int]) -> dict[str, int]:
    return {str(k): v for k, v in sorted(statuses.items())}


@dataclass
class Phase:
    concurrency: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "requests": len(self.latencies),
            "duration_s": round(self.seconds, 2),
            "throughput_rps": round(len(self.latencies) / self.seconds, 1),
            **latency_stats(self.latencies),
            "statuses": count_statuses(self.statuses),
            "transport_errors": self.transport_errors,
        }


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
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


async def _client(
    port: int,
    stop_at: float,
    phase: Phase,
    build: Build,
    client_no: int,
    interval: float,
    offset: float,
    on_status: OnStatus | None,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    next_at = time.perf_counter() + offset
    n = 0
    try:
        while time.perf_counter() < stop_at:
            if interval:
                # Paced: one request per interval, so latency is service time
                # plus real queueing, not the closed loop's self-made backlog.
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            request = build(client_no, n)
            n += 1
            started = time.perf_counter()
            try:
                writer.write(request)
                await writer.drain()
                status, _ = await asyncio.wait_for(read_response(reader), timeout=30)
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                phase.transport_errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            phase.latencies.append(time.perf_counter() - started)
            phase.statuses[status] = phase.statuses.get(status, 0) + 1
            if on_status is not None:
                on_status(client_no, status)
    finally:
        writer.close()


async def run_phase(
    port: int,
    concurrency: int,
    seconds: float,
    build: Build,
    *,
    rate: float = 0.0,
    on_status: OnStatus | None = None,
) -> Phase:
    """``concurrency`` keep-alive clients for ``seconds``: closed loop (``rate``
    0: each client sends as soon as it has its answer) or paced at ``rate``
    requests/s in total, the clients spread over the interval."""
    started = time.perf_counter()
    phase = Phase(concurrency=concurrency)
    stop_at = time.perf_counter() + seconds
    interval = concurrency / rate if rate else 0.0
    await asyncio.gather(
        *(
            _client(port, stop_at, phase, build, i, interval, i * interval / concurrency, on_status)
            for i in range(concurrency)
        )
    )
    phase.seconds = time.perf_counter() - started
    return phase


def health_request(_: int, __: int) -> bytes:
    return b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n"


# --- the emulator's call log --------------------------------------------------


async def calls_since(control: httpx.AsyncClient, seq: int = 0) -> list[dict[str, Any]]:
    response = await control.get("/_emulator/calls", params={"since": seq})
    response.raise_for_status()
    calls: list[dict[str, Any]] = response.json()
    return calls


async def last_seq(control: httpx.AsyncClient) -> int:
    calls = await calls_since(control)
    return max((c["seq"] for c in calls), default=0)


async def follow_calls(
    emulator: str,
    since: int,
    handle: Callable[[list[dict[str, Any]]], bool],
    done: asyncio.Event,
    every: float = 0.02,
) -> None:
    """Poll the emulator's call log every ``every`` seconds, handing each new
    batch of calls to ``handle``, until ``done`` is set (or ``handle`` says so)."""
    async with httpx.AsyncClient(base_url=emulator) as client:
        while not done.is_set():
            calls = await calls_since(client, since)
            since = max([since, *(c["seq"] for c in calls)])
            if handle(calls):
                done.set()
            await asyncio.sleep(every)


async def produce_and_follow(
    emulator: str,
    since: int,
    handle: Callable[[list[dict[str, Any]]], bool],
    produce: Callable[[], Awaitable[None]],
    settle_s: float,
) -> float:
    """Run ``produce`` while following the emulator's call log after ``since``
    with ``handle``, then give ``handle`` up to ``settle_s`` more seconds to say it has
    seen everything; the seconds from the start of ``produce`` to then."""
    done = asyncio.Event()
    poller = asyncio.create_task(follow_calls(emulator, since, handle, done))
    started = time.perf_counter()
    await produce()
    try:
        await asyncio.wait_for(done.wait(), timeout=settle_s)
    except TimeoutError:
        done.set()
    await poller
    return time.perf_counter() - started


async def paced(count: int, rate: float) -> AsyncIterator[int]:
    """0 .. count-1, the n-th at ``n / rate`` seconds from the start."""
    start = time.perf_counter()
    for n in range(count):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        yield n


def max_in_window(times: list[float], width: float) -> int:
    """The most requests that started within any sliding window of ``width`` seconds."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def wire_peaks(times: list[float]) -> dict[str, int]:
    """Requests on the wire in the busiest 1 s and 60 s."""
    return {
        "wire_max_per_1s": max_in_window(times, 1.0),
        "wire_max_per_60s": max_in_window(times, 60.0),
    }


# The worker's default shared quota, and the emulator's default bucket.
QUOTA = {"rps": 2, "rpm": 120, "emulator_bucket": "2/s, burst 50"}


def p95_within(stats: dict[str, Any], target_s: float) -> bool:
    return stats["p95_s"] is not None and stats["p95_s"] <= target_s


def quota_respected(result: dict[str, Any]) -> bool:
    """Within the shared quota of 2 requests/s and 120/min."""
    return bool(result["wire_max_per_1s"] <= 2 and result["wire_max_per_60s"] <= 120)


# --- the outbound benchmarks: an in-process worker on SQLite ------------------


def bench_settings(database_url: str, base: str, **overrides: Any) -> Settings:
    from b24mw.settings import Settings

    values: dict[str, Any] = {
        "database_url": database_url,
        "b24_url": f"{base}{REST}/",
        "event_sinks": "file:///dev/null",
        "log_level": "ERROR",
        "log_json": True,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    from b24mw.kit.db import Database
    from b24mw.migrations import upgrade

    with tempfile.TemporaryDirectory(prefix="b24mw-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        db = Database(bench_settings(url, "http://unused"))
        await upgrade(db.engine)
        await db.dispose()
        yield url


async def create_tasks(control: httpx.AsyncClient, count: int) -> list[int]:
    async def one(i: int) -> int:
        response = await control.post(
            "/_emulator/person/tasks", json={"title": f"Bench {i}", "responsible_id": 1}
        )
        response.raise_for_status()
        return int(response.json()["id"])

    ids: list[int] = []
    for start in range(0, count, 50):
        ids.extend(await asyncio.gather(*(one(i) for i in range(start, min(count, start + 50)))))
    return ids


async def status_counts(db: Database) -> dict[str, int]:
    from sqlalchemy import func, select

    from b24mw.models.ops import OutboxJob

    async with db.reader() as session:
        rows = await session.execute(
            select(OutboxJob.status, func.count()).group_by(OutboxJob.status)
        )
        return {status: int(n) for status, n in rows.all()}


async def make_due(db: Database) -> None:
    """Every pending job due now (enqueued jobs become due together at the start)."""
    from sqlalchemy import func, update

    from b24mw.models.ops import OutboxJob

    async with db.unit_of_work() as session:
        await session.execute(
            update(OutboxJob)
            .where(OutboxJob.status == "pending")
            .values(next_attempt_at=func.current_timestamp())
        )


@asynccontextmanager
async def running_worker(settings: Settings, db: Database) -> AsyncIterator[Worker]:
    from b24mw.kit.logging import configure_logging
    from b24mw.outbox.worker import Worker

    configure_logging("ERROR", True)
    async with httpx.AsyncClient() as http:
        worker = Worker(settings, db, http=http, worker_id="bench")
        # Bench only the outbox: no schedulers of other domains.
        worker.schedulers = {k: v for k, v in worker.schedulers.items() if k == "outbox.metrics"}
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            yield worker
        finally:
            stop.set()
            await task
