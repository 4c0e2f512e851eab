"""Who may see which report, and how it is produced.

A report streams straight from the database to the client: the rows pass
through one batch at a time, the totals are added up as they pass, and
nothing of the range is kept.  Its database connection is its own, opened
when the answer is made and closed when the stream ends (the request's
``ReadSession`` is gone by then).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from b24mw.kit.auth import Actor
from b24mw.kit.db import Database
from b24mw.orders.scope import own_courier_id
from b24mw.reports import feed_repository, kmp4, repository
from b24mw.reports.csvout import kmp4_csv, report_csv
from b24mw.reports.jsonout import report_json
from b24mw.reports.repository import Shape
from b24mw.reports.rows import Totals
from b24mw.reports.schemas import (
    CSV_TYPE,
    JSON_TYPE,
    XLSX_TYPE,
    ReportFormat,
    ReportKind,
    ReportQuery,
)
from b24mw.reports.xlsx import report_xlsx

Render = Callable[[AsyncIterator[Sequence[Sequence[Any]]], Totals], AsyncGenerator[bytes, None]]


@dataclass(frozen=True, slots=True)
class Rendered:
    """A report ready to stream: its chunks, media type and file name (if any)."""

    chunks: AsyncGenerator[bytes, None]
    media_type: str
    filename: str | None


def describe(q: ReportQuery) -> str:
    """The filters in words, for the workbook's summary."""
    statuses = ", ".join(q.statuses) if q.statuses else "all"
    kinds = ", ".join(k.value for k in q.kinds)
    courier = q.courier_id or "all"
    return (
        f"Created {q.label_from} … {q.label_to} (UTC) · statuses: {statuses} · "
        f"courier: {courier} · kinds: {kinds} · made {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


async def _produce(
    db: Database, q: ReportQuery, render: Render, *, shape: Shape, early_start: bool
) -> AsyncGenerator[bytes, None]:
    async with db.read_engine.connect() as conn:
        raw = repository.report_batches(conn, q, shape)
        async with aclosing(raw):
            first = await anext(raw, None)
            if early_start:
                # The database has answered: the answer may start (see
                # ``streaming.start_stream``).
                yield b""

            async def batches() -> AsyncIterator[Sequence[Any]]:
                if first is not None:
                    yield first
                async for batch in raw:
                    yield batch

            totals = Totals(written=shape is Shape.CSV)
            async with aclosing(render(batches(), totals)) as chunks:
                async for chunk in chunks:
                    yield chunk


def deliveries_report(db: Database, actor: Actor, q: ReportQuery, fmt: ReportFormat) -> Rendered:
    """The report as ``fmt``; a courier gets only their own orders (another
    courier's → 403)."""
    mine = own_courier_id(actor, q.courier_id, "A courier reports only their own orders.")
    q = replace(q, courier_id=mine)
    if fmt is ReportFormat.CSV:
        chunks = _produce(db, q, report_csv, shape=Shape.CSV, early_start=True)
        return Rendered(chunks, CSV_TYPE, f"{q.filename_stem}.csv")
    if fmt is ReportFormat.XLSX:

        def workbook(
            batches: AsyncIterator[Sequence[Sequence[Any]]], totals: Totals
        ) -> AsyncGenerator[bytes, None]:
            return report_xlsx(batches, totals, "Deliveries report", describe(q))

        # No early start: a workbook that fails half-way is a problem answer.
        chunks = _produce(db, q, workbook, shape=Shape.TYPED, early_start=False)
        return Rendered(chunks, XLSX_TYPE, f"{q.filename_stem}.xlsx")
    chunks = _produce(db, q, report_json, shape=Shape.JSON, early_start=True)
    return Rendered(chunks, JSON_TYPE, None)


# --- KMP4 ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Kmp4Page:
    items: list[dict[str, Any]]
    total: int
    next_cursor: str

    @property
    def has_more(self) -> bool:
        return self.total > len(self.items)

    def as_json(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "total": self.total,
            "next_cursor": self.next_cursor,
            "has_more": self.has_more,
        }

    def as_csv(self) -> bytes:
        return kmp4_csv(self.items)


async def kmp4_page(conn: AsyncConnection, after: str | None, limit: int) -> Kmp4Page:
    """The orders changed after the cursor ``after`` (all of them without one),
    oldest change first; the cursor of the last one comes back as ``next_cursor``."""
    position = kmp4.decode(after)
    horizon = await feed_repository.change_horizon(conn)
    rows = await feed_repository.feed_page(conn, position, horizon, limit)
    total = await feed_repository.feed_count(conn, position, horizon)
    if rows:
        last = rows[-1]
        position = kmp4.Position(last.change_seq, last.kind, last.id)
    return Kmp4Page([kmp4.item(r) for r in rows], total, position.encode())


def kinds_of(kind: ReportKind | None) -> tuple[ReportKind, ...]:
    return (kind,) if kind is not None else tuple(ReportKind)
