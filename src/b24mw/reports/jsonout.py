"""The report as JSON, written as the rows stream: ``{"items": [...],
"totals": {...}}`` with the totals last, so nothing waits for the whole range."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

from b24mw.reports.rows import REPORT_COLUMNS, TENTHS, Totals, minutes

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _item(row: Sequence[Any]) -> str:
    item = dict(zip(REPORT_COLUMNS[:TENTHS], row, strict=False))
    item["duration_min"] = minutes(row[TENTHS])
    return _encode(item)


async def report_json(
    batches: AsyncIterator[Sequence[Sequence[Any]]], totals: Totals
) -> AsyncGenerator[bytes, None]:
    separator = ""
    yield b'{"items":['
    async for rows in batches:
        totals.add(rows)
        if rows:
            yield (separator + ",".join(_item(row) for row in rows)).encode()
            separator = ","
    yield ('],"totals":' + _encode(totals.as_json()) + "}").encode()
