"""Engines, sessions and the unit of work.

One unit of work per request or job: a write request's is opened by
``kit.uow``, a job's by ``Database.unit_of_work``; services only ``flush()``.
Reads get a ``ReadSession`` (one snapshot) or ``StatementReads`` (a bare
connection, each statement its own); ``b24mw.deps`` hands them to routes.
``WriteSession`` and ``ReadSession`` are distinct types, so mypy refuses a
write through a read.

Sessions are ``kit.staging.UnitSession``: rows a unit of work only appends
are staged and written with it (see there).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util import queue as sqla_queue

from b24mw.kit.staging import STAGED, UnitSession, settle
from b24mw.settings import Settings


def _prepare_sqlite_file(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_engine(url: str, *, immediate: bool) -> AsyncEngine:
    engine = create_async_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        # Let SQLAlchemy, not the driver, emit BEGIN (pysqlite's implicit
        # transactions defeat BEGIN IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the write lock up front: a deferred transaction that
        # upgrades later fails with "database is locked" instead of waiting.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


# What a repository runs its statements on: a session (a unit of work, a
# snapshot read) or a bare connection (a statement read, ``StatementReads``).
Executor = AsyncSession | AsyncConnection


async def core_connection(session: Executor) -> AsyncConnection:
    """The connection, for a Core statement that needs nothing of the ORM:
    ``Session.execute`` costs a short read about as much again as the
    statement itself (measured on the order history, issue 19).  What a
    unit of work holds (ORM changes, staged rows) is written first, as
    ``Session.execute`` would."""
    if isinstance(session, AsyncConnection):
        return session
    sync = session.sync_session
    if sync.new or sync.dirty or sync.deleted or sync.info.get(STAGED):
        await session.run_sync(settle)
    return await session.connection()


# How long a request waits in line for the pool before it asks the pool
# directly (the pool's own timeout).
GATE_TIMEOUT_S = 30.0


class PeakPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's queue pool, made with room for every connection the
    process may open (``db_pool_size`` + ``db_max_overflow``), that keeps
    open as many as the busiest moment of the last ``window_s`` seconds
    wanted, never fewer than ``keep``: checked out, or wanted by requests in
    line for one (``line``).

    The plain pool closes an extra connection the moment it comes back past
    ``pool_size`` idle, even while requests are in line for one (a request
    takes its place before it checks a connection out and gives it up after
    checking in) or while more than ``pool_size`` are busy a moment later:
    in 3 s of single reads it opened 556 new connections at 20 clients and
    414 at 200, a PostgreSQL backend and asyncpg's set-up each, and served
    0.46× and 0.81× the reads (``bench/reads.py --against``,
    ``against.pool``).  Here the extra connections live while the load
    needs them and close once it has stayed lower for ``window_s``, as
    ``db_max_overflow`` promises ("at peaks")."""

    keep = 0
    window_s = 30.0
    line: _Line | None = None  # None: no line (a worker's pool)
    _peak = 0
    _peak_at = 0.0

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        # ``record`` still counts as checked out: the demand includes it.
        checked_out = self.checkedout()
        demand = checked_out if self.line is None else max(checked_out, self.line.wanting)
        now = time.monotonic()
        if demand >= self._peak or now - self._peak_at >= self.window_s:
            self._peak, self._peak_at = demand, now
        excess = checked_out + self.checkedin() - max(self.keep, self._peak)
        if excess <= 0:
            super()._do_return_conn(record)
            return
        self._discard(record)
        # The window has passed: the idle ones beyond it go too (the queue
        # hands out the longest idle first).
        for _ in range(excess - 1):
            try:
                idle = self._pool.get(False)
            except sqla_queue.Empty:
                break
            self._discard(idle)

    def _discard(self, record: ConnectionPoolEntry) -> None:
        try:
            record.close()
        finally:
            self._dec_overflow()

    def recreate(self) -> PeakPool:
        # After an invalidation or ``dispose`` the engine makes a new pool of
        # this class; it keeps the same rule.
        pool = super().recreate()
        assert isinstance(pool, PeakPool)
        pool.keep, pool.window_s, pool.line = self.keep, self.window_s, self.line
        return pool


class Place:
    """A request's place in line for the pool (``Database._take_place``);
    ``release`` once its connection is back."""

    __slots__ = ("_gate", "_line")

    def __init__(self, gate: asyncio.Semaphore, line: _Line) -> None:
        self._gate = gate
        self._line = line

    def release(self) -> None:
        self._line.wanting -= 1
        self._gate.release()


class _Line:
    """How many requests of this process hold a place or wait for one, over
    every event loop's gate: the connections the line wants."""

    __slots__ = ("wanting",)

    def __init__(self) -> None:
        self.wanting = 0


class ReadSession(AsyncSession):
    """A session that only reads.  A repository method that writes takes a
    ``WriteSession``, so handing it a read session is a type error (mypy)
    instead of a change silently lost with the read's rollback."""


class WriteSession(ReadSession):
    """The session of a unit of work: it reads and writes, and its changes
    commit together (the request's, ``kit.uow``; a job's,
    ``Database.unit_of_work``)."""


class Database:
    """The engines of one process.  On SQLite, reads use a second engine whose
    transactions do not take the write lock; on PostgreSQL both are one."""

    def __init__(self, settings: Settings, *, pre_ping: bool = True) -> None:
        self.url = settings.database_url
        self.is_sqlite = settings.is_sqlite
        if self.is_sqlite:
            _prepare_sqlite_file(self.url)
            self.engine = _sqlite_engine(self.url, immediate=True)
            self.read_engine = _sqlite_engine(self.url, immediate=False)
        else:
            self.engine = create_async_engine(
                self.url,
                poolclass=PeakPool,
                # Room for every connection; ``PeakPool`` closes the extra
                # ones once the load has stayed lower for a while.
                pool_size=settings.db_pool_size + settings.db_max_overflow,
                max_overflow=0,
                # A ping per checkout costs a round trip; the API turns it off
                # and answers 503 for the one request that meets a dead
                # connection (the pool is then refreshed as a whole).
                pool_pre_ping=pre_ping,
                pool_timeout=30,
            )
            self.read_engine = self.engine
        self.pool_capacity = settings.db_pool_size + settings.db_max_overflow
        self._line = _Line()
        pool = self.engine.sync_engine.pool
        if isinstance(pool, PeakPool):
            pool.keep, pool.line = settings.db_pool_size, self._line
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self.sessions = async_sessionmaker(
            self.engine,
            class_=WriteSession,
            expire_on_commit=False,
            sync_session_class=UnitSession,
        )
        self.read_sessions = async_sessionmaker(
            self.read_engine,
            class_=ReadSession,
            expire_on_commit=False,
            sync_session_class=UnitSession,
        )
        # Single self-contained statements (idempotency bookkeeping) need no
        # BEGIN/COMMIT round trips on PostgreSQL.  SQLite keeps transactions:
        # its writes are serialised by BEGIN IMMEDIATE anyway.
        self.autocommit_engine = (
            self.engine
            if self.is_sqlite
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        # Reads whose statements need no common snapshot (a page and its
        # lines, one row): on PostgreSQL without BEGIN and ROLLBACK, two
        # round trips of a single read's three (``StatementReads``).
        self.statement_engine = self.read_engine if self.is_sqlite else self.autocommit_engine

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[WriteSession]:
        """A transaction that commits on success and rolls back on any error."""
        async with self.sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def statements(self) -> AsyncIterator[AsyncConnection]:
        """A bare connection whose statements each commit on their own
        (PostgreSQL autocommit; one transaction on SQLite); use only where
        every statement is atomic by itself."""
        async with self.autocommit_engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[ReadSession]:
        # close() (not rollback()) ends the transaction without expiring the
        # loaded objects, so callers can still read them afterwards.
        async with self.read_sessions() as session:
            yield session

    async def statement_reads(self) -> StatementReads:
        """A connection whose statements each see the database as it is when
        they run (PostgreSQL: no transaction around them), for the request
        to ``close``.  Readers queue first come, first served for the pool
        (``_take_place``)."""
        place = await self._take_place()
        try:
            return StatementReads(await self.statement_engine.connect(), place)
        except BaseException:
            if place is not None:
                place.release()
            raise

    @asynccontextmanager
    async def request_session(self) -> AsyncIterator[WriteSession]:
        """The session of a write request's unit of work (``kit.uow``),
        queued first come, first served like the readers."""
        async with self._fair_gate(), self.sessions() as session:
            yield session

    @asynccontextmanager
    async def _fair_gate(self) -> AsyncIterator[None]:
        place = await self._take_place()
        try:
            yield
        finally:
            if place is not None:
                place.release()

    async def _take_place(self) -> Place | None:
        """A place in line for the pool (the gate to release it to), or None
        when the request goes without.

        The pool's own queue lets a newcomer take a connection that was just
        handed back while a woken waiter goes to the back of the line: under
        200 clients some requests waited seconds while the median waited a
        tenth of that.  asyncio.Semaphore serves in arrival order.  Past the
        pool's own timeout the request goes to the pool without a place (the
        pool answers or times out), so a request that holds one place and
        wants another can never wait forever.  SQLite has no pool to queue for."""
        if self.is_sqlite:
            return None
        # One gate per event loop (a Semaphore belongs to the loop it waits on).
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(self.pool_capacity)
        # Counted from here, not once the place is taken: a waiter woken by a
        # release resumes some loop iterations later, and the pool must not
        # close the connection meant for it meanwhile (``PeakPool``).
        self._line.wanting += 1
        try:
            if not gate.locked():
                # A free place, and nobody waiting (``locked`` counts the line):
                # taken at once, without a timer.
                await gate.acquire()
            else:
                # ``asyncio.timeout``, not ``wait_for``: no task of its own per
                # request in line (Python 3.11's ``wait_for`` makes one).
                async with asyncio.timeout(GATE_TIMEOUT_S):
                    await gate.acquire()
        except TimeoutError:
            self._line.wanting -= 1
            return None
        except BaseException:
            self._line.wanting -= 1
            raise
        return Place(gate, self._line)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


class StatementReads:
    """One read request's connection (``b24mw.deps.ReadStatementsDep``) and
    its place in line for the pool, given back by the route once its answer
    is built (``kit.routing.ApiRoute``).  A bare connection, not a session:
    the ORM session's set-up and close were a visible share of a single
    read's time (issue 19; ``bench/reads.py --against`` measures it)."""

    __slots__ = ("_place", "connection")

    def __init__(self, connection: AsyncConnection, place: Place | None) -> None:
        self.connection = connection
        self._place = place

    async def close(self) -> None:
        try:
            await self.connection.close()
        finally:
            place, self._place = self._place, None
            if place is not None:
                place.release()
