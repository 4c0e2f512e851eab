"""CSV renderings: the deliveries report and the KMP4 export.

RFC 4180: comma-separated, CRLF line ends, a field quoted when it holds a
comma, a quote (doubled) or a line break.  The report starts with a UTF-8 BOM
so spreadsheets pick the encoding.  A text cell a spreadsheet would evaluate
(first character ``=``, ``+``, ``-``, ``@``, tab, CR or NUL, the OWASP and
ASVS lists) gets a leading apostrophe, which spreadsheets take as "this is
text".  Numeric columns are written by us as numbers and never touched.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from typing import Any

from b24mw.reports import kmp4
from b24mw.reports.rows import REPORT_COLUMNS, Totals, money

BOM = "\ufeff"
TOTALS_LABEL = "TOTALS"
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\0")


def neutralise(value: str | None) -> str:
    """A text cell no spreadsheet runs as a formula."""
    if not value:
        return ""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


class _Lines:
    """A ``csv.writer`` whose output is taken as bytes after each batch."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\r\n")

    def take(self) -> bytes:
        data = self.buffer.getvalue().encode()
        self.buffer.seek(0)
        self.buffer.truncate()
        return data


def totals_line(totals: Totals) -> tuple[Any, ...]:
    """``TOTALS``, the order count (under ``kind``), the amount and duration sums
    under their own columns."""
    blank = ("",) * 5
    return (
        TOTALS_LABEL,
        totals.orders,
        *blank,
        money(totals.amount),
        totals.currency_label,
        "",
        "",
        f"{totals.duration_min:.1f}",
    )


async def report_csv(
    batches: AsyncIterator[Sequence[Sequence[Any]]], totals: Totals
) -> AsyncGenerator[bytes, None]:
    lines = _Lines()
    lines.writer.writerow(REPORT_COLUMNS)
    yield (BOM.encode() + lines.take())
    async for rows in batches:
        totals.add(rows)
        # The database wrote and neutralised the cells (repository.Shape.CSV).
        lines.writer.writerows(rows)
        yield lines.take()
    lines.writer.writerow(totals_line(totals))
    yield lines.take()


def _kmp4_line(item: dict[str, Any]) -> tuple[Any, ...]:
    text_columns = ("title", "customer_name", "courier_id", "notes")
    return tuple(
        neutralise(item[name]) if name in text_columns else item[name] for name in kmp4.COLUMNS
    )


def kmp4_csv(items: Iterable[dict[str, Any]]) -> bytes:
    """One page of the KMP4 export: the magic line, the header, the rows."""
    lines = _Lines()
    lines.buffer.write(kmp4.MAGIC_LINE + "\r\n")
    lines.writer.writerow(kmp4.COLUMNS)
    lines.writer.writerows(_kmp4_line(item) for item in items)
    return lines.take()
