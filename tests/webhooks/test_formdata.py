"""Bitrix24's PHP-style form bodies become the nested structure, or None; never an error."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st

from b24mw.emulator.wire.phpquery import flatten
from b24mw.webhooks.events import EventRef, read_event
from b24mw.webhooks.formdata import parse_body, parse_form

BITRIX24_EXAMPLE = (
    "event=ONTASKADD&event_handler_id=975&data%5BFIELDS_BEFORE%5D=undefined"
    "&data%5BFIELDS_AFTER%5D%5BID%5D=123&data%5BIS_ACCESSIBLE_BEFORE%5D=N"
    "&data%5BIS_ACCESSIBLE_AFTER%5D=undefined&ts=1766047124"
    "&auth%5Bdomain%5D=some-domain.bitrix24.com"
    "&auth%5Bmember_id%5D=d897063e1ce7c5eb9f04b9751eef5915"
    "&auth%5Bapplication_token%5D=jvh9y1ulvt2m6k5or90v9mg8nn32ozas"
)


def test_documented_event_parses_into_nested_keys() -> None:
    parsed = parse_form(BITRIX24_EXAMPLE.encode())
    assert parsed is not None
    assert parsed["event"] == "ONTASKADD"
    assert parsed["data"] == {
        "FIELDS_BEFORE": "undefined",
        "FIELDS_AFTER": {"ID": "123"},
        "IS_ACCESSIBLE_BEFORE": "N",
        "IS_ACCESSIBLE_AFTER": "undefined",
    }
    assert parsed["auth"]["application_token"] == "jvh9y1ulvt2m6k5or90v9mg8nn32ozas"
    assert read_event(parsed) == EventRef("ONTASKADD", 123)


def test_php_rules_for_appends_broken_brackets_and_overrides() -> None:
    parsed = parse_form(b"a[]=x&a[]=y&b[c=1&d=1&d[e]=2&f[g][h]=3")
    assert parsed == {
        "a": {"0": "x", "1": "y"},
        "b[c": "1",
        "d": {"e": "2"},
        "f": {"g": {"h": "3"}},
    }


def test_new_card_comment_reads_task_id_never_id() -> None:
    body = (
        b"event=ONTASKCOMMENTADD&data[FIELDS_AFTER][ID]=0"
        b"&data[FIELDS_AFTER][TASK_ID]=44&data[FIELDS_AFTER][MESSAGE_ID]=901"
    )
    ref = read_event(parse_form(body) or {})
    assert ref is not None
    assert (ref.task_id, ref.comment_id, ref.message_id) == (44, None, 901)
    assert ref.is_new_card_comment


def test_json_and_form_give_the_same_event() -> None:
    as_json = parse_body(b'{"event": "ONTASKUPDATE", "data": {"FIELDS_AFTER": {"ID": 9}}}', None)
    as_form = parse_body(
        b"event=ONTASKUPDATE&data[FIELDS_AFTER][ID]=9", "application/x-www-form-urlencoded"
    )
    assert read_event(as_json or {}) == read_event(as_form or {}) == EventRef("ONTASKUPDATE", 9)


def test_undecodable_or_non_object_bodies_are_none() -> None:
    assert parse_form(b"a=%FF%FE") is None
    assert parse_form(b"\xff\xfe") is None
    assert parse_body(b"[1, 2]", "application/json") is None
    assert parse_body(b"{" * 100_000, "application/json") is None
    assert parse_form(b"&".join(b"k%d=v" % i for i in range(1001))) is None


@given(st.binary(max_size=400))
def test_any_bytes_parse_or_give_none(body: bytes) -> None:
    for content_type in (None, "application/json", "application/x-www-form-urlencoded"):
        result = parse_body(body, content_type)
        assert result is None or isinstance(result, dict)
        if result is not None:
            read_event(result)


keys = st.text(
    st.characters(blacklist_characters="[]", blacklist_categories=["Cs"]), min_size=1, max_size=8
)
nested: Any = st.recursive(
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=10),
    lambda children: st.dictionaries(keys, children, min_size=1, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(keys, nested, max_size=5))
def test_php_encoding_round_trips(document: dict[str, Any]) -> None:
    """What http_build_query writes, the parser reads back."""
    assert parse_form(urlencode(flatten(document)).encode()) == document
