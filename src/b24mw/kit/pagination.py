"""List pagination: pages by number for small lists, by cursor for any size,
and totals that cost only what they are worth.

- **Page mode** (no ``cursor``): ``page``/``page_size`` as before.  The rows
  before the page are read and skipped (OFFSET), so pages reach the first
  ``MAX_OFFSET`` rows (``page × page_size``); deeper is 422 naming ``page``.
- **Cursor mode**: ``cursor`` is the ``next_cursor`` of the previous answer,
  the sort key of its last row.  The next page starts right after that key
  in the index, so it costs one page at any depth, and rows inserted or
  removed meanwhile never shift it (no row is skipped or repeated).  Every
  answer with more rows carries ``next_cursor``, page mode included.
- **Totals** (``count``): ``exact`` counts every matching row; ``estimate``
  (the default in page mode) counts exactly up to ``EXACT_COUNT_CAP`` rows
  and beyond that answers PostgreSQL's planner estimate, marked
  ``total_items_estimated`` (SQLite has none: ``null``); ``none`` (the
  default by cursor) skips them.  A page that shows the end of the list
  gives the exact total for free.  Once the planner expected more than
  ``COUNT_SKIPPED_ABOVE`` rows (asked within the last minute), ``estimate``
  does not count: the planner's figure is the answer either way.

A cursor is base64url of a JSON array: the list's name and the key's values.
It is not signed: it only says where to start, every filter and the
caller's scope still apply, so a forged cursor can show nothing the caller
could not list anyway; a malformed one, or another list's, is 422 naming
``cursor``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from fastapi import Request
from pydantic import BaseModel, Field

from b24mw.kit.errors import FieldError, ValidationFailed
from b24mw.kit.types import INT64_LIMIT, unstorable

T = TypeVar("T")
Read = TypeVar("Read", bound=BaseModel)
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
# Page mode reads every row before its page: no deeper than this (a cursor
# goes anywhere at the cost of one page).
MAX_OFFSET = 10_000
MAX_PAGE = MAX_OFFSET
# Matching rows counted exactly with a page when no exact total was asked.
EXACT_COUNT_CAP = 1_000
# ... unless PostgreSQL's planner expects more than this many (it asked
# within the last minute): then its estimate is the total, uncounted.
COUNT_SKIPPED_ABOVE = 10 * EXACT_COUNT_CAP
MAX_CURSOR_LENGTH = 512
# The attribute marking a ``pagination`` dependency (for the OpenAPI document).
PAGED = "b24mw_paged"


class Count(StrEnum):
    EXACT = "exact"
    ESTIMATE = "estimate"
    NONE = "none"


def _bad_cursor(reason: str) -> ValidationFailed:
    return ValidationFailed(
        f"The cursor is not valid: {reason}.",
        errors=[
            FieldError("query.cursor", f"{reason}; use next_cursor as given", "validation.format")
        ],
    )


@dataclass(frozen=True, slots=True)
class CursorKey:
    """What one list's cursor carries: the list's name (a cursor of another
    list is refused) and the types of its sort key's values, in order."""

    name: str
    kinds: tuple[type, ...]

    def encode(self, values: Sequence[Any]) -> str:
        payload = [self.name, *(_dump(value) for value in values)]
        raw = json.dumps(payload, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def decode(self, cursor: str) -> tuple[Any, ...]:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            payload = json.loads(raw.decode())
        except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
            raise _bad_cursor("not a cursor of this API") from None
        if not isinstance(payload, list) or len(payload) != len(self.kinds) + 1:
            raise _bad_cursor("not a cursor of this API")
        if payload[0] != self.name:
            raise _bad_cursor("a cursor of another list")
        return tuple(
            _load(kind, value) for kind, value in zip(self.kinds, payload[1:], strict=True)
        )


def _dump(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _load(kind: type, value: Any) -> Any:
    try:
        if kind is datetime and isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                return parsed
        elif kind is uuid.UUID and isinstance(value, str):
            return uuid.UUID(value)
        elif kind is int and type(value) is int and -INT64_LIMIT <= value < INT64_LIMIT:
            return value
        elif kind is str and isinstance(value, str) and len(value) <= 256:
            if unstorable(value) is None:
                return value
    except ValueError:
        pass
    raise _bad_cursor("not a cursor of this API")


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One list request: a page by number (``page``) or after a cursor (``after``)."""

    page: int | None
    page_size: int
    after: tuple[Any, ...] | None
    count: Count
    key: CursorKey

    @property
    def offset(self) -> int:
        return 0 if self.page is None else (self.page - 1) * self.page_size


def page_request(
    key: CursorKey,
    *,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    count: Count = Count.ESTIMATE,
) -> PageRequest:
    """A page-mode request (services that list for themselves, tests)."""
    return PageRequest(page=page, page_size=page_size, after=None, count=count, key=key)


# The paging parameters as the OpenAPI document shows them (kit.openapi adds
# them to every operation whose route depends on ``pagination``).
PAGING_PARAMETERS: tuple[dict[str, Any], ...] = (
    {
        "name": "page",
        "description": f"1-based page number (default 1); page × page_size at most"
        f" {MAX_OFFSET:,}: go deeper with `cursor`. Not with `cursor`.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
    },
    {
        "name": "page_size",
        "description": "items per page",
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_PAGE_SIZE,
            "default": DEFAULT_PAGE_SIZE,
        },
    },
    {
        "name": "cursor",
        "description": "`next_cursor` of the previous page: the page after it, at any"
        " depth, unaffected by rows added or removed meanwhile",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_CURSOR_LENGTH},
    },
    {
        "name": "count",
        "description": "`exact`: count every matching row; `estimate` (default without"
        f" `cursor`): exact up to {EXACT_COUNT_CAP:,} rows, beyond that PostgreSQL's"
        " planner estimate (`total_items_estimated`) or null on SQLite; not counted"
        f" at all when the planner expects over {COUNT_SKIPPED_ABOVE:,}; `none`"
        " (default with `cursor`): no total",
        "schema": {"type": "string", "enum": [c.value for c in Count]},
    },
)
_COUNTS = {c.value: c for c in Count}


def _whole(params: Mapping[str, str], name: str, high: int, errors: list[FieldError]) -> int | None:
    text = params.get(name)
    if text is None:
        return None
    digits = text.strip()
    if digits.startswith("+"):
        digits = digits[1:]
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 20:
        errors.append(FieldError(f"query.{name}", "must be a whole number", "validation.format"))
        return None
    value = int(digits)
    if not 1 <= value <= high:
        errors.append(
            FieldError(f"query.{name}", f"must be from 1 to {high:,}", "validation.format")
        )
        return None
    return value


def parse_page_request(key: CursorKey, params: Mapping[str, str]) -> PageRequest:
    """The paging parameters of one list request, or a 422 naming each bad one."""
    errors: list[FieldError] = []
    page = _whole(params, "page", MAX_PAGE, errors)
    page_size = _whole(params, "page_size", MAX_PAGE_SIZE, errors)
    cursor = params.get("cursor")
    if cursor is not None and not 1 <= len(cursor) <= MAX_CURSOR_LENGTH:
        errors.append(
            FieldError(
                "query.cursor",
                f"must be 1 to {MAX_CURSOR_LENGTH} characters",
                "validation.format",
            )
        )
    count_text = params.get("count")
    count = None if count_text is None else _COUNTS.get(count_text)
    if count_text is not None and count is None:
        errors.append(
            FieldError("query.count", f"must be one of: {', '.join(_COUNTS)}", "validation.format")
        )
    if errors:
        raise ValidationFailed(f"{len(errors)} field(s) failed validation.", errors=errors)
    size = page_size or DEFAULT_PAGE_SIZE
    if cursor is not None:
        if page is not None:
            raise ValidationFailed(
                "Give page or cursor, not both.",
                errors=[FieldError("query.page", "not with cursor", "validation.format")],
            )
        return PageRequest(None, size, key.decode(cursor), count or Count.NONE, key)
    page = page or 1
    if page * size > MAX_OFFSET:
        raise ValidationFailed(
            f"Pages reach the first {MAX_OFFSET:,} rows; follow next_cursor past them.",
            errors=[
                FieldError(
                    "query.page",
                    f"page × page_size must not pass {MAX_OFFSET:,}: use cursor",
                    "validation.format",
                )
            ],
        )
    return PageRequest(page, size, None, count or Count.ESTIMATE, key)


def pagination(key: CursorKey) -> Callable[[Request], Awaitable[PageRequest]]:
    """The list parameters of one list, as a route dependency.

    Read by hand rather than declared as four ``Query`` parameters: FastAPI's
    per-parameter validation was the largest share of a history read's time
    in the issue-19 profiles.  The OpenAPI document still lists them
    (``PAGING_PARAMETERS``, added by ``kit.openapi``)."""

    async def dependency(request: Request) -> PageRequest:
        return parse_page_request(key, request.query_params)

    setattr(dependency, PAGED, True)
    return dependency


class Paginated(BaseModel, Generic[T]):
    items: list[T]
    page: int | None = Field(description="the page number in page mode; null by cursor")
    page_size: int
    has_next: bool
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )
    total_items: int | None = Field(
        description="matching rows: exact, estimated (`total_items_estimated`), or null when"
        " not counted (see `count`)"
    )
    total_pages: int | None = Field(description="from `total_items`, like it exact or estimated")
    total_items_estimated: bool = Field(
        description="true when `total_items` is PostgreSQL's planner estimate"
    )

    @classmethod
    def build(cls, items: Sequence[T], rows: Page[Any], request: PageRequest) -> Paginated[T]:
        total = rows.total
        return cls(
            items=list(items),
            page=request.page,
            page_size=request.page_size,
            has_next=rows.has_next,
            next_cursor=rows.next_cursor,
            total_items=total,
            total_pages=None if total is None else math.ceil(total / request.page_size),
            total_items_estimated=rows.estimated,
        )


@dataclass(slots=True)
class Page(Generic[T]):
    """What a repository found for one page: its rows and what is known of the rest."""

    rows: list[T]
    has_next: bool
    next_cursor: str | None
    total: int | None
    estimated: bool = False


def paginated(
    read: type[Read], page: Page[dict[str, Any]], request: PageRequest
) -> Paginated[Read]:
    """A repository's page answered as ``read`` models (a row's children,
    when the list has them, are already in it: ``kit.listing.Children``)."""
    items = [read.model_validate(row) for row in page.rows]
    return _paginated_of(read).build(items, page, request)


@functools.cache
def _paginated_of(read: type[Read]) -> type[Paginated[Read]]:
    # Pydantic looks a parametrized generic up again on every subscript: a
    # hot list or history read pays it once per process instead.
    return Paginated[read]  # type: ignore[valid-type]
