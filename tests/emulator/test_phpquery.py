from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from b24mw.emulator.wire.phpquery import build_query, flatten, parse_query, split_key


def test_nested_keys_become_nested_objects() -> None:
    parsed = parse_query("TASKID=5&FIELDS%5BPOST_MESSAGE%5D=hi&FIELDS[AUTHOR_ID]=3")
    assert parsed == {"TASKID": "5", "FIELDS": {"POST_MESSAGE": "hi", "AUTHOR_ID": "3"}}


def test_empty_brackets_append_to_a_list() -> None:
    assert parse_query("select[]=ID&select[]=TAGS") == {"select": ["ID", "TAGS"]}


def test_filter_prefixes_survive_inside_brackets() -> None:
    parsed = parse_query("filter[>ID]=5&filter[!REAL_STATUS]=5&filter[%3E%3DCHANGED_DATE]=x")
    assert parsed == {"filter": {">ID": "5", "!REAL_STATUS": "5", ">=CHANGED_DATE": "x"}}


def test_sequential_numeric_keys_are_a_list_others_stay_a_map() -> None:
    assert parse_query("a[0]=x&a[1]=y") == {"a": ["x", "y"]}
    assert parse_query("a[0]=x&a[2]=y") == {"a": {"0": "x", "2": "y"}}


def test_later_nested_key_overrides_a_scalar_like_php() -> None:
    assert parse_query("a=1&a[b]=2") == {"a": {"b": "2"}}


def test_malformed_brackets_keep_the_key_whole() -> None:
    assert split_key("a[b") == ["a[b"]
    assert split_key("[a]") == ["[a]"]
    assert parse_query("a[b=1") == {"a[b": "1"}


def test_blank_values_are_kept() -> None:
    assert parse_query("halt=&cmd[a]=user.current") == {"halt": "", "cmd": {"a": "user.current"}}


def test_flatten_writes_php_keys_and_string_scalars() -> None:
    pairs = flatten({"data": {"FIELDS_AFTER": {"ID": 5}, "FLAG": True, "NONE": None}, "list": [1]})
    assert pairs == [
        ("data[FIELDS_AFTER][ID]", "5"),
        ("data[FLAG]", "1"),
        ("data[NONE]", ""),
        ("list[0]", "1"),
    ]


_keys = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True)
_leaves = st.text(max_size=12)
_trees = st.recursive(
    _leaves,
    lambda children: st.dictionaries(_keys, children, min_size=1, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(_keys, _trees, min_size=1, max_size=4))
def test_build_then_parse_round_trips(tree: dict[str, Any]) -> None:
    assert parse_query(build_query(tree)) == tree
