"""The scalar input types of every request: strict, and bounded to what the
columns they end in can hold.

A value the database cannot store must be refused here with a 422 naming the
field, not meet the database and become a 500: integers are bounded to
BIGINT, money to ``numeric(12, 2)``, dates to what a UTC timestamp can hold,
and text may not carry NUL (PostgreSQL ``text`` cannot hold it; one rule for
every string of a body, a path or a query: ``unstorable``).

Strict means the JSON type is the type: ``true``/``false`` for booleans (not
``0``), numbers for counts and ids (not ``"17"`` or ``17.0``), RFC 3339 text
for dates (not a Unix epoch).  Bodies are validated in Python mode after
``kit.routing`` decoded them (floats as exact ``Decimal``), so the aliases
below spell strictness per type instead of relying on Pydantic's JSON mode.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, WithJsonSchema

INT64_MAX = 2**63 - 1
# Bounds are written as ``lt=2**63``: FastAPI's OpenAPI model stores bounds as
# floats, and 2**63 - 1 as a float is 2**63 (a lie by one); 2**63 is exact.
INT64_LIMIT = 2**63
# numeric(12, 2)
MONEY_MAX = Decimal("9999999999.99")
CENT = Decimal("0.01")


def unstorable(text: str) -> str | None:
    """Why ``text`` cannot be stored as text, or None when it can.

    NUL cannot be stored by PostgreSQL; an unpaired UTF-16 surrogate cannot be
    encoded as UTF-8 by either driver."""
    if "\x00" in text:
        return "must not contain the NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (an unpaired surrogate is not)"
    return None


def storable(text: str) -> str:
    problem = unstorable(text)
    if problem is not None:
        raise ValueError(problem)
    return text


# --- identifiers and counts -------------------------------------------------

# A row id we generated (BIGINT identity), as a path parameter: "0156" and
# "156" are the same order, anything outside 1..2^63-1 cannot exist.
RowId = Annotated[int, Field(ge=1, lt=INT64_LIMIT)]


def as_row_id(text: str) -> int | None:
    """``text`` as a BIGINT id when it is one ("0156" is), else None: search
    text that happens to be digits ("²" is a digit to ``str.isdigit``, and 30
    nines do not fit a BIGINT) is matched as text only."""
    if text.isascii() and text.isdigit():
        value = int(text)
        if 0 < value < INT64_LIMIT:
            return value
    return None


# A positive BIGINT query parameter (Bitrix24 user id filter).
QueryId = Annotated[int, Field(gt=0, lt=INT64_LIMIT)]
# A positive BIGINT in a JSON body: a JSON integer, not "17", 17.0 or true.
BodyId = Annotated[int, Field(strict=True, gt=0, lt=INT64_LIMIT)]
# An INTEGER column (quantities).
Quantity = Annotated[int, Field(strict=True, ge=1, le=1_000_000, description="whole units")]


# --- booleans ----------------------------------------------------------------

# A JSON boolean: 0, 1, "yes" and "false" are not booleans.
Flag = Annotated[bool, Field(strict=True)]


def _query_flag(value: Any) -> Any:
    if value in ("true", "false"):
        return value == "true"
    if isinstance(value, bool):
        return value
    raise ValueError("must be true or false")


# A query parameter always arrives as text: only ``true`` and ``false`` are booleans.
QueryFlag = Annotated[bool, BeforeValidator(_query_flag)]


# --- money -------------------------------------------------------------------

_MONEY_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?")


def _money(value: Any) -> Any:
    # Decimal: a JSON number, decoded exactly (kit.routing), so a price with
    # twenty decimals is refused instead of rounded through a float.  float:
    # a caller in Python; its shortest repr is the number it meant.
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str) and not _MONEY_TEXT.fullmatch(value):
        raise ValueError('must be a decimal number with up to two places, e.g. "1490.00"')
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ValueError('must be a decimal string like "1490.00" or a JSON number')
    return value


Money = Annotated[
    Decimal,
    BeforeValidator(_money),
    Field(ge=0, le=MONEY_MAX, max_digits=12, decimal_places=2, allow_inf_nan=False),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^[0-9]{1,10}(\.[0-9]{1,2})?$"},
                {"type": "number", "minimum": 0, "maximum": 9999999999.99},
            ],
            "description": 'money: a decimal string with up to two places ("1490.00"); a'
            " JSON number is read exactly and refused with more than two decimals",
        }
    ),
]


# --- coordinates -------------------------------------------------------------

# A JSON number (not "55.7" nor true), finite.
Latitude = Annotated[float, Field(strict=True, ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(strict=True, ge=-180, le=180, allow_inf_nan=False)]


# --- dates -------------------------------------------------------------------

# RFC 3339 section 5.6: full date, "T", full time with seconds, offset.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def _rfc3339_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-02-01T00:00:00Z")
    return value


def _in_utc(value: datetime) -> datetime:
    # 0001-01-01T00:00:00+01:00 is a valid date-time whose UTC instant is
    # before year 1: Python (and so both drivers) cannot represent it.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the range years 1 to 9999 in UTC") from None


Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_in_utc)]
