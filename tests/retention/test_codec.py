"""Archive lines keep every column's type: what goes in comes back equal."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Uuid,
)

from b24mw.models.base import UtcDateTime
from b24mw.retention.codec import PartMismatch, Schema, build_part, check_part

SAMPLE = Table(
    "sample",
    MetaData(),
    Column("id", BigInteger, primary_key=True),
    Column("at", UtcDateTime()),
    Column("day", Date),
    Column("ref", Uuid),
    Column("amount", Numeric(12, 2)),
    Column("doc", JSON),
    Column("flag", Boolean),
    Column("ratio", Float),
    Column("blob", LargeBinary),
    Column("name", String(40)),
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
rows = st.fixed_dictionaries(
    {
        "id": st.integers(1, 2**62),
        "at": st.none() | st.datetimes(timezones=st.just(UTC)),
        "day": st.none() | st.dates(),
        "ref": st.none() | st.uuids(),
        "amount": st.none()
        | st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False),
        "doc": json_values,
        "flag": st.none() | st.booleans(),
        "ratio": st.none() | st.floats(allow_nan=False, allow_infinity=False),
        "blob": st.none() | st.binary(max_size=40),
        "name": st.none() | st.text(max_size=40),
    }
)


@given(rows)
def test_a_row_comes_back_with_its_types(row: dict[str, Any]) -> None:
    schema = Schema.of(SAMPLE)
    line = schema.encoder()([row[name] for name in schema.names])
    assert b"\n" not in line
    back = schema.decoder()(line)
    assert back == row
    assert {k: type(v) for k, v in back.items()} == {k: type(v) for k, v in row.items()}


def test_the_manifest_schema_decodes_like_the_table() -> None:
    schema = Schema.of(SAMPLE)
    again = Schema.from_manifest({"table": "sample", "columns": schema.as_manifest()})
    row = [
        7,
        datetime(2026, 1, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        date(2026, 1, 31),
        None,
        Decimal("1740.50"),
        {"a": [1, "б"]},
        True,
        0.5,
        b"\x00\xff",
        "x",
    ]
    assert again.decoder()(schema.encoder()(row)) == dict(zip(schema.names, row, strict=True))
    assert dict((n, k) for n, k, _ in again.columns)["amount"] == "decimal"


def test_parts_are_reproducible_and_checked() -> None:
    lines = [b'{"id":1}', b'{"id":2}', b'{"id":5}']
    part = build_part(lines, [1, 2, 5])
    assert build_part(lines, [1, 2, 5]) == part  # same bytes, same checksum
    good: dict[str, Any] = {"sha256": part.sha256, "row_count": 3, "first_id": 1, "last_id": 5}
    assert check_part(part.data, **good) == lines
    with pytest.raises(PartMismatch, match="rows"):
        check_part(part.data, **{**good, "row_count": 4})
    with pytest.raises(PartMismatch, match="ids"):
        check_part(part.data, **{**good, "last_id": 4})
    with pytest.raises(PartMismatch, match="sha256"):
        check_part(part.data[:-1], **good)
