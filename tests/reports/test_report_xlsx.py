"""The manager's workbook, read back with openpyxl, unzipped, and opened by
LibreOffice: typed cells, frozen header, filter, widths, and a summary sheet
whose native charts draw the per-day, per-courier and per-status tables."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import openpyxl
import pytest

from b24mw.kit.db import Database
from b24mw.reports import xlsx
from b24mw.reports.rows import REPORT_COLUMNS
from b24mw.reports.schemas import XLSX_TYPE
from tests.reports.helpers import REPORT, T0, Seed, seed
from tests.support.auth import auth
from tests.support.libreoffice import convert

pytestmark = pytest.mark.usefixtures("couriers")
DAY = timedelta(days=1)


async def workbook_bytes(client: httpx.AsyncClient, **params: str) -> bytes:
    response = await client.get(
        REPORT, params={"format": "xlsx", **params}, headers=auth("admin", "boss")
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX_TYPE
    assert response.headers["content-disposition"].endswith(".xlsx")
    return response.content


async def seed_three_days(db: Database) -> None:
    await seed(
        db,
        Seed(
            "instant", "c1", "DONE", T0, "=1+1", amount="100.00", history=[(0, "NEW"), (30, "DONE")]
        ),
        Seed("delivery", "c2", "READY", T0 + timedelta(hours=2), "TV", amount="1250.50"),
        Seed(
            "instant",
            "c2",
            "DONE",
            T0 + DAY,
            "Case",
            amount="200.00",
            history=[(0, "NEW"), (15, "DONE")],
        ),
        Seed(
            "delivery",
            "c1",
            "REFUSED",
            T0 + 2 * DAY,
            "Radio",
            amount="50.00",
            history=[(0, "NEW"), (5, "REFUSED")],
        ),
    )


async def test_data_sheet_has_typed_cells_frozen_header_filter_and_widths(
    client: httpx.AsyncClient, db: Database
) -> None:
    await seed_three_days(db)
    book = openpyxl.load_workbook(io.BytesIO(await workbook_bytes(client)))
    assert book.sheetnames == ["Summary", "Orders"]
    assert book.active is not None and book.active.title == "Summary"
    sheet = book["Orders"]
    assert [c.value for c in sheet[1]] == list(REPORT_COLUMNS)
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:L5"
    assert sheet.column_dimensions["F"].width > sheet.column_dimensions["B"].width

    first = sheet[2]
    assert isinstance(first[0].value, int)
    assert first[5].value == "=1+1" and first[5].data_type == "s"  # text, not a formula
    assert first[7].value == 100 and first[7].number_format == "#,##0.00"
    assert first[9].value == datetime(2025, 3, 1, 9, 0)
    assert first[9].is_date
    assert first[11].value == 30 and first[11].number_format == "0.0"
    assert sheet[3][11].value is None  # READY: open, no duration

    totals = sheet[6]
    assert totals[0].value == "TOTALS" and totals[1].value == 4
    assert totals[7].value == "=SUBTOTAL(109,H2:H5)"
    assert totals[11].value == "=SUBTOTAL(109,L2:L5)"
    values = openpyxl.load_workbook(io.BytesIO(await workbook_bytes(client)), data_only=True)
    assert values["Orders"]["H6"].value == 1600.5  # the cached result
    assert values["Orders"]["L6"].value == 50


async def test_summary_tables_and_charts(client: httpx.AsyncClient, db: Database) -> None:
    await seed_three_days(db)
    data = await workbook_bytes(client)
    summary = openpyxl.load_workbook(io.BytesIO(data))["Summary"]
    assert summary["B4"].value == 4
    assert summary["B5"].value == 1600.5
    assert summary["B6"].value == 50
    table = [[c.value for c in row] for row in summary.iter_rows(min_row=41, max_row=44)]
    assert table[0][:3] == ["Day", "Orders", "Amount"]
    assert [r[:3] for r in table[1:]] == [
        [datetime(2025, 3, 1), 2, 1350.5],
        [datetime(2025, 3, 2), 1, 200],
        [datetime(2025, 3, 3), 1, 50],
    ]
    # Couriers by amount, largest first; statuses in the order of the machine.
    assert [r[4:7] for r in table[1:3]] == [["Courier c2", 2, 1450.5], ["Courier c1", 2, 150]]
    assert [r[8:11] for r in table[1:4]] == [
        ["READY", 1, 1250.5],
        ["DONE", 2, 300],
        ["REFUSED", 1, 50],
    ]

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        charts = sorted(
            n for n in archive.namelist() if re.fullmatch(r"xl/charts/chart\d+\.xml", n)
        )
        xml = [archive.read(n).decode() for n in charts]
        drawing = archive.read("xl/drawings/drawing1.xml").decode()
    assert len(charts) == 3
    assert drawing.count("<c:chart ") == 3
    per_day, per_courier, per_status = xml
    assert "<c:barChart>" in per_day and "<c:lineChart>" in per_day
    assert "Summary!$A$42:$A$44" in per_day
    assert "Summary!$B$42:$B$44" in per_day and "Summary!$C$42:$C$44" in per_day
    assert '<c:barDir val="bar"/>' in per_courier
    assert "Summary!$E$42:$E$43" in per_courier and "Summary!$G$42:$G$43" in per_courier
    assert "Summary!$I$42:$I$44" in per_status and "Summary!$J$42:$J$44" in per_status


async def test_libreoffice_opens_it_on_the_charts(
    client: httpx.AsyncClient, db: Database, tmp_path: Path
) -> None:
    await seed_three_days(db)
    source = tmp_path / "report.xlsx"
    source.write_bytes(await workbook_bytes(client))
    converted = convert(source, "ods", tmp_path / "lo")
    with zipfile.ZipFile(converted) as archive:
        content = archive.read("content.xml").decode()
        objects = [
            archive.read(n).decode()
            for n in archive.namelist()
            if re.fullmatch(r"Object \d+/content\.xml", n)
        ]
    assert content.index('table:name="Summary"') < content.index('table:name="Orders"')
    assert len([o for o in objects if "<chart:chart " in o]) == 3


async def test_an_empty_range_says_so_without_charts(client: httpx.AsyncClient) -> None:
    data = await workbook_bytes(client, created_from="2030-01-01")
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book["Summary"]["A8"].value == "No orders match these filters."
    assert book["Orders"].max_row == 2  # the header and TOTALS
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert not [n for n in archive.namelist() if n.startswith("xl/charts/")]


async def test_rows_past_a_sheet_continue_on_the_next(
    client: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xlsx, "MAX_DATA_ROWS", 3)
    await seed(db, *(Seed(created_at=T0 + timedelta(minutes=n), title=f"o{n}") for n in range(7)))
    book = openpyxl.load_workbook(io.BytesIO(await workbook_bytes(client)))
    assert book.sheetnames == ["Summary", "Orders", "Orders (2)", "Orders (3)"]
    titles = [
        row[5].value for name in book.sheetnames[1:] for row in book[name].iter_rows(min_row=2)
    ]
    assert titles == [f"o{n}" for n in range(7)] + [None]  # the TOTALS row closes the last
    last = book["Orders (3)"]
    assert last["A3"].value == "TOTALS" and last["B3"].value == 7
    assert last["H3"].value == 700  # a value: a SUBTOTAL would see one sheet only
    assert all(book[name].freeze_panes == "A2" for name in book.sheetnames[1:])
