"""The request's unit of work: one transaction per unsafe API request.

The middleware opens the request's write session (``kit.db.WriteSession``),
lets the route write through it (services only ``flush()``; rows a unit only
appends are staged, ``kit.staging``), and settles it once the route has
answered: a success (< 400) commits, anything else rolls back.  The answer
is held until then and sent after, so a client never sees a 201 for a change
that did not commit.

Other layers take part through ``Participant``: the idempotency layer
(``kit.idempotency``) claims the request's key in this unit and adds the
stored answer just before the commit.  A request without a key (the Bitrix24
webhooks, or any app built without the idempotency layer) is the same unit
with no participant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.exc import IntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from b24mw.kit.db import Database, WriteSession
from b24mw.kit.errors import AppError
from b24mw.kit.problems import problem_response
from b24mw.kit.request_scope import UNIT_OF_WORK

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Response headers a stored answer keeps (kit.idempotency replays them).
KEPT_HEADERS = ("content-type", "location")


@dataclass(slots=True)
class Answer:
    """The route's ASGI messages, held until the transaction is settled."""

    messages: list[Message] = field(default_factory=list)

    async def capture(self, message: Message) -> None:
        self.messages.append(message)

    def parts(self) -> tuple[int, dict[str, str], bytes]:
        status, headers, content = 500, {}, bytearray()
        for message in self.messages:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for k, v in message.get("headers", []):
                    name = k.decode("latin-1").lower()
                    if name in KEPT_HEADERS:
                        headers[name] = v.decode("latin-1")
            elif message["type"] == "http.response.body":
                content.extend(message.get("body", b""))
        return status, headers, bytes(content)

    async def send_to(self, send: Send) -> None:
        for message in self.messages:
            await send(message)


async def answer_of(error: AppError) -> Answer:
    """An error rendered as the answer a route would have given."""
    answer = Answer()

    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    await problem_response(error)({"type": "http"}, nothing, answer.capture)
    return answer


class Participant(Protocol):
    """Something that joins a unit of work (the idempotency key)."""

    def before_commit(self, answer: Answer) -> None:
        """Add rows to the commit (staged, written with it)."""

    async def after_rollback(self, answer: Answer) -> None:
        """The change was rolled back; ``answer`` is what the client gets."""

    async def commit_conflict(self, error: IntegrityError) -> Answer | None:
        """The commit broke a uniqueness rule: the answer to give instead, or
        None when the conflict is not this participant's."""


class UnitOfWork:
    """One request's transaction and those taking part in it."""

    __slots__ = ("participants", "refused", "session")

    def __init__(self, session: WriteSession) -> None:
        self.session = session
        self.participants: list[Participant] = []
        # The answer was decided before the route ran (a replay, a 409): it
        # is sent as it is and nothing commits, whatever its status.
        self.refused = False

    def join(self, participant: Participant) -> None:
        self.participants.append(participant)

    async def settle(self, answer: Answer) -> Answer:
        """Commit a success, roll back anything else; return the answer to send."""
        if answer.parts()[0] < 400 and not self.refused:
            for participant in self.participants:
                participant.before_commit(answer)
            try:
                await self.session.commit()
                return answer
            except AppError as exc:
                # A change staged for the commit was refused there (e.g. a
                # version-checked update that lost its race): that is the answer.
                answer = await answer_of(exc)
            except IntegrityError as exc:
                await self.session.rollback()
                for participant in self.participants:
                    instead = await participant.commit_conflict(exc)
                    if instead is not None:
                        return instead
                raise
        await self.session.rollback()
        if not self.refused:
            for participant in self.participants:
                await participant.after_rollback(answer)
        return answer


def unit_of(scope: Scope) -> UnitOfWork | None:
    unit: UnitOfWork | None = scope.get("state", {}).get(UNIT_OF_WORK)
    return unit


class UnitOfWorkMiddleware:
    """Pure ASGI: one unit of work for every unsafe request under ``prefix``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        database: Database,
        prefix: str = "/api/v1/",
        ungated: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.db = database
        self.prefix = prefix
        # Paths whose PostgreSQL writes go through a pool of their own (the
        # webhook inbox): they need no place in the main pool's queue.
        self.ungated = ungated

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in UNSAFE_METHODS
            or not scope["path"].startswith(self.prefix)
        ):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        # The session checks a connection out on its first statement only: a
        # request answered before that (a 400, a 401) costs no connection.
        opened = self.db.sessions() if path.startswith(self.ungated) else self.db.request_session()
        state = scope.setdefault("state", {})
        async with opened as session:
            unit = UnitOfWork(session)
            state[UNIT_OF_WORK] = unit
            try:
                answer = await self._run(unit, scope, receive)
            except BaseException:
                await session.rollback()
                raise
            finally:
                del state[UNIT_OF_WORK]
        await answer.send_to(send)

    async def _run(self, unit: UnitOfWork, scope: Scope, receive: Receive) -> Answer:
        answer = Answer()
        await self.app(scope, receive, answer.capture)
        return await unit.settle(answer)
