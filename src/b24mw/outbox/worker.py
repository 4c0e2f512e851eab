"""``b24mw worker``: the outbox dispatcher plus the registered schedulers.

Two lanes run side by side: Bitrix24 calls (batched, behind the shared
limiter) and deliveries to event sinks and 1C.  Any number of workers on any
number of machines may run against one PostgreSQL: jobs are claimed with
``FOR UPDATE SKIP LOCKED`` and a lease, so no job runs twice within a lease and
a dead worker's jobs come back when its lease expires.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from functools import partial

import httpx
import structlog

from b24mw import registry
from b24mw.b24app.session import AppSession
from b24mw.bitrix24.client import Bitrix24Client, PortalAuth, Target, rate_limit_key
from b24mw.bitrix24.gateway import Bitrix24Gateway
from b24mw.bitrix24.limiter import LimiterConfig
from b24mw.bitrix24.throttle import SharedThrottle
from b24mw.kit.db import Database
from b24mw.kit.problems import is_database_unavailable
from b24mw.models.base import utcnow
from b24mw.outbox import metrics
from b24mw.outbox.b24_lane import B24Lane
from b24mw.outbox.delivery import Deliverer
from b24mw.outbox.delivery_lane import DeliveryLane
from b24mw.outbox.enqueue import Outbox
from b24mw.outbox.hooks import failure_hook_names, result_hook_names
from b24mw.outbox.lane import Lane
from b24mw.outbox.repository import OpenWork, OutboxRepository
from b24mw.outbox.schedulers import Scheduler, SchedulerFn, WorkerContext, registered_schedulers
from b24mw.settings import Settings

log = structlog.get_logger("b24mw.worker")
# While something keeps failing (the database is down), a loop waits twice as
# long after each failure, up to this: a handful of attempts a minute, not
# several tracebacks a second.
MAX_BACKOFF_S = 5.0


class DatabaseOutage:
    """The worker's view of the database: one warning when it becomes
    unavailable, one when it is back, however many loops notice in between."""

    def __init__(self) -> None:
        self.down_since: float | None = None

    def failed(self, exc: BaseException, where: str) -> bool:
        """Record a failure; True when it is the database being unavailable."""
        if not is_database_unavailable(exc):
            return False
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.warning("database_unavailable", where=where, error=str(exc)[:300])
        return True

    def succeeded(self) -> None:
        """A round that used the database went through."""
        if self.down_since is not None:
            down_s = round(time.monotonic() - self.down_since, 1)
            self.down_since = None
            log.warning("database_available", down_s=down_s)


class Backoff:
    """A retry delay that doubles on each failure, bounded, reset by a success."""

    def __init__(self, base_s: float, max_s: float = MAX_BACKOFF_S) -> None:
        self.base_s = base_s
        self.max_s = max(max_s, base_s)
        self.delay_s = base_s
        self.failures = 0

    def failed(self) -> float:
        self.failures += 1
        if self.failures > 1:
            self.delay_s = min(self.delay_s * 2, self.max_s)
        return self.delay_s

    def succeeded(self) -> None:
        self.failures = 0
        self.delay_s = self.base_s


class UnhandledJobs(Exception):
    """The queue holds jobs whose kind or hook this worker does not know."""


def unhandled(
    work: Iterable[OpenWork],
    job_kinds: Collection[str],
    result_hooks: Collection[str],
    failure_hooks: Collection[str],
) -> list[str]:
    """What the open jobs ask for that is not registered, one line each
    (``<n> job(s) of kind 'x'``), empty when every job can run."""
    missing: Counter[str] = Counter()
    for row in work:
        if row.kind not in job_kinds:
            missing[f"of kind {row.kind!r}"] += row.jobs
        if row.on_result is not None and row.on_result not in result_hooks:
            missing[f"naming the result hook {row.on_result!r}"] += row.jobs
        if row.on_dead is not None and row.on_dead not in failure_hooks:
            missing[f"naming the failure hook {row.on_dead!r}"] += row.jobs
    return [f"{n} pending or in-flight job(s) {what}" for what, n in sorted(missing.items())]


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


async def load_http_transport() -> None:
    """Load what httpx loads on its first request (httpcore, h11, anyio's
    event-loop backend) before any slot is taken: on a busy machine that
    first load took 100-250 ms, long enough for a worker's first Bitrix24
    request to reach the portal in the same second as the two slots after
    it (seen by tests/drills/test_two_by_two.py)."""
    import anyio.lowlevel
    import h11  # noqa: F401
    import httpcore  # noqa: F401

    await anyio.lowlevel.checkpoint()


class Worker:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        http: httpx.AsyncClient | None = None,
        worker_id: str | None = None,
        job_kinds: Mapping[str, str] = registry.JOB_KINDS,
    ) -> None:
        registry.install()
        self.job_kinds = job_kinds
        self.settings = settings
        self.db = db
        self.worker_id = worker_id or default_worker_id()
        self._owns_http = http is None
        self.http = http or httpx.AsyncClient(follow_redirects=False)
        self.poll_s = settings.outbox_poll_s
        longest = settings.b24_timeout_s + settings.b24_connect_timeout_s + settings.b24_max_wait_s
        if settings.outbox_lease_s <= longest:
            log.warning(
                "outbox_lease_shorter_than_a_request",
                lease_s=settings.outbox_lease_s,
                longest_request_s=longest,
                hint="a job may be reclaimed while its request still runs",
            )
        self.lanes: list[Lane] = []
        self.throttle: SharedThrottle | None = None
        gateway: Bitrix24Gateway | None = None
        portal = rate_limit_key(settings)
        if portal is not None:
            self.throttle = SharedThrottle(db, LimiterConfig.from_settings(settings), portal)
            client = Bitrix24Client(settings, self.http, self._portal_auth(self.throttle))
            gateway = Bitrix24Gateway(
                db, client, self.throttle, on_exchange=partial(metrics.outbound, "b24")
            )
            self.lanes.append(B24Lane(settings, db, self.worker_id, client, self.throttle))
        else:
            log.warning("b24_not_configured", hint="set B24MW_B24_URL; b24.call jobs wait")
        self.lanes.append(
            DeliveryLane(settings, db, self.worker_id, Deliverer(settings, self.http))
        )
        self.context = WorkerContext(
            settings=settings,
            db=db,
            http=self.http,
            b24=gateway,
            outbox=Outbox(settings),
            worker_id=self.worker_id,
        )
        self.schedulers: dict[str, Scheduler] = {s.name: s for s in registered_schedulers()}
        self.add_scheduler(
            "outbox.metrics",
            self._refresh_metrics,
            interval_s=settings.outbox_metrics_interval_s,
            drain=False,
        )
        self._last_run: dict[str, float] = {}
        # Per scheduler: its backoff and when it may run again after failing.
        self._scheduler_backoff: dict[str, Backoff] = {}
        self._not_before: dict[str, float] = {}
        self.outage = DatabaseOutage()

    def _portal_auth(self, throttle: SharedThrottle) -> PortalAuth:
        """The incoming webhook, or the installed application's tokens (oauth)."""
        if self.settings.b24_auth == "oauth":
            return AppSession(self.settings, self.db, self.http, throttle=throttle)
        target = Target.from_settings(self.settings)
        if target is None:
            raise ValueError("B24MW_B24_URL is not set")
        return target

    def add_scheduler(
        self, name: str, fn: SchedulerFn, *, interval_s: float, drain: bool = True
    ) -> None:
        """Run ``fn(context)`` every ``interval_s`` in this worker only."""
        self.schedulers[name] = Scheduler(name=name, fn=fn, interval_s=interval_s, drain=drain)

    async def run_once(self) -> int:
        """One claim-and-process round of every lane, plus one run of each ``drain=True``
        scheduler.  Interval-only schedulers (reconciliation...) run only in ``run()``."""
        jobs, _ = await self._round()
        return jobs

    async def drain(self, timeout: float = 10.0) -> int:  # noqa: ASYNC109 (public interface)
        """Process until no job is due now (and drain schedulers are idle)."""
        deadline = time.monotonic() + timeout
        total = 0
        while True:
            jobs, items = await self._round()
            total += jobs
            if jobs == 0 and items == 0 and not await self._any_due():
                return total
            if time.monotonic() > deadline:
                raise TimeoutError(f"outbox still has due jobs after {timeout} s")
            if jobs == 0 and items == 0:
                await asyncio.sleep(self.poll_s)

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then finish (or give back) what is held.

        Raises ``UnhandledJobs`` before any work when the queue holds a job
        this worker could only dead-letter (see ``check_queue``)."""
        if not await self._check_queue_when_reachable(stop):
            return
        log.info("worker_started", worker_id=self.worker_id)
        await load_http_transport()
        tasks = [asyncio.create_task(self._lane_loop(lane, stop)) for lane in self.lanes]
        tasks.append(asyncio.create_task(self._scheduler_loop(stop)))
        try:
            await stop.wait()
        finally:
            grace = self.settings.b24_timeout_s + self.settings.b24_max_wait_s + 5.0
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            log.info("worker_stopped", worker_id=self.worker_id)

    async def check_queue(self) -> None:
        """Refuse to start while a pending or in-flight job has a kind no lane
        claims or names a hook not in ``b24mw.registry``: most likely written by
        another version of b24mw, and this one would dead-letter it."""
        async with self.db.reader() as session:
            work = await OutboxRepository(session).open_work()
        missing = unhandled(work, self.job_kinds, result_hook_names(), failure_hook_names())
        if missing:
            raise UnhandledJobs(
                "the outbox holds jobs this worker has no handler for: "
                + "; ".join(missing)
                + ". Run the b24mw version that queued them, or register the "
                "handler in b24mw/registry.py."
            )

    async def _check_queue_when_reachable(self, stop: asyncio.Event) -> bool:
        """``check_queue`` once the database answers; False when stopped first."""
        backoff = Backoff(self.poll_s)
        while True:
            try:
                await self.check_queue()
            except UnhandledJobs:
                raise
            except Exception as exc:
                if not self.outage.failed(exc, "check_queue"):
                    raise
                if stop.is_set():
                    return False
                await _wait(stop, backoff.failed())
                continue
            self.outage.succeeded()
            return True

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def _round(self) -> tuple[int, int]:
        results = await asyncio.gather(*(lane.round() for lane in self.lanes))
        items = await self._run_schedulers(drain_only=True)
        return sum(results), items

    async def _any_due(self) -> bool:
        for lane in self.lanes:
            if await lane.due():
                return True
        return False

    async def _run_schedulers(self, *, drain_only: bool) -> int:
        """``drain_only``: every drain scheduler now; else each one whose interval is up."""
        handled = 0
        now = time.monotonic()
        for entry in list(self.schedulers.values()):
            if drain_only and not entry.drain:
                continue
            if not drain_only and now - self._last_run.get(entry.name, -1e9) < entry.interval_s:
                continue
            if not drain_only and now < self._not_before.get(entry.name, 0.0):
                continue
            self._last_run[entry.name] = now
            backoff = self._scheduler_backoff.setdefault(entry.name, Backoff(entry.interval_s))
            try:
                handled += await entry.fn(self.context) or 0
            except Exception as exc:
                # One broken scheduler must not stop the outbox or the others;
                # a failing one is retried later and later (bounded).
                self._not_before[entry.name] = time.monotonic() + backoff.failed()
                if not self.outage.failed(exc, entry.name):
                    log.exception("scheduler_failed", scheduler=entry.name)
            else:
                # Not evidence that the database is back: a scheduler may
                # have had nothing to do without asking it (the lanes tell).
                backoff.succeeded()
                self._not_before.pop(entry.name, None)
        return handled

    async def _lane_loop(self, lane: Lane, stop: asyncio.Event) -> None:
        backoff = Backoff(self.poll_s)
        while not stop.is_set():
            try:
                processed = await lane.round()
            except Exception as exc:
                # Database restart, network trouble: keep the process, try
                # again later and later; the outage is logged once.
                name = type(lane).__name__
                if not self.outage.failed(exc, name):
                    log.warning("lane_round_failed", lane=name, error=str(exc)[:300])
                await _wait(stop, backoff.failed())
                continue
            backoff.succeeded()
            self.outage.succeeded()
            if processed == 0:
                await _wait(stop, self.poll_s)

    async def _scheduler_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._run_schedulers(drain_only=False)
            await _wait(stop, self.poll_s)

    async def _refresh_metrics(self, ctx: WorkerContext) -> int:
        async with self.db.reader() as session:
            repo = OutboxRepository(session)
            now = utcnow()
            counts = await repo.counts()
            oldest = await repo.oldest_due(now)
        age = (now - oldest.next_attempt_at).total_seconds() if oldest is not None else None
        metrics.queue_state(counts, age)
        return 0


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass
