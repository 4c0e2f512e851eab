"""Data for ``bench/reads.py``: a year of returns and Walking Warehouse orders
with their lines and history, loaded with ``COPY`` (asyncpg's driver call).

``returns`` rows ``n`` = 1..N and ``instant_orders`` rows ``n`` = 1..N are
created evenly over 2025; courier ``n % couriers``, status from a fixed cycle;
one line each; ``events`` history rows per order, and each return's own
status trail (``pending``, then its decision): as on a portal, most history
rows are not an order's, which the planner must know to read an order's
history from the right index (its statistics once came from order rows
alone, and after a few thousand return writes every order history read
walked all of them).  Everything here is a pure
function of ``n``, so the benchmark can pick ids, couriers and dates without
asking the database.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from report_seed import _chunks, asyncpg_dsn, vacuum

YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
YEAR_SECONDS = 365 * 86400
# Mostly decided, a tenth pending: like a quarter of real returns.
RETURN_CYCLE = ["accepted"] * 6 + ["rejected"] * 2 + ["cancelled", "pending"]
ORDER_CYCLE = ["DONE"] * 14 + ["REFUSED"] * 2 + ["READY", "ON_ROUTE", "DELIVERED", "FAILED"]
HISTORY = ("NEW", "READY", "PICKED_UP", "ON_ROUTE")

RETURN_COLUMNS = [
    "id", "source", "courier_id", "order_id_1c", "task_id_b24", "comment", "status",
    "manager_id", "version", "created_at", "updated_at",
]  # fmt: skip
RETURN_LINE_COLUMNS = ["return_id", "line_no", "sku", "qty", "quality", "reason_code", "photos"]
ORDER_COLUMNS = [
    "id", "task_id_b24", "courier_id", "title", "customer_name", "status", "total_amount",
    "currency_code", "origin", "version", "created_at", "updated_at",
]  # fmt: skip
ORDER_LINE_COLUMNS = ["order_id", "line_no", "sku", "name", "qty", "price"]
EVENT_COLUMNS = [
    "task_id_b24", "instant_order_id", "ts", "type", "status", "actor_id", "payload_json",
]  # fmt: skip
RETURN_EVENT_COLUMNS = [
    "task_id_b24", "return_id", "ts", "type", "status", "actor_id", "payload_json",
]  # fmt: skip


def return_id(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def return_trail(n: int) -> list[str]:
    """Return ``n``'s statuses in its history: pending, then its decision."""
    final = RETURN_CYCLE[n % len(RETURN_CYCLE)]
    return ["pending"] if final == "pending" else ["pending", final]


class Year:
    """``rows`` returns and ``rows`` orders over 2025, ``events`` history rows per order."""

    def __init__(self, rows: int, couriers: list[str], events: int) -> None:
        self.rows = rows
        self.couriers = couriers
        self.events = events
        self.step = YEAR_SECONDS / rows

    def created(self, n: int) -> datetime:
        return YEAR_START + timedelta(seconds=n * self.step)

    def courier(self, n: int) -> str:
        return self.couriers[n % len(self.couriers)]

    def returns(self) -> Iterator[str]:
        for n in range(1, self.rows + 1):
            at = self.created(n).isoformat()
            status = RETURN_CYCLE[n % len(RETURN_CYCLE)]
            yield (
                f"{return_id(n)}\twidget\t{self.courier(n)}\t1C-{n}\t{100_000_000 + n}\t\\N\t"
                f"{status}\t\\N\t1\t{at}\t{at}\n"
            )

    def return_lines(self) -> Iterator[str]:
        for n in range(1, self.rows + 1):
            yield f"{return_id(n)}\t1\tSKU-{n % 500}\t1\tdefect\tbroken\t[]\n"

    def orders(self) -> Iterator[str]:
        for n in range(1, self.rows + 1):
            at = self.created(n).isoformat()
            status = ORDER_CYCLE[n % len(ORDER_CYCLE)]
            amount = f"{(n * 37) % 9000 + 100}.00"
            yield (
                f"{n}\t{n}\t{self.courier(n)}\tOrder {n}\tCustomer {n % 977}\t{status}\t"
                f"{amount}\tRUB\tb24_task\t1\t{at}\t{at}\n"
            )

    def order_lines(self) -> Iterator[str]:
        for n in range(1, self.rows + 1):
            amount = f"{(n * 37) % 9000 + 100}.00"
            yield f"{n}\t1\tSKU-{n % 500}\tItem {n % 500}\t1\t{amount}\n"

    def history(self) -> Iterator[str]:
        for n in range(1, self.rows + 1):
            created = self.created(n)
            final = ORDER_CYCLE[n % len(ORDER_CYCLE)]
            steps = [*HISTORY[: self.events - 1], final]
            for k, status in enumerate(steps):
                ts = (created + timedelta(minutes=7 * k)).isoformat()
                yield f"{n}\t{n}\t{ts}\tstatus\t{status}\t{self.courier(n)}\t{{}}\n"

    def return_history(self) -> Iterator[str]:
        for n in range(1, self.rows + 1):
            created = self.created(n)
            for k, status in enumerate(return_trail(n)):
                ts = (created + timedelta(hours=5 * k)).isoformat()
                yield (
                    f"{100_000_000 + n}\t{return_id(n)}\t{ts}\tstatus\t{status}\t"
                    f"{self.courier(n)}\t{{}}\n"
                )

    def history_rows(self) -> int:
        """Rows ``history`` and ``return_history`` write together."""
        trails = sum(len(return_trail(n)) for n in range(1, self.rows + 1))
        return self.rows * self.events + trails


async def load(url: str, year: Year) -> dict[str, float]:
    """COPY the year in, then VACUUM ANALYZE; seconds per table."""
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(url))
    timings: dict[str, float] = {}
    try:
        for table, columns, lines in (
            ("returns", RETURN_COLUMNS, year.returns()),
            ("return_lines", RETURN_LINE_COLUMNS, year.return_lines()),
            ("instant_orders", ORDER_COLUMNS, year.orders()),
            ("instant_order_lines", ORDER_LINE_COLUMNS, year.order_lines()),
            ("task_events", EVENT_COLUMNS, year.history()),
            ("task_events", RETURN_EVENT_COLUMNS, year.return_history()),
        ):
            started = time.perf_counter()
            await conn.copy_to_table(table, source=_chunks(lines), columns=columns)
            timings[table] = timings.get(table, 0) + round(time.perf_counter() - started, 1)
        await conn.execute(f"SELECT setval('instant_orders_id_seq', {year.rows})")
        timings["vacuum_analyze"] = await vacuum(conn)
    finally:
        await conn.close()
    return timings


async def keys_at(url: str, table: str, depths: list[int]) -> list[tuple[datetime, object]]:
    """(created_at, id) of the rows at ``depths`` in a list's order (newest
    first): where a client paging by cursor would stand."""
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        out = []
        for depth in depths:
            row = await conn.fetchrow(
                f"SELECT created_at, id FROM {table} ORDER BY created_at DESC, id DESC"
                " OFFSET $1 LIMIT 1",
                depth,
            )
            out.append((row["created_at"], row["id"]))
        return out
    finally:
        await conn.close()
