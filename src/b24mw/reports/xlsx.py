"""The manager's workbook: a summary sheet with native charts first, then the
orders as typed cells.

XlsxWriter in ``constant_memory`` mode keeps one row per sheet in memory and
writes the rest to temporary files; the finished workbook is a temporary file
streamed to the client and removed.  What the summary needs (per day, per
courier, per status) is aggregated while the rows pass: at most one entry per
day of the range, per courier and per status.

Text is always written as a string cell (``write_string``), never guessed, so
a title starting with ``=`` is text here without any neutralising.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections import defaultdict
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from b24mw.models.enums import OrderStatus
from b24mw.reports.csvout import TOTALS_LABEL
from b24mw.reports.rows import REPORT_COLUMNS, ZERO, Totals

SUMMARY, DATA = "Summary", "Orders"
# Excel's last row is 1,048,576: a header, the rows, a totals row.
MAX_DATA_ROWS = 1_048_576 - 2
WIDTHS = (10, 9, 14, 24, 14, 36, 28, 14, 9, 19, 19, 12)
MONEY, DATETIME, DAY, DURATION = "#,##0.00", "yyyy-mm-dd hh:mm:ss", "yyyy-mm-dd", "0.0"
TABLES_ROW = 40  # the summary's tables start below the charts
FILE_CHUNK = 64 * 1024
UNASSIGNED = "(unassigned)"


@dataclass(slots=True)
class _Tally:
    orders: int = 0
    amount: Decimal = ZERO

    def add(self, amount: Decimal) -> None:
        self.orders += 1
        self.amount += amount


@dataclass(slots=True)
class _Summary:
    days: defaultdict[date, _Tally] = field(default_factory=lambda: defaultdict(_Tally))
    couriers: defaultdict[str, _Tally] = field(default_factory=lambda: defaultdict(_Tally))
    statuses: defaultdict[str, _Tally] = field(default_factory=lambda: defaultdict(_Tally))

    def add(self, created: datetime, courier: str, status: str, amount: Decimal) -> None:
        self.days[created.date()].add(amount)
        self.couriers[courier].add(amount)
        self.statuses[status].add(amount)


class _Writer:
    def __init__(self, path: str, title: str) -> None:
        self.book = xlsxwriter.Workbook(
            path,
            {
                "constant_memory": True,
                "remove_timezone": True,
                "strings_to_formulas": False,
                "strings_to_numbers": False,
                "strings_to_urls": False,
                "tmpdir": os.path.dirname(path),
            },
        )
        self.book.set_properties({"title": title, "subject": "b24mw deliveries report"})
        self.title = title
        bold = {"bold": True}
        self.header = self.book.add_format({**bold, "bg_color": "#DDEBF7", "bottom": 1})
        self.bold = self.book.add_format(bold)
        self.money = self.book.add_format({"num_format": MONEY})
        self.money_bold = self.book.add_format({**bold, "num_format": MONEY})
        self.datetime = self.book.add_format({"num_format": DATETIME})
        self.day = self.book.add_format({"num_format": DAY})
        self.duration = self.book.add_format({"num_format": DURATION})
        self.duration_bold = self.book.add_format({**bold, "num_format": DURATION})
        # Added first: the workbook opens on the picture.
        self.summary_sheet = self.book.add_worksheet(SUMMARY)
        self.summary_sheet.activate()
        self.sheets: list[Worksheet] = []
        self.row = 0
        self.summary = _Summary()
        self._new_data_sheet()

    def _new_data_sheet(self) -> None:
        name = DATA if not self.sheets else f"{DATA} ({len(self.sheets) + 1})"
        sheet = self.book.add_worksheet(name)
        for col, width in enumerate(WIDTHS):
            sheet.set_column(col, col, width)
        sheet.write_row(0, 0, REPORT_COLUMNS, self.header)
        sheet.freeze_panes(1, 0)
        sheet.set_landscape()
        sheet.fit_to_pages(1, 0)
        sheet.repeat_rows(0)
        self.sheets.append(sheet)
        self.row = 0

    def _close_data_sheet(self) -> None:
        self.sheets[-1].autofilter(0, 0, max(self.row, 1), len(REPORT_COLUMNS) - 1)

    def rows(self, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            (order_id, kind, courier_id, courier_name, status, title, customer, amount,
             currency, created, updated, tenths) = row  # fmt: skip
            if self.row == MAX_DATA_ROWS:
                self._close_data_sheet()
                self._new_data_sheet()
            self.row += 1
            n, sheet = self.row, self.sheets[-1]
            sheet.write_number(n, 0, order_id)
            sheet.write_string(n, 1, kind)
            self._text(sheet, n, 2, courier_id)
            self._text(sheet, n, 3, courier_name)
            sheet.write_string(n, 4, status)
            sheet.write_string(n, 5, title)
            sheet.write_string(n, 6, customer)
            sheet.write_number(n, 7, float(amount), self.money)
            sheet.write_string(n, 8, currency)
            sheet.write_datetime(n, 9, created, self.datetime)
            sheet.write_datetime(n, 10, updated, self.datetime)
            if tenths is not None:
                sheet.write_number(n, 11, tenths / 10, self.duration)
            self.summary.add(created, courier_name or courier_id or UNASSIGNED, status, amount)

    @staticmethod
    def _text(sheet: Worksheet, row: int, col: int, value: str | None) -> None:
        if value:
            sheet.write_string(row, col, value)

    def finish(self, totals: Totals, filters: str) -> None:
        self._close_data_sheet()
        self._totals_row(totals)
        self._summary(totals, filters)
        self.book.close()

    def _totals_row(self, totals: Totals) -> None:
        sheet, n = self.sheets[-1], self.row + 1
        sheet.write_string(n, 0, TOTALS_LABEL, self.bold)
        sheet.write_number(n, 1, totals.orders, self.bold)
        amount, minutes = float(totals.amount), totals.duration_min
        if len(self.sheets) == 1 and self.row:
            # SUBTOTAL(109): what the filter leaves visible; the value is the
            # unfiltered total, shown until the spreadsheet recalculates.
            sheet.write_formula(n, 7, f"=SUBTOTAL(109,H2:H{n})", self.money_bold, amount)
            sheet.write_formula(n, 11, f"=SUBTOTAL(109,L2:L{n})", self.duration_bold, minutes)
        else:
            sheet.write_number(n, 7, amount, self.money_bold)
            sheet.write_number(n, 11, minutes, self.duration_bold)
        sheet.write_string(n, 8, totals.currency_label, self.bold)

    def _summary(self, totals: Totals, filters: str) -> None:
        sheet = self.summary_sheet
        sheet.set_landscape()
        sheet.fit_to_pages(1, 0)
        sheet.set_column(0, 0, 30)
        for amount_col in (1, 2, 6, 10):
            sheet.set_column(amount_col, amount_col, 16)
        sheet.set_column(4, 4, 24)
        sheet.set_column(8, 8, 16)
        sheet.write_string(0, 0, self.title, self.bold)
        sheet.write_string(1, 0, filters)
        sheet.write_string(3, 0, "Orders", self.bold)
        sheet.write_number(3, 1, totals.orders)
        sheet.write_string(4, 0, f"Amount ({totals.currency_label or '-'})", self.bold)
        sheet.write_number(4, 1, float(totals.amount), self.money)
        sheet.write_string(5, 0, "Duration, min (closed orders)", self.bold)
        sheet.write_number(5, 1, totals.duration_min, self.duration)
        if not totals.orders:
            sheet.write_string(7, 0, "No orders match these filters.")
            return
        days = sorted(self.summary.days.items())
        couriers = sorted(self.summary.couriers.items(), key=lambda kv: (-kv[1].amount, kv[0]))
        statuses = [(s.value, self.summary.statuses[s.value]) for s in OrderStatus]
        statuses = [(name, tally) for name, tally in statuses if tally.orders]
        self._tables(sheet, days, couriers, statuses)
        self._charts(sheet, len(days), len(couriers), len(statuses))

    def _tables(
        self,
        sheet: Worksheet,
        days: list[tuple[date, _Tally]],
        couriers: list[tuple[str, _Tally]],
        statuses: list[tuple[str, _Tally]],
    ) -> None:
        # constant_memory: a row is final once the next one starts, so the
        # three tables are written side by side, row by row.
        heads = (("Day", 0), ("Courier", 4), ("Status", 8))
        for name, col in heads:
            sheet.write_row(TABLES_ROW, col, (name, "Orders", "Amount"), self.header)
        for i in range(max(len(days), len(couriers), len(statuses))):
            n = TABLES_ROW + 1 + i
            if i < len(days):
                day, tally = days[i]
                sheet.write_datetime(n, 0, day, self.day)
                self._tally(sheet, n, 1, tally)
            if i < len(couriers):
                sheet.write_string(n, 4, couriers[i][0])
                self._tally(sheet, n, 5, couriers[i][1])
            if i < len(statuses):
                sheet.write_string(n, 8, statuses[i][0])
                self._tally(sheet, n, 9, statuses[i][1])

    def _tally(self, sheet: Worksheet, row: int, col: int, tally: _Tally) -> None:
        sheet.write_number(row, col, tally.orders)
        sheet.write_number(row, col + 1, float(tally.amount), self.money)

    def _charts(self, sheet: Worksheet, days: int, couriers: int, statuses: int) -> None:
        first = TABLES_ROW + 1

        def cells(col: int, count: int) -> list[Any]:
            return [SUMMARY, first, col, first + count - 1, col]

        per_day = self.book.add_chart({"type": "column"})
        assert per_day is not None
        per_day.add_series(
            {"name": "Orders", "categories": cells(0, days), "values": cells(1, days)}
        )
        amount_line = self.book.add_chart({"type": "line"})
        assert amount_line is not None
        amount_line.add_series(
            {
                "name": "Amount",
                "categories": cells(0, days),
                "values": cells(2, days),
                "y2_axis": True,
            }
        )
        per_day.combine(amount_line)
        per_day.set_title({"name": "Orders and amount per day"})
        per_day.set_x_axis({"date_axis": True, "num_format": "dd.mm"})
        per_day.set_y_axis({"name": "Orders", "min": 0})
        amount_line.set_y2_axis({"name": "Amount", "min": 0})
        per_day.set_legend({"position": "bottom"})
        sheet.insert_chart("D1", per_day, {"x_scale": 1.6, "y_scale": 1.2})

        per_courier = self.book.add_chart({"type": "bar"})
        assert per_courier is not None
        per_courier.add_series(
            {"name": "Amount", "categories": cells(4, couriers), "values": cells(6, couriers)}
        )
        per_courier.set_title({"name": "Amount per courier"})
        per_courier.set_x_axis({"min": 0})
        per_courier.set_legend({"none": True})
        sheet.insert_chart("A20", per_courier, {"x_scale": 1.1, "y_scale": 1.0})

        per_status = self.book.add_chart({"type": "column"})
        assert per_status is not None
        per_status.add_series(
            {"name": "Orders", "categories": cells(8, statuses), "values": cells(9, statuses)}
        )
        per_status.set_title({"name": "Orders per status"})
        per_status.set_y_axis({"min": 0})
        per_status.set_legend({"none": True})
        sheet.insert_chart("I20", per_status, {"x_scale": 1.1, "y_scale": 1.0})


async def report_xlsx(
    batches: AsyncIterator[Sequence[Sequence[Any]]], totals: Totals, title: str, filters: str
) -> AsyncGenerator[bytes, None]:
    """The workbook, built in a temporary directory and then streamed; the
    directory is removed when the stream ends, however it ends."""
    with tempfile.TemporaryDirectory(prefix="b24mw-xlsx-") as tmp:
        path = os.path.join(tmp, "report.xlsx")
        writer = _Writer(path, title)
        async for rows in batches:
            totals.add(rows)
            writer.rows(rows)
        # Zipping the sheets is the long, blocking part: off the event loop.
        await asyncio.to_thread(writer.finish, totals, filters)
        with open(path, "rb") as handle:  # noqa: ASYNC230 - local temp file, read in chunks
            while chunk := handle.read(FILE_CHUNK):
                yield chunk
