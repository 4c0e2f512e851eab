"""Batch commands must parse on the portal exactly as PHP's parse_str reads them."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from b24mw.bitrix24.query import command, php_query
from b24mw.emulator.wire.phpquery import parse_query


def test_nested_keys_are_bracketed_and_order_is_kept() -> None:
    query = php_query({"TASKID": 5, "FIELDS": {"POST_MESSAGE": "hi there", "AUTHOR_ID": 7}})
    assert query == "TASKID=5&FIELDS[POST_MESSAGE]=hi+there&FIELDS[AUTHOR_ID]=7"


def test_lists_booleans_and_nulls_follow_http_build_query() -> None:
    query = php_query({"select": ["ID", "TITLE"], "flag": True, "off": False, "skip": None})
    assert query == "select[0]=ID&select[1]=TITLE&flag=1&off=0"


def test_command_without_params_is_the_bare_method() -> None:
    assert command("user.current", {}) == "user.current"
    assert command("tasks.task.get", {"taskId": 1}) == "tasks.task.get?taskId=1"


def test_special_characters_survive_the_round_trip() -> None:
    text = "Заказ #5: 1 490,00 ₽ & 50% off = ok?\nline [2]"
    parsed = parse_query(php_query({"FIELDS": {"POST_MESSAGE": text}}))
    assert parsed == {"FIELDS": {"POST_MESSAGE": text}}


_keys = st.text(
    alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters="_"),
    min_size=1,
    max_size=8,
).filter(lambda k: not k.isdigit())
_leaves = st.text(max_size=20) | st.integers(-(10**9), 10**9).map(str)
_values = st.recursive(
    _leaves,
    lambda children: st.dictionaries(_keys, children, min_size=1, max_size=3),
    max_leaves=8,
)


@given(st.dictionaries(_keys, _values, min_size=1, max_size=4))
def test_php_query_round_trips_through_parse_str(params: dict[str, Any]) -> None:
    assert parse_query(php_query(params)) == params
