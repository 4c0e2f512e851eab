"""The PostgreSQL ingest path: one autocommitted statement on a small asyncpg
pool of its own.

Why not the ORM session: ingest is the hottest path of the service (the bar
is 1,000 signed events/s on one API process), and a session transaction
costs BEGIN, the statement, COMMIT and the SQLAlchemy machinery around them;
the shared pool's pre-ping adds three more round trips per checkout on
asyncpg (BEGIN, ``;``, ROLLBACK).  Together that is four times the CPU of
the insert.  A single statement is atomic on its own, so it is the whole
unit of work: the signature is remembered only when the inbox row was
inserted, and nothing needs rolling back on a replay.  Instead of pinging, a
statement that meets a dropped connection (database restart) is sent once
more on a fresh one — safe, because it is idempotent.  SQLite keeps the
ordinary unit of work (``service.ingest``).

One race is accepted: the same signed bytes sent concurrently under two
request ids can both be stored (neither sees the other's signature yet).
The event is authentic and processing is idempotent, so the cost is a
second read, not a second effect.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

T = TypeVar("T")
# What a connection dropped under us looks like; the statement never committed
# or committed and is idempotent, so one more try on a new connection is safe.
_DROPPED = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.exceptions.OperatorInterventionError,  # admin/crash shutdown, starting up
    asyncpg.InterfaceError,  # "connection is closed"
    OSError,
)

_COLUMNS = (
    "dedupe_key, event, task_id_b24, payload, status, attempts,"
    " next_attempt_at, errors, request_id, source_ip, received_at"
)
# $1 dedupe_key, $2 event, $3 task_id_b24, $4 payload, $5 request_id,
# $6 source_ip, $7 received_at
_VALUES = "$1::varchar, $2::varchar, $3::bigint, $4::json, 'pending', 0, $7, '[]'::json, $5, $6, $7"

ACCEPT_SIGNED = f"""
WITH seen AS (
    SELECT request_id FROM webhook_signatures WHERE digest = $8
), row AS (
    INSERT INTO webhook_inbox ({_COLUMNS})
    SELECT {_VALUES}
    WHERE NOT EXISTS (SELECT 1 FROM seen)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
), sig AS (
    INSERT INTO webhook_signatures (digest, request_id, seen_at)
    SELECT $8, $5, $7 WHERE EXISTS (SELECT 1 FROM row)
    ON CONFLICT (digest) DO NOTHING
    RETURNING 1
)
SELECT (SELECT id FROM row) AS inbox_id,
       (SELECT request_id FROM seen) AS seen_request_id,
       (SELECT count(*) FROM sig) AS remembered
"""
SIGNATURE_OWNER = "SELECT request_id FROM webhook_signatures WHERE digest = $1"
ACCEPT_UNSIGNED = f"""
INSERT INTO webhook_inbox ({_COLUMNS})
VALUES ({_VALUES})
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id
"""


async def _no_reset(_: asyncpg.Connection) -> None:
    # Nothing here leaves session state behind (no SET, LISTEN, locks or
    # cursors): skip asyncpg's per-release RESET ALL round trip.
    return None


class PgInbox:
    """The webhook inbox writer for PostgreSQL.  One per app (``WebhookRuntime``)."""

    def __init__(self, database_url: str, max_size: int) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self.dsn = url.render_as_string(hide_password=False)
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self.dsn, min_size=1, max_size=self.max_size, reset=_no_reset
                    )
        return self._pool

    async def _run(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        pool = await self._get_pool()
        try:
            async with pool.acquire() as conn:
                return await work(conn)
        except _DROPPED:
            # The server went away (restart): every pooled connection is dead.
            await pool.expire_connections()
            async with pool.acquire() as conn:
                return await work(conn)

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @staticmethod
    def _args(values: dict[str, Any]) -> list[Any]:
        return [
            values["dedupe_key"],
            values["event"],
            values["task_id_b24"],
            json.dumps(values["payload"], ensure_ascii=False, separators=(",", ":")),
            values["request_id"],
            values["source_ip"],
            values["received_at"],
        ]

    async def add_signed(
        self, values: dict[str, Any], digest: str
    ) -> tuple[int | None, str | None]:
        """``(inbox id, None)`` when stored; ``(None, request id)`` when the
        signed bytes were seen before under that request id (``None`` when the
        request id is taken by other bytes)."""
        args = [*self._args(values), digest]

        async def work(conn: asyncpg.Connection) -> tuple[int | None, str | None]:
            row = await conn.fetchrow(ACCEPT_SIGNED, *args)
            assert row is not None
            if row["inbox_id"] is not None:
                return row["inbox_id"], None
            owner = row["seen_request_id"]
            if owner is None:
                # Either the request id belongs to other bytes, or an identical
                # request committed while this one ran: ask again, now.
                owner = await conn.fetchval(SIGNATURE_OWNER, digest)
            return None, owner

        return await self._run(work)

    async def add_unsigned(self, values: dict[str, Any]) -> int | None:
        args = self._args(values)

        async def work(conn: asyncpg.Connection) -> int | None:
            inbox_id: int | None = await conn.fetchval(ACCEPT_UNSIGNED, *args)
            return inbox_id

        return await self._run(work)
