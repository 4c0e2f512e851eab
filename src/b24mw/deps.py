"""Every route dependency on the application's state, as ``Annotated`` aliases.

Endpoints import their sessions, database and settings from here and never
read ``request.app.state`` themselves: the state is built once by
``create_app`` and this is the one place that knows where it is kept.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from b24mw.kit.db import Database, ReadSession, WriteSession
from b24mw.kit.request_scope import STATEMENT_READS, UNIT_OF_WORK
from b24mw.outbox import Outbox
from b24mw.returns.flows import ReturnChannels
from b24mw.settings import Settings
from b24mw.state import AppState


class NoReadScope(RuntimeError):
    """A route outside ``kit.routing.ApiRoute`` asked for statement reads:
    nothing would close their connection."""


class NoUnitOfWork(RuntimeError):
    """A route asked for a write session where ``kit.uow`` opened none
    (a safe method, or a path outside the API prefix)."""


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state
    return state


def database_of(request: Request) -> Database:
    return state_of(request).db


async def _database(request: Request) -> Database:
    return state_of(request).db


async def _settings(request: Request) -> Settings:
    return state_of(request).settings


async def _outbox(request: Request) -> Outbox:
    return state_of(request).outbox


async def _return_channels(request: Request) -> ReturnChannels:
    return state_of(request).return_channels


async def _locale(request: Request) -> str:
    return state_of(request).settings.locale


async def _write_session(request: Request) -> WriteSession:
    # A plain function, not a generator: the unit of work owns the session's
    # life, and FastAPI's generator machinery is a measurable share of a write.
    unit = request.scope.get("state", {}).get(UNIT_OF_WORK)
    if unit is None:
        raise NoUnitOfWork(
            f"{request.method} {request.url.path}: a write session is for unsafe /api/v1 routes"
        )
    session: WriteSession = unit.session
    return session


async def _read_session(request: Request) -> AsyncIterator[ReadSession]:
    async with database_of(request).reader() as session:
        yield session


async def _statement_reads(request: Request) -> AsyncConnection:
    # Like the write session, a plain function: the route (kit.routing.ApiRoute)
    # closes the connection once its answer is built.
    state = request.scope.setdefault("state", {})
    if STATEMENT_READS not in state:
        raise NoReadScope(f"{request.method} {request.url.path}: statement reads need an ApiRoute")
    reads = state[STATEMENT_READS] = await database_of(request).statement_reads()
    return reads.connection


DatabaseDep = Annotated[Database, Depends(_database)]
SettingsDep = Annotated[Settings, Depends(_settings)]
OutboxDep = Annotated[Outbox, Depends(_outbox)]
ReturnChannelsDep = Annotated[ReturnChannels, Depends(_return_channels)]
# The language of what is written into Bitrix24 (``B24MW_LOCALE``).
Locale = Annotated[str, Depends(_locale)]
# The request's unit of work (kit.uow): committed once the route has answered.
WriteSessionDep = Annotated[WriteSession, Depends(_write_session)]
# One snapshot across the route's statements.
ReadSessionDep = Annotated[ReadSession, Depends(_read_session, scope="function")]
# For reads that need no snapshot across their statements (lists, one row):
# a bare connection (Core statements only).
ReadStatementsDep = Annotated[AsyncConnection, Depends(_statement_reads)]
