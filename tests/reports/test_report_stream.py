"""The report streams: batches of bounded size from a server-side cursor
(PostgreSQL) or keyset chunks (SQLite), every row once and in order; its
source is closed however the answer ends; a database that is down is a 503."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from starlette.types import Message

from b24mw.app import create_app
from b24mw.kit.db import Database
from b24mw.reports import repository
from b24mw.reports.repository import Shape
from b24mw.reports.schemas import ReportKind, ReportQuery
from b24mw.reports.streaming import start_stream
from tests.reports.helpers import REPORT, T0, Seed, seed
from tests.support.auth import auth
from tests.support.config import make_settings


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(repository, "STREAM_BATCH", 4)
    monkeypatch.setattr(repository, "SQLITE_CHUNK", 4)
    return 4


@pytest.mark.usefixtures("couriers")
async def test_batches_are_bounded_and_cover_every_row_once_in_order(
    db: Database, small_batches: int
) -> None:
    # Ties on created_at within and across kinds, the keyset's hard case.
    same = T0 + timedelta(hours=1)
    seeds = [Seed("instant", created_at=same, title=f"i{n}") for n in range(5)]
    seeds += [Seed("delivery", created_at=same, title=f"d{n}") for n in range(6)]
    seeds += [
        Seed("delivery", created_at=T0 + timedelta(minutes=n), title=f"e{n}") for n in range(3)
    ]
    seeds += [Seed("instant", created_at=T0 + timedelta(hours=2), title="late")]
    ids = await seed(db, *seeds)
    by_title = {s.title: (s.created_at, s.kind, i) for s, i in zip(seeds, ids, strict=True)}
    expected = sorted(by_title.values())

    async with db.read_engine.connect() as conn:
        typed = [b async for b in repository.report_batches(conn, ReportQuery(), Shape.TYPED)]
        text = [b async for b in repository.report_batches(conn, ReportQuery(), Shape.CSV)]
    for batches in (typed, text):
        assert all(1 <= len(b) <= small_batches for b in batches)
        assert len(batches) >= len(expected) // small_batches
    assert [(r.created_at, r.kind, r.order_id) for b in typed for r in b] == expected
    assert [(r.created_at, r.kind, r.order_id) for b in text for r in b] == [
        (f"{at:%Y-%m-%dT%H:%M:%S.%f}Z", kind, i) for at, kind, i in expected
    ]


@pytest.mark.usefixtures("couriers")
async def test_one_kind_and_a_courier_stream_alike(db: Database, small_batches: int) -> None:
    seeds = [Seed("delivery", "c1" if n % 2 else "c2", created_at=T0) for n in range(9)]
    ids = await seed(db, *seeds)
    query = ReportQuery(kinds=(ReportKind.DELIVERY,), courier_id="c1")
    async with db.read_engine.connect() as conn:
        got = [
            r.order_id
            async for batch in repository.report_batches(conn, query, Shape.JSON)
            for r in batch
        ]
    assert got == [i for n, i in enumerate(ids) if n % 2]


async def test_a_database_that_is_down_is_a_503_not_a_cut_off_200(tmp_path: Path) -> None:
    settings = make_settings("postgresql+asyncpg://b24mw@127.0.0.1:1/none")
    database = Database(settings)
    app = create_app(settings, database=database)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for fmt in ("json", "csv", "xlsx"):
                response = await client.get(
                    REPORT, params={"format": fmt}, headers=auth("admin", "boss")
                )
                assert response.status_code == 503, response.text
                assert response.json()["code"] == "dependency.database_unavailable"
    finally:
        await database.dispose()


async def test_the_source_is_closed_when_the_client_goes_away() -> None:
    closed: list[str] = []

    async def source() -> AsyncGenerator[bytes, None]:
        try:
            for n in range(100):
                yield f"chunk {n}\n".encode()
        finally:
            closed.append("closed")

    response = await start_stream(source(), media_type="text/csv", headers={})
    sent: list[Message] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and len(sent) >= 3:
            raise OSError("client went away")
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "asgi": {"spec_version": "2.4"}, "method": "GET"}
    with pytest.raises(Exception):  # noqa: B017 - Starlette's ClientDisconnect
        await response(scope, receive, send)
    assert closed == ["closed"]
    assert sent[1]["body"] == b"chunk 0\n"
