"""Authentic events the database could not store: a clear 401 (``malformed``)
or a row stored safely, never a 500 — Bitrix24 never sends an event twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from b24mw.kit.db import Database
from b24mw.models.ops import WebhookInbox
from b24mw.webhooks.auth import sign
from tests.support.webhooks import (
    APP_TOKEN,
    SECRET,
    URL,
    Hook,
    assert_generic_401,
    inbox_rows,
    open_hook,
    task_event,
)

MEMBER_ID = "d897063e1ce7c5eb9f04b9751eef5915"  # what token_hook checks
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
ONTASKADD = '{"event": "ONTASKADD", "data": {"FIELDS_AFTER": {"ID": %s}}}'


async def post_raw(hook: Hook, body: bytes, content_type: str, **extra: str) -> Any:
    ts = str(int(hook.clock()))
    headers = {
        "content-type": content_type,
        "x-request-id": f"r-{abs(hash((body, content_type)))}",
        "x-request-timestamp": ts,
        "x-signature": sign(SECRET, ts, body),
        **extra,
    }
    return await hook.client.post(URL, content=body, headers=headers)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (ONTASKADD % str(2**64), JSON),  # past BIGINT
        (ONTASKADD % str(2**63), JSON),
        (ONTASKADD % '"99999999999999999999"', JSON),
        (ONTASKADD % "-5", JSON),
        (ONTASKADD % "1.5", JSON),
        (ONTASKADD % "NaN", JSON),
        (ONTASKADD % "Infinity", JSON),
        (ONTASKADD % "1e400", JSON),  # overflows to infinity
        ('{"event": "ONTASKADD", "ts": NaN}', JSON),
        ('{"event": "ONTASK\\ud800ADD"}', JSON),
        ('{"event": "ONTASKADD", "data": {"\\ud800": "1"}}', JSON),
        ('{"event": "ONTASKADD", "ts": "\\udfff"}', JSON),
        ('{"event": "ONTASK\\u0000ADD"}', JSON),
        ('{"event": "ONTASKADD", "x": ' + "[" * 70 + "]" * 70 + "}", JSON),
        ("event=ONTASKADD&data[FIELDS_AFTER][ID]=" + "9" * 25, FORM),
        ("event=ONTASKADD&data[FIELDS_AFTER][ID]=%ED%A0%80", FORM),  # a surrogate in UTF-8
        ("event=ON%00TASKADD&data[FIELDS_AFTER][ID]=1", FORM),
        ("event=" + "E" * 65, FORM),
    ],
)
async def test_what_cannot_be_stored_is_malformed_not_a_500(
    hook: Hook, db: Database, body: str, content_type: str
) -> None:
    response = await post_raw(hook, body.encode(), content_type)
    assert_generic_401(response)
    assert [line["reason"] for line in hook.siem_lines()] == ["malformed"]
    assert await inbox_rows(db) == []


async def test_nul_and_odd_text_where_nothing_reads_it_is_stored_as_sent(
    hook: Hook, db: Database
) -> None:
    payload = task_event(5)
    payload["ts"] = "17660\x0047124"
    payload["auth"]["domain"] = "portal\x00.example ☃ 𝄞"
    for as_json in (False, True):
        payload["event_handler_id"] = "json" if as_json else "form"
        response = await hook.post_signed(payload, as_json=as_json)
        assert response.json() == {"status": "accepted"}
    rows = await inbox_rows(db)
    assert [r.payload["ts"] for r in rows] == ["17660\x0047124"] * 2
    assert {r.payload["auth"]["domain"] for r in rows} == {"portal\x00.example ☃ 𝄞"}
    assert hook.siem_lines() == []


async def test_token_mode_rejects_a_number_past_64_bits_too(token_hook: Hook, db: Database) -> None:
    body = json.dumps(task_event(1)).replace('"ID": "1"', f'"ID": {2**70}').encode()
    response = await token_hook.client.post(URL, content=body, headers={"content-type": JSON})
    assert_generic_401(response)
    assert [line["reason"] for line in token_hook.siem_lines()] == ["malformed"]
    assert await inbox_rows(db) == []


# ------------------------------------------------------------------ property

# Values a hostile or broken sender could put anywhere in an event.
nasty_text = st.text(
    st.characters(codec=None, categories=("L", "N", "P", "S", "Z", "Cc", "Cs")), max_size=12
)
nasty_scalar = st.one_of(
    nasty_text,
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.sampled_from(["undefined", "0", "17", "-1", str(2**63), "1e400", ""]),
    st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**30]),
)
json_value: Any = st.recursive(
    nasty_scalar,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(nasty_text, children, max_size=3)
    ),
    max_leaves=10,
)
# Mostly what Bitrix24 sends, so that many bodies get as far as the database.
real_names = st.sampled_from(["ONTASKADD", "ONTASKUPDATE", "ONTASKDELETE", "ONTASKCOMMENTADD"])
event_names = st.one_of(real_names, real_names, nasty_text)
real_ids = st.one_of(st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1).map(str))
ids = st.one_of(real_ids, real_ids, real_ids, nasty_scalar)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    after = {"ID": draw(ids), "TASK_ID": draw(ids), "MESSAGE_ID": draw(ids)}
    return {
        "event": draw(event_names),
        "data": {"FIELDS_AFTER": after, "FIELDS_BEFORE": draw(json_value)},
        "ts": draw(json_value),
        "auth": {
            "application_token": APP_TOKEN,
            "member_id": MEMBER_ID,
            "domain": draw(nasty_text),
        },
        **draw(st.dictionaries(nasty_text, json_value, max_size=2)),
    }


def json_bytes(document: Any) -> bytes:
    # NaN/Infinity as Python writes them; lone surrogates as \\u escapes.
    return json.dumps(document, allow_nan=True).encode()


def form_bytes(document: dict[str, Any]) -> bytes:
    pairs: list[str] = []

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}[{key}]" if prefix else str(key), value)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(f"{prefix}[{i}]", value)
        else:
            # surrogatepass: a lone surrogate goes out as its (invalid) UTF-8 bytes
            raw = str(node).encode("utf-8", "surrogatepass")
            key = prefix.encode("utf-8", "surrogatepass")
            pairs.append(f"{quote(key, safe='[]')}={quote(raw)}")

    walk("", document)
    return "&".join(pairs).encode()


bodies = st.one_of(
    st.tuples(events().map(json_bytes), st.just(JSON)),
    st.tuples(events().map(form_bytes), st.just(FORM)),
    st.tuples(json_value.map(json_bytes), st.sampled_from([JSON, FORM, ""])),
    st.tuples(st.binary(max_size=300), st.sampled_from([JSON, FORM, ""])),
)
PROPERTY = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


async def stored_rows_read_back(db: Database) -> None:
    """What was stored is what the worker can load (the JSON column round-trips)."""
    async with db.reader() as session:
        for row in (await session.execute(select(WebhookInbox))).scalars():
            assert isinstance(row.payload, dict)


@PROPERTY
@given(body=bodies)
async def test_no_signed_body_gets_a_500(hook: Hook, db: Database, body: tuple[bytes, str]) -> None:
    raw, content_type = body
    response = await post_raw(hook, raw, content_type)
    assert response.status_code in (200, 401), response.text
    if response.status_code == 200:
        await stored_rows_read_back(db)


@pytest.fixture
async def both_hook(db: Database, tmp_path: Path) -> Any:
    h = await open_hook(db, tmp_path, webhook_auth="both")
    try:
        yield h
    finally:
        await h.close()


@PROPERTY
@given(body=bodies)
async def test_no_signed_body_with_a_valid_token_gets_a_500(
    both_hook: Hook, db: Database, body: tuple[bytes, str]
) -> None:
    raw, content_type = body
    response = await post_raw(both_hook, raw, content_type)
    assert response.status_code in (200, 401), response.text
    if response.status_code == 200:
        await stored_rows_read_back(db)


@PROPERTY
@given(body=bodies)
async def test_no_body_with_a_valid_token_gets_a_500(
    token_hook: Hook, db: Database, body: tuple[bytes, str]
) -> None:
    raw, content_type = body
    headers = {"content-type": content_type}
    response = await token_hook.client.post(URL, content=raw, headers=headers)
    assert response.status_code in (200, 401), response.text
    if response.status_code == 200:
        await stored_rows_read_back(db)
