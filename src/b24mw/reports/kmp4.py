"""The KMP4 export for 1C: its status codes, its cursor and its item.

The feed is ordered by ``(change_seq, kind, id)``: ``change_seq`` is stamped
by a trigger on every write of an order (migration 0009).  The guarantee 1C
gets, on both engines:

- every committed change of an order is delivered: the order appears, with
  its state at the time of reading, after the last position 1C holds;
- a position is never delivered twice, and a cursor never passes a change
  that is still to commit: an order changed again after it was delivered
  comes again later, with a higher ``version``.

PostgreSQL stamps the writing transaction's id and the feed stops below the
oldest transaction still running (``repository.change_horizon``): every
transaction below it has finished, and a later one gets a higher id.  A
transaction that commits late therefore shows up at its place, never behind a
cursor already handed out — the hole an ``updated_at`` cursor has.  A long
write transaction delays the feed while it runs; it never loses rows.  On
SQLite writers take turns, so the counter the trigger bumps follows commit
order and everything committed is past the horizon.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from b24mw.kit.errors import FieldError, ValidationFailed
from b24mw.models.enums import OrderStatus as S
from b24mw.reports.schemas import ReportKind

MAGIC_LINE = "#KMP4_DELIVERY_REPORT,v1"
COLUMNS = (
    "order_id",
    "title",
    "customer_name",
    "status_code",
    "total_amount",
    "currency_code",
    "courier_id",
    "notes",
    "created_at",
    "updated_at",
)

# docs/reports.md (KMP4 export): the one place our statuses become 1C's KMP4 codes.
STATUS_CODES: Mapping[S, str] = MappingProxyType(
    {
        S.NEW: "new",
        S.PICKING: "picking",
        S.READY: "ready",
        S.PICKED_UP: "picked_up",
        S.ON_ROUTE: "courier_on_route",
        S.DELIVERED: "delivered",
        S.CASH_RETURNED: "cash_returned",
        S.DONE: "completed",
        S.REFUSED: "cancelled_by_manager",
        S.FAILED: "failed",
    }
)
_CODE_OF = {status.value: code for status, code in STATUS_CODES.items()}

# How 1C tells the two kinds apart in one id column.
ID_PREFIX = {ReportKind.INSTANT.value: "ww", ReportKind.DELIVERY.value: "dl"}

CURSOR_VERSION = "k1"
# (change_seq, kind, id) before every row: change_seq is never negative.
START = (-1, "", 0)


def status_code(status: str) -> str:
    return _CODE_OF[status]


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A place in the feed: after the row ``(change_seq, kind, id)``."""

    change_seq: int
    kind: str
    id: int

    def encode(self) -> str:
        raw = f"{CURSOR_VERSION}.{self.change_seq}.{self.kind}.{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def start() -> Position:
    return Position(*START)


def _bad_cursor() -> ValidationFailed:
    return ValidationFailed(
        "The cursor is not one this export handed out.",
        errors=[FieldError("query.after", "not a cursor of this export", "validation.format")],
    )


def decode(cursor: str | None) -> Position:
    """The position a cursor names; None is the start.  Anything else is 422."""
    if cursor is None:
        return start()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, seq, kind, order_id = raw.split(".")
        position = Position(int(seq), kind, int(order_id))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _bad_cursor() from None
    valid = position == start() or (
        kind in ID_PREFIX and position.change_seq >= 0 and position.id > 0
    )
    if version != CURSOR_VERSION or not valid:
        raise _bad_cursor()
    return position


def item(row: Any) -> dict[str, Any]:
    """A feed row (``repository.feed_page``) as a KMP4 item: the CSV columns
    first, then what JSON adds."""
    (kind, order_id, title, customer_name, status, amount, currency, courier_id, notes,
     created, updated, version, external_id_1c, _) = row  # fmt: skip
    return {
        "order_id": f"{ID_PREFIX[kind]}-{order_id}",
        "title": title,
        "customer_name": customer_name,
        "status_code": _CODE_OF[status],
        "total_amount": amount,
        "currency_code": currency,
        "courier_id": courier_id,
        "notes": notes,
        "created_at": created,
        "updated_at": updated,
        "kind": kind,
        "id": order_id,
        "external_id_1c": external_id_1c,
        "version": version,
    }
