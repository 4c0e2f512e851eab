"""Property: no request yields a 500, on either database (issue 11).

For every operation of the OpenAPI document, hypothesis builds requests from
the operation's own schemas — path parameters, query parameters, the JSON
body — and poisons them: any value may be swapped for a hostile one (integers
past BIGINT, NUL, unpaired surrogates, NaN, wrong types, 5,000-level nesting)
and the body's bytes may be broken (not UTF-8, truncated). Every answer must
be below 500, and every 4xx a problem+json with ``errors[]`` and the
``request_id`` of the response. ``B24MW_PROPERTY_EXAMPLES=500`` searches
deeper than the 25 examples per operation CI runs.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b24mw.app import create_app
from b24mw.kit.db import Database
from tests.support.auth import auth
from tests.support.config import make_settings
from tests.support.orders import add_couriers, create_delivery, create_order

SPEC: dict[str, Any] = create_app(make_settings("sqlite+aiosqlite:///:memory:")).openapi()
OPERATIONS = [
    (method.upper(), path) for path, operations in SPEC["paths"].items() for method in operations
]

BIG_INTS = [0, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, 10**400]
HOSTILE_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfff",
    "%",
    "_",
    "\\",
    "²",
    "0156",
    "1e309",
    "NaN",
    "-0",
    "0.5",
    "9" * 30,
    "💥" * 100,
    "x" * 5000,
    "'; DROP TABLE couriers; --",
    "2026-02-01T00:00:00",
    "0001-01-01T00:00:00+01:00",
]
WRONG_TYPES: list[Any] = [None, True, False, [], {}, [1, 2], {"a": 1}, 1.5, -7, "text"]
NAN, INF = float("nan"), float("inf")


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


HOSTILE: list[Any] = [*BIG_INTS, *HOSTILE_TEXT, *WRONG_TYPES, NAN, INF, -INF, 1e308, 0.001]
# 5,000 levels are made on the bytes (below): json.dumps itself recurses.
hostile = st.one_of(st.sampled_from(HOSTILE), st.just(_deep(200)))


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = SPEC["components"]["schemas"][name]
    return schema


def valid_ish(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values shaped by ``schema``, each of which may turn hostile."""
    schema = _resolve(schema)
    shaped = _shaped(schema, depth)
    # Nested values: two times in three of the declared type (itself often
    # hostile: see _shaped), else anything hostile.
    return st.one_of(shaped, shaped, hostile) if depth else shaped


def _shaped(schema: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return st.one_of(*(valid_ish(sub, depth + 1) for sub in schema[key]))
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {
                name: valid_ish(sub, depth + 1)
                for name, sub in properties.items()
                if name in required
            },
            optional={
                name: valid_ish(sub, depth + 1)
                for name, sub in properties.items()
                if name not in required
            }
            | {"unexpected": hostile},
        )
    if kind == "array":
        return st.lists(valid_ish(schema.get("items", {}), depth + 1), max_size=3)
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -(2**63)))
        high = schema.get("maximum", schema.get("exclusiveMaximum", 2**63))
        bounded = st.integers(int(max(low, -(2**63))), int(min(high, 2**63)))
        return st.one_of(bounded, st.sampled_from(BIG_INTS))
    if kind == "number":
        return st.one_of(
            st.decimals(places=2, min_value=0, max_value=10**10, allow_nan=False).map(str),
            st.floats(allow_nan=True, allow_infinity=True),
            st.sampled_from([NAN, INF, 1e308, 0.001, 10**30]),
        )
    if kind == "boolean":
        return st.booleans()
    if kind == "string":
        if schema.get("format") == "uuid":
            text = st.uuids().map(str)
        elif schema.get("format") == "date-time":
            text = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
        else:
            text = st.text(max_size=schema.get("maxLength", 50) + 2)
        return st.one_of(text, st.sampled_from(HOSTILE_TEXT))
    return hostile


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value if isinstance(value, str) else json.dumps(value)


def _quoted(text: str) -> str:
    # An unpaired surrogate goes on the wire as the bytes it would encode to.
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def _body_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=True).encode()


@st.composite
def requests(draw: st.DrawFn, method: str, path: str, ids: dict[str, list[Any]]) -> httpx.Request:
    operation = SPEC["paths"][path][method.lower()]
    url = path
    query: list[tuple[str, str]] = []
    for parameter in operation.get("parameters", ()):
        name, where, schema = parameter["name"], parameter["in"], parameter.get("schema", {})
        if where == "path":
            known = st.sampled_from(ids.get(name) or [1])
            value = draw(st.one_of(known, valid_ish(schema, 1)), label=name)
            url = url.replace("{" + name + "}", _quoted(_query_text(value)))
        elif where == "query" and draw(st.booleans(), label=f"send {name}"):
            query.append((name, _query_text(draw(valid_ish(schema, 1), label=name))))
    if draw(st.booleans(), label="unknown query"):
        query.append(
            ("q\x00" if draw(st.booleans()) else "extra", draw(st.sampled_from(HOSTILE_TEXT)))
        )
    if query:
        url += "?" + "&".join(f"{_quoted(k)}={_quoted(v)}" for k, v in query)
    role, sub = draw(st.sampled_from([("admin", "boss"), ("1c", "erp"), ("courier", "c1")]))
    headers = auth(role, sub) | {"Content-Type": "application/json"}
    content = b""
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None:
        content = _body_bytes(draw(valid_ish(body.get("schema", {})), label="body"))
        content = draw(
            st.sampled_from(
                [
                    content,
                    content,
                    content,
                    content[: len(content) // 2],
                    content.replace(b'"', b'"\xff', 1),
                    b"[" * 5000 + content + b"]" * 5000,
                    content.replace(b"1", b"NaN", 1),
                ]
            ),
            label="bytes",
        )
    return httpx.Request(method, "http://testserver" + url, headers=headers, content=content)


@pytest.fixture
async def ids(client: httpx.AsyncClient, db: Database) -> dict[str, list[Any]]:
    """Rows that exist, so generated requests also reach them."""
    await add_couriers(db)
    order = await create_order(client, courier_id="c1")
    delivery = await create_delivery(client)
    line = {"sku": "S-1", "qty": 1, "quality": "new", "reason_code": "broken"}
    created = await client.post(
        "/api/v1/returns",
        headers=auth("admin"),
        json={"source": "widget", "courier_id": "c1", "items": [line]},
    )
    return {
        "order_id": [order["id"]],
        "delivery_id": [delivery["id"]],
        "return_id": [created.json()["id"], str(uuid.uuid4())],
        "courier_id": ["c1", "c9"],
        "job_id": [1],
    }


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
@settings(
    max_examples=int(os.environ.get("B24MW_PROPERTY_EXAMPLES", "25")),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
async def test_no_input_yields_a_500(
    client: httpx.AsyncClient,
    ids: dict[str, list[Any]],
    method: str,
    path: str,
    data: st.DataObject,
) -> None:
    request = data.draw(requests(method, path, ids))
    response = await client.send(request)
    assert response.status_code < 500, (request.url, request.content[:300], response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json", response.text
        problem = response.json()
        assert isinstance(problem["errors"], list)
        assert problem["request_id"] == response.headers["x-request-id"]
