"""Rows to archive parts and back: gzip JSON Lines with a manifest.

A line is one row as a JSON object, columns in table order.  JSON has no
datetime, UUID, decimal or bytes, so those are written as strings and the
manifest lists every column with its kind; ``decode_row`` turns a line back
into the values the table takes (aware datetimes, ``uuid.UUID``,
``Decimal``...), so a restored row is the row that was archived.

Parts are byte-for-byte reproducible (gzip ``mtime=0``, fixed key order), so
a part written twice by an interrupted and a resumed run has one checksum.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Table
from sqlalchemy.types import TypeDecorator

FORMAT = "b24mw-archive/1"
# Level 1 compresses task history about 6:1 at several times the speed of the
# default level; the archive run is bound by this step, storage is cheap.
GZIP_LEVEL = 1

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _aware(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _same(value: Any) -> Any:
    return value


# kind -> (encode, decode); None passes through both untouched.
KINDS: dict[str, tuple[Encoder, Decoder]] = {
    "int": (_same, int),
    "float": (_same, float),
    "bool": (_same, bool),
    "str": (_same, str),
    "json": (_same, _same),
    "datetime": (_iso, _aware),
    "date": (date.isoformat, date.fromisoformat),
    "uuid": (str, uuid.UUID),
    "decimal": (str, Decimal),
    "bytes": (_b64, base64.b64decode),
}

_PY_KINDS: dict[type, str] = {
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
    datetime: "datetime",
    date: "date",
    uuid.UUID: "uuid",
    Decimal: "decimal",
    bytes: "bytes",
}


def column_kind(column: Any) -> str:
    if isinstance(column.type, JSON):
        return "json"
    sql_type = column.type
    if isinstance(sql_type, TypeDecorator):
        sql_type = sql_type.impl_instance
    python_type = sql_type.python_type
    for base, kind in _PY_KINDS.items():
        if issubclass(python_type, base):
            return kind
    raise TypeError(f"{column.table.name}.{column.name}: no archive kind for {python_type}")


@dataclass(frozen=True, slots=True)
class Schema:
    """The columns of an archived table, as the manifest records them."""

    table: str
    columns: tuple[tuple[str, str, str], ...]  # (name, kind, SQL type)

    @classmethod
    def of(cls, table: Table) -> Schema:
        return cls(
            table.name,
            tuple((c.name, column_kind(c), str(c.type.compile())) for c in table.columns),
        )

    @classmethod
    def from_manifest(cls, doc: dict[str, Any]) -> Schema:
        return cls(doc["table"], tuple((c["name"], c["kind"], c["sql"]) for c in doc["columns"]))

    def as_manifest(self) -> list[dict[str, str]]:
        return [{"name": n, "kind": k, "sql": s} for n, k, s in self.columns]

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.columns]

    def encoder(self) -> Callable[[Sequence[Any]], bytes]:
        """Row (values in column order) -> one JSON line without its newline."""
        names = self.names
        encoders = [KINDS[kind][0] for _, kind, _ in self.columns]
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        pairs = list(zip(names, encoders, strict=True))

        def encode(row: Sequence[Any]) -> bytes:
            doc = {
                name: None if value is None else enc(value)
                for (name, enc), value in zip(pairs, row, strict=True)
            }
            return dumps(doc).encode()

        return encode

    def decoder(self) -> Callable[[bytes], dict[str, Any]]:
        """One line -> the row's values as the table takes them."""
        decoders = {name: KINDS[kind][1] for name, kind, _ in self.columns}

        def decode(line: bytes) -> dict[str, Any]:
            doc = json.loads(line)
            return {
                name: None if value is None else decoders[name](value)
                for name, value in doc.items()
            }

        return decode


@dataclass(frozen=True, slots=True)
class Part:
    """One archive object: the compressed lines and what the manifest says of them."""

    data: bytes
    row_count: int
    first_id: int
    last_id: int
    sha256: str

    @property
    def size_bytes(self) -> int:
        return len(self.data)


def build_part(lines: Iterable[bytes], ids: Sequence[int]) -> Part:
    return compress_lines(b"\n".join(lines) + b"\n", ids)


def compress_lines(raw: bytes, ids: Sequence[int]) -> Part:
    """``raw``: the lines, each ending in a newline."""
    data = gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)
    return Part(data, len(ids), ids[0], ids[-1], hashlib.sha256(data).hexdigest())


class PartMismatch(Exception):
    """What storage holds is not the part the manifest describes."""


def check_part(
    data: bytes, *, sha256: str, row_count: int, first_id: int, last_id: int
) -> list[bytes]:
    """Verify an object read back from storage against its manifest; its lines."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise PartMismatch(f"sha256 {actual} != manifest {sha256}")
    try:
        lines = gzip.decompress(data).splitlines()
    except (OSError, EOFError) as exc:
        raise PartMismatch(f"not a gzip stream: {exc}") from None
    if len(lines) != row_count:
        raise PartMismatch(f"{len(lines)} rows != manifest {row_count}")
    if lines:
        first, last = json.loads(lines[0])["id"], json.loads(lines[-1])["id"]
        if (first, last) != (first_id, last_id):
            raise PartMismatch(f"ids {first}..{last} != manifest {first_id}..{last_id}")
    return lines


def part_key(prefix: str, table: str, day: date, part: int) -> str:
    base = f"{table}/{day:%Y/%m/%d}/part-{part}"
    return f"{prefix}/{base}" if prefix else base


def manifest_doc(
    schema: Schema, day: date, part_no: int, key: str, part: Part, revision: str, now: datetime
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "table": schema.table,
        "day": day.isoformat(),
        "part": part_no,
        "object_key": key,
        "row_count": part.row_count,
        "first_id": part.first_id,
        "last_id": part.last_id,
        "size_bytes": part.size_bytes,
        "sha256": part.sha256,
        "schema_revision": revision,
        "created_at": _iso(now),
        "columns": schema.as_manifest(),
    }


def dump_manifest(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, indent=2).encode() + b"\n"
