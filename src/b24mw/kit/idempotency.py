"""``Idempotency-Key`` for every unsafe ``/api/v1`` request (SPEC §3).

The database is the arbiter, and the key lives in the request's own unit of
work: the middleware opens the transaction, claims the key in it, lets the
route write through the same session (``kit.db.Session``), stores the answer
on the key row and commits once — the change and its stored answer commit
together or not at all, and only then is the answer sent.

While a request holds its key, a second one with the same key gets 409 +
``Retry-After``: on PostgreSQL the claim takes a transaction-scoped advisory
lock on the key (released by the commit or rollback, also when the process
dies); on SQLite writers are serialised, so the second simply waits its turn
and replays.  A domain error (4xx) rolls the change back and stores the answer
in its own statement.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, LargeBinary, String, bindparam, delete, select, text
from sqlalchemy import update as sa_update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from b24mw.kit.db import REQUEST_SESSION
from b24mw.kit.errors import AppError, BadRequest, FieldError, IdempotencyConflict
from b24mw.models.base import UtcDateTime, table_of, utcnow
from b24mw.models.ops import IdempotencyKey

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HEADER = "Idempotency-Key"
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
    expires_at: datetime


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
_STORED_COLUMNS = (
    KEYS.c.fingerprint,
    KEYS.c.state,
    KEYS.c.response_status,
    KEYS.c.response_headers,
    KEYS.c.response_body,
    KEYS.c.expires_at,
)
# Built once: these run on every unsafe request, and a statement built per
# call costs more to construct than to execute.
#
# PostgreSQL, one round trip: take the key's advisory lock (not free: another
# transaction holds the key), insert the row if there is none, and return the
# row that was there before (the statement's snapshot does not see its own
# insert).
_PG_CLAIM = (
    text(
        """
WITH lock AS (
    SELECT pg_try_advisory_xact_lock(hashtextextended(:lock_name, 0)) AS got
), ins AS (
    INSERT INTO idempotency_key
        (key, endpoint, actor_id, fingerprint, state, request_id,
         created_at, locked_at, expires_at)
    SELECT :pk_key, :pk_endpoint, :pk_actor, :fp, 'in_flight', :request_id,
           :now, :now, :expires
    FROM lock WHERE lock.got
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT got FROM lock) AS got,
       EXISTS (SELECT 1 FROM ins) AS inserted,
       k.fingerprint, k.state, k.response_status, k.response_headers,
       k.response_body, k.expires_at
FROM (SELECT 1) AS one
LEFT JOIN idempotency_key AS k
    ON k.key = :pk_key AND k.endpoint = :pk_endpoint AND k.actor_id = :pk_actor
"""
    )
    .bindparams(
        bindparam("now", type_=UtcDateTime()),
        bindparam("expires", type_=UtcDateTime()),
    )
    .columns(
        got=Boolean(),
        inserted=Boolean(),
        fingerprint=String(),
        state=String(),
        response_status=Integer(),
        response_headers=JSON(),
        response_body=LargeBinary(),
        expires_at=UtcDateTime(),
    )
)
_SQLITE_INSERT = sqlite_insert(KEYS).on_conflict_do_nothing()
_READ = select(*_STORED_COLUMNS).where(*_PK)
# Only the claimer runs this (it holds the key): an expired answer, or a row
# left ``in_flight`` by a request that never finished, is taken over.
_TAKEOVER = (
    sa_update(KEYS)
    .where(*_PK)
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
_COMPLETE = (
    sa_update(KEYS)
    .where(*_PK)
    .values(
        state="done",
        response_status=bindparam("status"),
        response_headers=bindparam("headers"),
        response_body=bindparam("body"),
    )
)
_PURGE = delete(KEYS).where(KEYS.c.expires_at <= bindparam("now"))


def _answer_upsert(dialect: str) -> Any:
    """Store a finished answer outside the change's transaction (after a
    domain error rolled it back); an unexpired answer already there wins."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(KEYS)
    return stmt.on_conflict_do_update(
        index_elements=[KEYS.c.key, KEYS.c.endpoint, KEYS.c.actor_id],
        set_={
            c: stmt.excluded[c]
            for c in (
                "fingerprint",
                "state",
                "request_id",
                "created_at",
                "locked_at",
                "expires_at",
                "response_status",
                "response_headers",
                "response_body",
            )
        },
        where=KEYS.c.expires_at <= stmt.excluded.created_at,
    )


_ANSWER = {name: _answer_upsert(name) for name in ("postgresql", "sqlite")}


class IdempotencyRepository:
    def __init__(self, session: AsyncSession | AsyncConnection) -> None:
        self.session = session
        bind = session if isinstance(session, AsyncConnection) else session.get_bind()
        self.dialect: str = bind.dialect.name

    async def claim(
        self, key: str, endpoint: str, actor: str, fp: str, request_id: str | None, ttl: timedelta
    ) -> Claim:
        """Claim the key inside the caller's transaction, which then holds it
        until it commits or rolls back."""
        now = utcnow()
        params = {
            "pk_key": key,
            "pk_endpoint": endpoint,
            "pk_actor": actor,
            "fp": fp,
            "request_id": request_id,
            "now": now,
            "expires": now + ttl,
        }
        found: Stored | None
        if self.dialect == "postgresql":
            row = (
                await self.session.execute(
                    _PG_CLAIM, {**params, "lock_name": f"{key}\n{endpoint}\n{actor}"}
                )
            ).one()
            if not row.got:
                return Claim(ClaimOutcome.IN_FLIGHT)
            if row.inserted:
                return Claim(ClaimOutcome.CLAIMED)
            found = Stored(*row[2:])
        else:
            inserted: Any = await self.session.execute(
                _SQLITE_INSERT,
                {
                    "key": key,
                    "endpoint": endpoint,
                    "actor_id": actor,
                    "fingerprint": fp,
                    "state": "in_flight",
                    "request_id": request_id,
                    "created_at": now,
                    "locked_at": now,
                    "expires_at": now + ttl,
                },
            )
            if inserted.rowcount == 1:
                return Claim(ClaimOutcome.CLAIMED)
            existing = (await self.session.execute(_READ, params)).first()
            assert existing is not None  # the insert met it, and we hold the write lock
            found = Stored(*existing)
        if found.expires_at <= now or found.state != "done":
            await self.session.execute(_TAKEOVER, params)
            return Claim(ClaimOutcome.CLAIMED)
        if found.fingerprint != fp:
            return Claim(ClaimOutcome.MISMATCH, found)
        return Claim(ClaimOutcome.REPLAY, found)

    async def complete(
        self, key: str, endpoint: str, actor: str, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        """Store the answer on the claimed row, in the claimer's transaction."""
        await self.session.execute(
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

    async def store_answer(
        self,
        key: str,
        endpoint: str,
        actor: str,
        fp: str,
        request_id: str | None,
        ttl: timedelta,
        answer: tuple[int, dict[str, str], bytes],
    ) -> None:
        """Record a finished answer on its own (autocommit) connection."""
        status, headers, body = answer
        now = utcnow()
        await self.session.execute(
            _ANSWER[self.dialect],
            {
                "key": key,
                "endpoint": endpoint,
                "actor_id": actor,
                "fingerprint": fp,
                "state": "done",
                "request_id": request_id,
                "created_at": now,
                "locked_at": now,
                "expires_at": now + ttl,
                "response_status": status,
                "response_headers": headers,
                "response_body": body,
            },
        )

    async def purge_expired(self, now: datetime) -> int:
        result: Any = await self.session.execute(_PURGE, {"now": now})
        return int(result.rowcount or 0)


REPLAYED_HEADERS = ("content-type", "location")


class IdempotencyMiddleware:
    """Pure ASGI: reads the body once, claims the key, runs the app on the
    claimed unit of work, stores the answer and commits, then answers."""

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
        request = _Keyed(
            key=key,
            endpoint=f"{scope['method']} {scope['path']}",
            actor=actor,
            fp=fingerprint(
                scope["method"], scope["path"], scope.get("query_string", b"").decode(), body
            ),
            request_id=scope.get("state", {}).get("request_id"),
            ttl=timedelta(hours=app_state.settings.idempotency_ttl_hours),
        )
        db = app_state.db
        async with db.sessions() as session:
            try:
                claim = await IdempotencyRepository(session).claim(*request.claim_args)
                if claim.outcome is not ClaimOutcome.CLAIMED:
                    await session.rollback()
                    await _refuse(claim, scope, receive, send)
                    return
                answer = await self._run_claimed(scope, body, session, request)
            except BaseException:
                await session.rollback()
                raise
        await _send_all(answer.messages, send)

    async def _run_claimed(
        self, scope: Scope, body: bytes, session: AsyncSession, request: _Keyed
    ) -> _Answer:
        """Run the route on the claimed session and settle the transaction;
        the answer is sent only after that (a client never sees a 201 for a
        change that did not commit)."""
        answer = _Answer()

        async def replay_receive() -> Message:
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        async def capture_send(message: Message) -> None:
            answer.messages.append(message)

        scope.setdefault("state", {})[REQUEST_SESSION] = session
        try:
            await self.app(scope, replay_receive, capture_send)
        finally:
            del scope["state"][REQUEST_SESSION]
        status, headers, content = answer.parts()
        skip = scope["state"].get(SKIP_FLAG, False)
        repo = IdempotencyRepository(session)
        if status < 400 and not skip:
            await repo.complete(
                request.key, request.endpoint, request.actor, status, headers, content
            )
            await session.commit()
            return answer
        await session.rollback()
        if status < 500 and status not in NOT_STORED and not skip:
            # A domain error: the change is rolled back, the answer is kept.
            db = scope["app"].state.db
            async with db.statements() as conn:
                await IdempotencyRepository(conn).store_answer(
                    *request.claim_args, (status, headers, content)
                )
        return answer


@dataclass(frozen=True, slots=True)
class _Keyed:
    """An unsafe request under its key."""

    key: str
    endpoint: str
    actor: str
    fp: str
    request_id: str | None
    ttl: timedelta

    @property
    def claim_args(self) -> tuple[str, str, str, str, str | None, timedelta]:
        return self.key, self.endpoint, self.actor, self.fp, self.request_id, self.ttl


@dataclass(slots=True)
class _Answer:
    """The route's ASGI messages, held until the transaction is settled."""

    messages: list[Message] = field(default_factory=list)

    def parts(self) -> tuple[int, dict[str, str], bytes]:
        status, headers, content = 500, {}, bytearray()
        for message in self.messages:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for k, v in message.get("headers", []):
                    name = k.decode("latin-1").lower()
                    if name in REPLAYED_HEADERS:
                        headers[name] = v.decode("latin-1")
            elif message["type"] == "http.response.body":
                content.extend(message.get("body", b""))
        return status, headers, bytes(content)


async def _send_all(messages: list[Message], send: Send) -> None:
    for message in messages:
        await send(message)


async def _refuse(claim: Claim, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer a request whose key is taken: replay, or 409."""
    from b24mw.kit.problems import problem_response

    if claim.outcome is ClaimOutcome.REPLAY:
        assert claim.record is not None
        await _replay(claim.record, send)
        return
    if claim.outcome is ClaimOutcome.MISMATCH:
        error = IdempotencyConflict(
            "This Idempotency-Key was already used with a different request.",
            errors=[FieldError(HEADER, "already used with a different request body")],
        )
    else:
        error = IdempotencyConflict(
            "A request with this Idempotency-Key is still being processed.",
            errors=[FieldError(HEADER, "request still in progress; retry later")],
            headers={"Retry-After": "1"},
        )
    await problem_response(error)(scope, receive, send)


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
