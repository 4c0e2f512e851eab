"""The report as JSON, written as the rows stream: ``{"items": [...],
"totals": {...}}`` with the totals last, so nothing waits for the whole range."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

from b24mw.reports.rows import ReportRow, Totals, money, rfc3339

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _item(row: ReportRow) -> str:
    return _encode(
        {
            "order_id": row.order_id,
            "kind": row.kind,
            "courier_id": row.courier_id,
            "courier_name": row.courier_name,
            "status": row.status,
            "title": row.title,
            "customer_name": row.customer_name,
            "total_amount": money(row.total_amount),
            "currency_code": row.currency_code,
            "created_at": rfc3339(row.created_at),
            "updated_at": rfc3339(row.updated_at),
            "duration_min": row.duration_min,
        }
    )


async def report_json(
    batches: AsyncIterator[Sequence[ReportRow]], totals: Totals
) -> AsyncGenerator[bytes, None]:
    separator = ""
    yield b'{"items":['
    async for rows in batches:
        totals.add(rows)
        if rows:
            yield (separator + ",".join(_item(row) for row in rows)).encode()
            separator = ","
    yield ('],"totals":' + _encode(totals.as_json()) + "}").encode()
