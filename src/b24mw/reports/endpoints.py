from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import PlainValidator, WithJsonSchema

from b24mw.deps import DatabaseDep, ReadSessionDep
from b24mw.kit.auth import Actor, Role, require
from b24mw.kit.errors import FieldError, ValidationFailed
from b24mw.kit.schemas import COMMON_ERRORS
from b24mw.models.enums import OrderStatus
from b24mw.reports import kmp4, service
from b24mw.reports.schemas import (
    CSV_TYPE,
    JSON_TYPE,
    XLSX_TYPE,
    DeliveriesReport,
    ExportFormat,
    Kmp4Page,
    ReportFormat,
    ReportKind,
    ReportQuery,
)
from b24mw.reports.streaming import start_stream

router = APIRouter(prefix="/ww", tags=["reports"], responses=COMMON_ERRORS)

Reporter = Annotated[Actor, Depends(require(Role.COURIER, Role.ADMIN))]
Exporter = Annotated[Actor, Depends(require(Role.ONEC, Role.ADMIN))]


def _date_or_time(value: Any) -> date | datetime:
    """A date, or an RFC 3339 time with its offset (a naive time is ambiguous)."""
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValueError("expected a date (2025-03-31) or an RFC 3339 time with an offset")
    return parsed


DateOrTime = Annotated[
    date | datetime,
    PlainValidator(_date_or_time),
    WithJsonSchema({"type": "string", "examples": ["2025-03-31", "2025-03-31T18:00:00+03:00"]}),
]

CSV_EXAMPLE = (
    "\ufefforder_id,kind,courier_id,courier_name,status,title,customer_name,total_amount,"
    "currency_code,created_at,updated_at,duration_min\r\n"
    '1,instant,c-101,Ivan Petrov,DONE,"Case, charger",Anna Smirnova,2271.00,RUB,'
    "2025-03-03T09:12:44.120000Z,2025-03-03T10:05:12.002000Z,52.5\r\n"
    "TOTALS,1,,,,,,2271.00,RUB,,,52.5\r\n"
)
REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": DeliveriesReport,
        "description": "`format=json` (default): the rows and their totals. `format=csv`: "
        "UTF-8 with BOM, RFC 4180, a `TOTALS` last row, streamed. `format=xlsx`: a workbook "
        "with a summary sheet of charts and the typed rows. CSV and xlsx come as attachments "
        "named `deliveries-<from>-<to>`.",
        "content": {
            JSON_TYPE: {},
            "text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE},
            XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
        "headers": {
            "Content-Disposition": {
                "description": "`attachment; filename=deliveries-<from>-<to>.csv` (or .xlsx)",
                "schema": {"type": "string"},
            }
        },
    }
}
KMP4_EXAMPLE = kmp4.MAGIC_LINE + "\r\n" + ",".join(kmp4.COLUMNS) + "\r\n"
PAGE_HEADERS = {
    "X-Next-Cursor": "the cursor after this page (also `next_cursor` in JSON)",
    "X-Total-Count": "changed orders waiting after `after`, this page included",
    "X-Has-More": "`true` when more changes are waiting",
}
KMP4_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": Kmp4Page,
        "description": "One page of orders changed after `after`, oldest change first. "
        "`format=csv`: the line `#KMP4_DELIVERY_REPORT,v1`, the header, the rows.",
        "content": {
            JSON_TYPE: {},
            "text/csv": {"schema": {"type": "string"}, "example": KMP4_EXAMPLE},
        },
        "headers": {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in PAGE_HEADERS.items()
        },
    }
}


def _start(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.combine(value, time.min, UTC)


def _end_exclusive(value: date | datetime) -> datetime:
    """The first instant after an inclusive ``created_to``: a date's next
    midnight, a time's next microsecond."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) + timedelta(microseconds=1)
    return datetime.combine(value + timedelta(days=1), time.min, UTC)


def _label(value: date | datetime) -> str:
    return (value.astimezone(UTC).date() if isinstance(value, datetime) else value).isoformat()


async def report_query(
    status_: Annotated[list[OrderStatus] | None, Query(alias="status")] = None,
    courier_id: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[ReportKind | None, Query(description="one kind of order only")] = None,
    created_from: Annotated[
        DateOrTime | None,
        Query(description="inclusive: a date (its midnight, UTC) or an RFC 3339 time"),
    ] = None,
    created_to: Annotated[
        DateOrTime | None,
        Query(description="inclusive: a date (through its end, UTC) or an RFC 3339 time"),
    ] = None,
) -> ReportQuery:
    start = _start(created_from) if created_from is not None else None
    before = _end_exclusive(created_to) if created_to is not None else None
    if start is not None and before is not None and start >= before:
        problem = "created_from is after created_to"
        raise ValidationFailed(
            "created_from must not be after created_to.",
            errors=[
                FieldError("query.created_from", problem, "validation.format"),
                FieldError("query.created_to", problem, "validation.format"),
            ],
        )
    return ReportQuery(
        statuses=tuple(dict.fromkeys(s.value for s in status_ or ())),
        courier_id=courier_id,
        kinds=service.kinds_of(kind),
        created_from=start,
        created_before=before,
        label_from=_label(created_from) if created_from is not None else "start",
        label_to=_label(created_to) if created_to is not None else "now",
    )


ReportFilter = Annotated[ReportQuery, Depends(report_query)]


@router.get("/report/deliveries", response_model=None, responses=REPORT_RESPONSES)
async def deliveries_report(
    db: DatabaseDep,
    actor: Reporter,
    query: ReportFilter,
    fmt: Annotated[ReportFormat, Query(alias="format")] = ReportFormat.JSON,
) -> Response:
    """Walking Warehouse orders and 1C deliveries created in the range, oldest
    first, with `duration_min` (first history event → DONE/REFUSED) and totals.
    A courier gets only their own orders; asking for another courier's is 403.
    Every format streams: the answer's memory does not grow with the range."""
    rendered = service.deliveries_report(db, actor, query, fmt)
    headers = {}
    if rendered.filename is not None:
        headers["Content-Disposition"] = f"attachment; filename={rendered.filename}"
    return await start_stream(rendered.chunks, media_type=rendered.media_type, headers=headers)


@router.get("/export/kmp4", response_model=None, responses=KMP4_RESPONSES)
async def export_kmp4(
    session: ReadSessionDep,
    actor: Exporter,
    after: Annotated[
        str | None,
        Query(
            max_length=200,
            description="the `next_cursor` of the previous page, or of the last export: only "
            "orders changed since come back. Omit it for every order. A cursor never skips a "
            "change, even one committing while the pages are read; an order changed again "
            "after it was delivered comes again (with a higher `version`).",
        ),
    ] = None,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=10_000,
            description="orders per page; each page counts what is still waiting (`total`), "
            "so a large backlog goes faster in large pages",
        ),
    ] = 5000,
    fmt: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.JSON,
) -> Response:
    """Orders of both kinds for 1C's KMP4 processing, in the order they changed."""
    page = await service.kmp4_page(await session.connection(), after, limit)
    headers = {
        "X-Next-Cursor": page.next_cursor,
        "X-Total-Count": str(page.total),
        "X-Has-More": "true" if page.has_more else "false",
    }
    if fmt is ExportFormat.CSV:
        headers["Content-Disposition"] = "attachment; filename=kmp4-delivery-report.csv"
        return Response(page.as_csv(), media_type=CSV_TYPE, headers=headers)
    body = json.dumps(page.as_json(), ensure_ascii=False, separators=(",", ":"))
    return Response(body.encode(), media_type=JSON_TYPE, headers=headers)
