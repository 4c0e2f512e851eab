"""``Idempotency-Key`` for every unsafe ``/api/v1`` request (README "HTTP conventions").

The database is the arbiter, and the key lives in the request's own unit of
work (``kit.uow``): this layer claims the key in it and joins it, so that the
answer is staged as the key's row just before the unit commits — the change
and its stored answer commit together or not at all, and only then is the
answer sent.

While a request holds its key, a second one with the same key gets 409 +
``Retry-After``: on PostgreSQL the claim takes a transaction-scoped advisory
lock on the key (released by the commit or rollback, also when the process
dies); on SQLite writers are serialised, so the second simply waits its turn
and replays.  A domain error (4xx) rolls the change back and stores the answer
in its own statement.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import bindparam, delete, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from b24mw.kit.auth import Actor, TokenVerifier
from b24mw.kit.db import Database
from b24mw.kit.errors import AppError, BadRequest, FieldError, IdempotencyConflict
from b24mw.kit.problems import problem_response
from b24mw.kit.request_scope import REQUEST_ID, is_not_stored
from b24mw.kit.routes import MatchedRoute, match_route
from b24mw.kit.staging import stage
from b24mw.kit.uow import UNSAFE_METHODS, Answer, UnitOfWork, unit_of
from b24mw.models.base import table_of, utcnow
from b24mw.models.ops import IdempotencyKey

HEADER = "Idempotency-Key"
# Responses a retry must get again.  Auth failures, throttling and 5xx are
# not stored: a retry after fixing them must run the handler.
NOT_STORED = frozenset({401, 403, 429})


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


# The key's ``endpoint`` column is 255 characters; a scope past that (long
# text path parameters) is stored as the template plus a digest.
ENDPOINT_LENGTH = 255


def endpoint_scope(method: str, route: MatchedRoute) -> str:
    """What a key is scoped to besides its actor: the method, the route
    template and the parsed path parameters, so ``/ww/orders/0156/status``
    and ``/ww/orders/156/status`` are one scope."""
    scope = f"{method} {route.canonical()}"
    if len(scope) <= ENDPOINT_LENGTH:
        return scope
    digest = hashlib.sha256(scope.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{method} {route.template} sha256:{digest}"[:ENDPOINT_LENGTH]


def actor_scope(actor: Actor) -> str:
    """The actor a key belongs to: the subject *and* its roles.  A token that
    shares an admin's ``sub`` but not the admin's roles has its own keys, so
    it can neither replay the admin's answers nor learn from a 409 that a key
    was used; its request runs and meets the route's authorization."""
    return f"{actor.sub} [{','.join(sorted(role.value for role in actor.roles))}]"


class ClaimOutcome(Enum):
    CLAIMED = "claimed"
    REPLAY = "replay"
    MISMATCH = "mismatch"
    IN_FLIGHT = "in_flight"


@dataclass(frozen=True, slots=True)
class KeyedRequest:
    """An unsafe request under its key: what claims it and what its answer is
    stored under."""

    key: str
    endpoint: str
    actor: str
    fp: str
    request_id: str | None
    ttl: timedelta


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
# transaction holds the key) and read the row stored for it, if any.  The
# answer's row is written with the commit; should another request have
# committed one in between (our read's snapshot predates the lock), that
# INSERT fails and the middleware replays the other answer instead.
_PG_CLAIM = text(
    """
SELECT pg_try_advisory_xact_lock(hashtextextended(:lock_name, 0)) AS got,
       EXISTS (SELECT 1 FROM idempotency_key
               WHERE key = :pk_key AND endpoint = :pk_endpoint AND actor_id = :pk_actor)
           AS taken
"""
)
_READ = select(*_STORED_COLUMNS).where(*_PK)
# Only the key's holder runs this: an expired answer, or a row left
# ``in_flight`` by an older version, makes way for the new answer.
_TAKEOVER = delete(KEYS).where(*_PK)
_PURGE = delete(KEYS).where(KEYS.c.expires_at <= bindparam("now"))
KEY_CONSTRAINT = "pk_idempotency_key"


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


def _answer_row(request: KeyedRequest, answer: tuple[int, dict[str, str], bytes]) -> dict[str, Any]:
    status, headers, body = answer
    now = utcnow()
    return {
        "key": request.key,
        "endpoint": request.endpoint,
        "actor_id": request.actor,
        "fingerprint": request.fp,
        "state": "done",
        "request_id": request.request_id,
        "created_at": now,
        "locked_at": now,
        "expires_at": now + request.ttl,
        "response_status": status,
        "response_headers": headers,
        "response_body": body,
    }


class IdempotencyRepository:
    def __init__(self, session: AsyncSession | AsyncConnection) -> None:
        self.session = session
        bind = session if isinstance(session, AsyncConnection) else session.get_bind()
        self.dialect: str = bind.dialect.name

    async def claim(self, request: KeyedRequest) -> Claim:
        """Claim the key inside the caller's transaction, which then holds it
        until it commits or rolls back."""
        now = utcnow()
        pk = {"pk_key": request.key, "pk_endpoint": request.endpoint, "pk_actor": request.actor}
        if self.dialect == "postgresql":
            lock_name = f"{request.key}\n{request.endpoint}\n{request.actor}"
            got, taken = (
                await self.session.execute(_PG_CLAIM, {**pk, "lock_name": lock_name})
            ).one()
            if not got:
                return Claim(ClaimOutcome.IN_FLIGHT)
            if not taken:
                return Claim(ClaimOutcome.CLAIMED)  # the usual case: a new key
        # SQLite: the unit of work began with BEGIN IMMEDIATE, so no other
        # writer can hold or store this key until we are done.
        existing = (await self.session.execute(_READ, pk)).first()
        found = Stored(*existing) if existing is not None else None
        if found is None:
            return Claim(ClaimOutcome.CLAIMED)
        if found.expires_at <= now or found.state != "done":
            await self.session.execute(_TAKEOVER, pk)
            return Claim(ClaimOutcome.CLAIMED)
        if found.fingerprint != request.fp:
            return Claim(ClaimOutcome.MISMATCH, found)
        return Claim(ClaimOutcome.REPLAY, found)

    def complete(self, request: KeyedRequest, answer: tuple[int, dict[str, str], bytes]) -> None:
        """Store the answer in the claimer's unit of work (written with its
        commit, in the same statement as its other new rows on PostgreSQL)."""
        assert isinstance(self.session, AsyncSession)
        stage(self.session, KEYS, _answer_row(request, answer))

    async def store_answer(
        self, request: KeyedRequest, answer: tuple[int, dict[str, str], bytes]
    ) -> None:
        """Record a finished answer on its own (autocommit) connection."""
        await self.session.execute(_ANSWER[self.dialect], _answer_row(request, answer))

    async def purge_expired(self, now: datetime) -> int:
        result: Any = await self.session.execute(_PURGE, {"now": now})
        return int(result.rowcount or 0)


class NoUnitOfWork(RuntimeError):
    """The idempotency layer runs inside ``kit.uow.UnitOfWorkMiddleware``."""


class IdempotencyMiddleware:
    """Pure ASGI, inside the unit of work: reads the body once, claims the key
    in the request's unit, and joins it (``KeyInUnit``) so the answer is
    stored with the commit."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        database: Database,
        verifier: TokenVerifier,
        ttl: timedelta,
        prefix: str = "/api/v1/",
        exempt: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.db = database
        self.verifier = verifier
        self.ttl = ttl
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
        route = match_route(scope)
        if route is None:
            # No route takes this method and path: FastAPI answers 404/405,
            # and there is nothing to claim a key for.
            await self.app(scope, receive, send)
            return
        unit = unit_of(scope)
        if unit is None:
            raise NoUnitOfWork(f"{scope['method']} {scope['path']}: no unit of work to join")
        # Known before FastAPI routes the request, so the answers given here
        # (replays, 409s, a 503) are metered by template, not as unmatched.
        scope["route"] = route.route
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        actor = self.verifier.try_actor(headers.get("authorization"))
        if actor is None:
            # Who-are-you comes first: the route answers 401, which is never
            # stored (the unit rolls it back and nothing joined it).
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
        endpoint = endpoint_scope(scope["method"], route)
        request = KeyedRequest(
            key=key,
            endpoint=endpoint,
            actor=actor_scope(actor),
            fp=fingerprint(
                scope["method"], endpoint, scope.get("query_string", b"").decode("latin-1"), body
            ),
            request_id=scope.get("state", {}).get(REQUEST_ID),
            ttl=self.ttl,
        )
        claim = await IdempotencyRepository(unit.session).claim(request)
        if claim.outcome is not ClaimOutcome.CLAIMED:
            unit.refused = True
            await _refuse(claim, scope, receive, send)
            return
        unit.join(KeyInUnit(unit, request, self.db, scope["state"]))

        async def replay_receive() -> Message:
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        await self.app(scope, replay_receive, send)


class KeyInUnit:
    """A claimed key taking part in its request's unit of work."""

    __slots__ = ("db", "request", "scope_state", "unit")

    def __init__(
        self, unit: UnitOfWork, request: KeyedRequest, db: Database, scope_state: dict[str, Any]
    ) -> None:
        self.unit = unit
        self.request = request
        self.db = db
        self.scope_state = scope_state

    def before_commit(self, answer: Answer) -> None:
        if not is_not_stored(self.scope_state):
            IdempotencyRepository(self.unit.session).complete(self.request, answer.parts())

    async def after_rollback(self, answer: Answer) -> None:
        parts = answer.parts()
        status = parts[0]
        if status < 500 and status not in NOT_STORED and not is_not_stored(self.scope_state):
            # A domain error: the change is rolled back, the answer is kept.
            async with self.db.statements() as conn:
                await IdempotencyRepository(conn).store_answer(self.request, parts)

    async def commit_conflict(self, error: IntegrityError) -> Answer | None:
        if KEY_CONSTRAINT not in str(error.orig):
            return None
        # Another request with this key committed its answer between our
        # claim's read and our commit: ours is rolled back, theirs replayed.
        async with self.db.sessions() as session:
            claim = await IdempotencyRepository(session).claim(self.request)
            await session.rollback()
        answer = Answer()

        async def nothing() -> Message:
            return {"type": "http.disconnect"}

        await _refuse(claim, {"type": "http"}, nothing, answer.capture)
        return answer


async def _refuse(claim: Claim, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer a request whose key is taken: replay, or 409."""
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
