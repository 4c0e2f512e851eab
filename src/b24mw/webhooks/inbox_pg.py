"""The PostgreSQL ingest path: one autocommitted statement on a small asyncpg
pool of its own.

Why not the ORM session: ingest is the hottest path of the service (the bar
is 1,000 signed events/s on one API process), and a session transaction
costs BEGIN, the statement, COMMIT and the SQLAlchemy machinery around them;
the shared pool's pre-ping adds three more round trips per checkout on
asyncpg (BEGIN, ``;``, ROLLBACK).  Together that is four times the CPU of
the insert.  A single statement is atomic on its own, so it is the whole
unit of work, and nothing needs rolling back on a replay.  Instead of
pinging, a statement that meets a dropped connection (database restart) is
sent once more on a fresh one — safe: had the first one committed, the
second finds its row (a repeat, or a pending row to fold into).  SQLite keeps the
ordinary unit of work (``service.ingest``).

The decision (``webhooks.service``) is read from what the statement saw:
the delivery id already taken (and by which content), a pending row with the
same content to fold into, or the content's row count at its cap.  Two
identical events arriving at the same instant may both open a row (neither
sees the other yet): the cost is a second read, never a second effect.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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
    "dedupe_key, digest, event, task_id_b24, payload, status, attempts,"
    " next_attempt_at, errors, request_id, source_ip, received_at"
)
# $1 dedupe_key, $2 event, $3 task_id_b24, $4 payload, $5 request_id,
# $6 source_ip, $7 received_at, $8 digest, $9 rows allowed per digest
_VALUES = (
    "$1::varchar, $8::varchar, $2::varchar, $3::bigint, $4::json, 'pending', 0, $7,"
    " '[]'::json, $5, $6, $7"
)

ACCEPT = f"""
WITH known AS (
    SELECT digest FROM webhook_inbox WHERE dedupe_key = $1
), waiting AS (
    SELECT id FROM webhook_inbox WHERE digest = $8 AND status = 'pending' LIMIT 1
), used AS (
    SELECT count(*) AS n FROM webhook_inbox WHERE digest = $8
), row AS (
    INSERT INTO webhook_inbox ({_COLUMNS})
    SELECT {_VALUES}
    WHERE NOT EXISTS (SELECT 1 FROM known)
      AND NOT EXISTS (SELECT 1 FROM waiting)
      AND (SELECT n FROM used) < $9
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
)
SELECT (SELECT id FROM row) AS inbox_id,
       EXISTS (SELECT 1 FROM known) AS known,
       (SELECT digest FROM known) AS known_digest,
       EXISTS (SELECT 1 FROM waiting) AS waiting
"""
# After a conflict on the delivery id: who took it (a concurrent identical
# delivery, or other bytes under the same id)?
KNOWN_DIGEST = "SELECT digest FROM webhook_inbox WHERE dedupe_key = $1"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an accepted event went; ``webhooks.service`` answers from it."""

    # The new row, when one was opened.
    inbox_id: int | None = None
    # The delivery id was taken already, by content with this digest.
    known: bool = False
    known_digest: str | None = None
    # A pending row with the same content will read the task for it.
    waiting: bool = False


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
            # ASCII with escapes: a NUL or any other code point is stored as
            # ``\uXXXX`` (the json type keeps escapes as written) and never
            # reaches PostgreSQL's text, which refuses NUL.
            json.dumps(values["payload"], ensure_ascii=True, separators=(",", ":")),
            values["request_id"],
            values["source_ip"],
            values["received_at"],
            values["digest"],
        ]

    async def add(self, values: dict[str, Any], max_rows: int) -> Placement:
        """Open a row for the event unless its delivery id is known, a pending
        row has the same content, or the content has ``max_rows`` rows."""
        args = [*self._args(values), max_rows]

        async def work(conn: asyncpg.Connection) -> Placement:
            row = await conn.fetchrow(ACCEPT, *args)
            assert row is not None
            if row["inbox_id"] is not None or row["known"] or row["waiting"]:
                return Placement(
                    inbox_id=row["inbox_id"],
                    known=row["known"],
                    known_digest=row["known_digest"],
                    waiting=row["waiting"],
                )
            taken = await conn.fetchrow(KNOWN_DIGEST, values["dedupe_key"])
            if taken is not None:
                # An identical delivery committed while this one ran.
                return Placement(known=True, known_digest=taken["digest"])
            return Placement()

        return await self._run(work)
