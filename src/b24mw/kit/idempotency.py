"""``Idempotency-Key`` for every unsafe ``/api/v1`` request (SPEC §3).

The database is the arbiter: the first request inserts the key row
(``in_flight``), concurrent ones find it and get 409 + ``Retry-After``, and
the finished response is stored on the row for replays.  That holds across
processes and machines sharing PostgreSQL.

Known window: the handler's transaction and the stored response are two
commits.  A crash between them leaves the key ``in_flight``; after
``STALE_AFTER`` another request takes it over and the handler runs again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import and_, bindparam, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from b24mw.kit.errors import AppError, BadRequest, FieldError, IdempotencyConflict
from b24mw.models.base import table_of, utcnow
from b24mw.models.ops import IdempotencyKey

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HEADER = "Idempotency-Key"
STALE_AFTER = timedelta(seconds=60)
# Responses a retry must get again.  Auth failures, throttling and 5xx are
# not stored: a retry after fixing them must run the handler.
NOT_STORED = frozenset({401, 403, 429})
SKIP_FLAG = "idempotency_skip"


def parse_key(raw: str) -> str:
    """1–128 visible characters, bare or in double quotes; raise ValueError otherwise."""
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not 1 <= len(value) <= 128 or not all(0x20 <= ord(c) <= 0x7E for c in value):
        raise ValueError("must be 1-128 printable ASCII characters, bare or quoted")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode()):
        digest.update(part + b"\n")
    digest.update(body)
    return digest.hexdigest()


class ClaimOutcome(Enum):
    CLAIMED = "claimed"
    REPLAY = "replay"
    MISMATCH = "mismatch"
    IN_FLIGHT = "in_flight"


@dataclass(frozen=True, slots=True)
class Stored:
    """What a key row says about the request it was first used with."""

    fingerprint: str
    state: str
    response_status: int | None
    response_headers: dict[str, str] | None
    response_body: bytes | None


@dataclass(slots=True)
class Claim:
    outcome: ClaimOutcome
    record: Stored | None = None


KEYS = table_of(IdempotencyKey)
_PK = (
    KEYS.c.key == bindparam("pk_key"),
    KEYS.c.endpoint == bindparam("pk_endpoint"),
    KEYS.c.actor_id == bindparam("pk_actor"),
)
# Built once: these run on every unsafe request, and a statement built per
# call costs more to construct than to execute.
_INSERT = {
    "postgresql": pg_insert(KEYS).on_conflict_do_nothing(),
    "sqlite": sqlite_insert(KEYS).on_conflict_do_nothing(),
}
_TAKEOVER = (
    update(KEYS)
    .where(
        *_PK,
        or_(
            KEYS.c.expires_at <= bindparam("now"),
            and_(
                KEYS.c.state == "in_flight",
                KEYS.c.locked_at < bindparam("stale_before"),
                KEYS.c.fingerprint == bindparam("fp"),
            ),
        ),
    )
    .values(
        fingerprint=bindparam("fp"),
        state="in_flight",
        request_id=bindparam("request_id"),
        created_at=bindparam("now"),
        locked_at=bindparam("now"),
        expires_at=bindparam("expires"),
        response_status=None,
        response_headers=None,
        response_body=None,
    )
)
_READ = select(
    KEYS.c.fingerprint,
    KEYS.c.state,
    KEYS.c.response_status,
    KEYS.c.response_headers,
    KEYS.c.response_body,
).where(*_PK)
_COMPLETE = (
    update(KEYS)
    .where(*_PK)
    .values(
        state="done",
        response_status=bindparam("status"),
        response_headers=bindparam("headers"),
        response_body=bindparam("body"),
    )
)
_RELEASE = delete(KEYS).where(*_PK, KEYS.c.state == "in_flight")
_PURGE = delete(KEYS).where(KEYS.c.expires_at <= bindparam("now"))


class IdempotencyRepository:
    """Each method is one or a few single statements, each atomic by itself,
    so they run on an autocommit connection (``Database.statements``)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def claim(
        self, key: str, endpoint: str, actor: str, fp: str, request_id: str | None, ttl: timedelta
    ) -> Claim:
        now = utcnow()
        pk = {"pk_key": key, "pk_endpoint": endpoint, "pk_actor": actor}
        row = {
            "key": key,
            "endpoint": endpoint,
            "actor_id": actor,
            "fingerprint": fp,
            "state": "in_flight",
            "request_id": request_id,
            "created_at": now,
            "locked_at": now,
            "expires_at": now + ttl,
        }
        insert = _INSERT[self.conn.dialect.name]
        # The unique key arbitrates the insert, the conditional update a
        # takeover of an expired or abandoned key.
        for _ in range(3):
            result: Any = await self.conn.execute(insert, row)
            if result.rowcount == 1:
                return Claim(ClaimOutcome.CLAIMED)
            takeover: Any = await self.conn.execute(
                _TAKEOVER,
                {
                    **pk,
                    "fp": fp,
                    "request_id": request_id,
                    "now": now,
                    "stale_before": now - STALE_AFTER,
                    "expires": now + ttl,
                },
            )
            if takeover.rowcount == 1:
                return Claim(ClaimOutcome.CLAIMED)
            found = (await self.conn.execute(_READ, pk)).first()
            if found is None:
                continue  # released between our statements: try to insert again
            stored = Stored(*found)
            if stored.fingerprint != fp:
                return Claim(ClaimOutcome.MISMATCH, stored)
            if stored.state == "done":
                return Claim(ClaimOutcome.REPLAY, stored)
            return Claim(ClaimOutcome.IN_FLIGHT, stored)
        return Claim(ClaimOutcome.IN_FLIGHT)

    async def complete(
        self, key: str, endpoint: str, actor: str, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        await self.conn.execute(
            _COMPLETE,
            {
                "pk_key": key,
                "pk_endpoint": endpoint,
                "pk_actor": actor,
                "status": status,
                "headers": headers,
                "body": body,
            },
        )

    async def release(self, key: str, endpoint: str, actor: str) -> None:
        await self.conn.execute(
            _RELEASE, {"pk_key": key, "pk_endpoint": endpoint, "pk_actor": actor}
        )

    async def purge_expired(self, now: datetime) -> int:
        result: Any = await self.conn.execute(_PURGE, {"now": now})
        return int(result.rowcount or 0)


REPLAYED_HEADERS = ("content-type", "location")


class IdempotencyMiddleware:
    """Pure ASGI: reads the body once, claims the key, runs the app, stores the answer."""

    def __init__(self, app: ASGIApp, *, prefix: str = "/api/v1/", exempt: tuple[str, ...] = ()):
        self.app = app
        self.prefix = prefix
        self.exempt = exempt

    def _applies(self, scope: Scope) -> bool:
        path: str = scope["path"]
        return (
            scope["type"] == "http"
            and scope["method"] in UNSAFE_METHODS
            and path.startswith(self.prefix)
            and not path.startswith(self.exempt)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._applies(scope):
            await self.app(scope, receive, send)
            return
        from b24mw.kit.problems import problem_response

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        app_state = scope["app"].state
        actor = app_state.verifier.try_subject(headers.get("authorization"))
        if actor is None:
            # Who-are-you comes first: the route answers 401, which is never stored.
            await self.app(scope, receive, send)
            return
        raw_key = headers.get("idempotency-key")
        try:
            if raw_key is None:
                raise ValueError("is required on POST, PUT, PATCH and DELETE")
            key = parse_key(raw_key)
        except ValueError as exc:
            code = "validation.required" if raw_key is None else "validation.format"
            error: AppError = BadRequest(
                f"{HEADER} {exc}.", errors=[FieldError(HEADER, str(exc))], code=code
            )
            await problem_response(error)(scope, receive, send)
            return

        body = await _read_body(receive)
        endpoint = f"{scope['method']} {scope['path']}"
        fp = fingerprint(
            scope["method"], scope["path"], scope.get("query_string", b"").decode(), body
        )
        request_id = scope.get("state", {}).get("request_id")
        db = app_state.db
        ttl = timedelta(hours=app_state.settings.idempotency_ttl_hours)
        async with db.statements() as conn:
            claim = await IdempotencyRepository(conn).claim(
                key, endpoint, actor, fp, request_id, ttl
            )

        if claim.outcome is ClaimOutcome.MISMATCH:
            error = IdempotencyConflict(
                "This Idempotency-Key was already used with a different request.",
                errors=[FieldError(HEADER, "already used with a different request body")],
            )
            await problem_response(error)(scope, receive, send)
            return
        if claim.outcome is ClaimOutcome.IN_FLIGHT:
            error = IdempotencyConflict(
                "A request with this Idempotency-Key is still being processed.",
                errors=[FieldError(HEADER, "request still in progress; retry later")],
                headers={"Retry-After": "1"},
            )
            await problem_response(error)(scope, receive, send)
            return
        if claim.outcome is ClaimOutcome.REPLAY:
            assert claim.record is not None
            await _replay(claim.record, send)
            return

        await self._run_claimed(scope, body, send, key, endpoint, actor)

    async def _run_claimed(
        self, scope: Scope, body: bytes, send: Send, key: str, endpoint: str, actor: str
    ) -> None:
        db = scope["app"].state.db
        captured: dict[str, Any] = {"status": 500, "headers": {}, "body": bytearray()}

        async def replay_receive() -> Message:
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        async def capture_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = {
                    k.decode("latin-1").lower(): v.decode("latin-1")
                    for k, v in message.get("headers", [])
                    if k.decode("latin-1").lower() in REPLAYED_HEADERS
                }
            elif message["type"] == "http.response.body":
                captured["body"].extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_receive, capture_send)
        except BaseException:
            async with db.statements() as conn:
                await IdempotencyRepository(conn).release(key, endpoint, actor)
            raise
        status = int(captured["status"])
        skip = scope.get("state", {}).get(SKIP_FLAG, False)
        async with db.statements() as conn:
            repo = IdempotencyRepository(conn)
            if status >= 500 or status in NOT_STORED or skip:
                await repo.release(key, endpoint, actor)
            else:
                await repo.complete(
                    key, endpoint, actor, status, captured["headers"], bytes(captured["body"])
                )


async def _read_body(receive: Receive) -> bytes:
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.extend(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return bytes(chunks)


async def _replay(record: Stored, send: Send) -> None:
    headers = [(k.encode(), v.encode()) for k, v in (record.response_headers or {}).items()]
    headers.append((b"idempotent-replayed", b"true"))
    body = record.response_body or b""
    headers.append((b"content-length", str(len(body)).encode()))
    await send(
        {"type": "http.response.start", "status": record.response_status, "headers": headers}
    )
    await send({"type": "http.response.body", "body": body})


def mark_not_stored(scope_state: dict[str, Any]) -> None:
    """Called where the handler never ran (request validation), so a corrected
    retry under the same key is treated as new, not as a mismatch."""
    scope_state[SKIP_FLAG] = True
