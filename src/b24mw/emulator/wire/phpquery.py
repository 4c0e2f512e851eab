"""PHP-style nested form keys (`FIELDS[POST_MESSAGE]=hi`, `select[]=ID`) in both directions.

Bitrix24 is PHP: a form body or query string becomes nested arrays by the rules of
`parse_str`, and outgoing events are encoded the way `http_build_query` does it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from b24mw.kit.phpform import nest
from b24mw.kit.phpform import split_key as split_key

Nested = dict[str, Any] | list[Any]


def _next_index(node: dict[str, Any]) -> str:
    # Unlike the inbox's rule, negative keys count: `a[-3]=x&a[]=y` appends at -2 (PHP 8.3).
    ints = [int(k) for k in node if k.isdigit() or (k.startswith("-") and k[1:].isdigit())]
    return str(max(ints) + 1 if ints else 0)


def _as_php_array(value: Any) -> Any:
    """Turn dicts whose keys are exactly "0".."n-1" into lists, as json_encode would."""
    if isinstance(value, dict):
        converted = {k: _as_php_array(v) for k, v in value.items()}
        keys = list(converted)
        if keys and keys == [str(i) for i in range(len(keys))]:
            return list(converted.values())
        return converted
    return value


def parse_pairs(pairs: Iterable[tuple[str, str]]) -> Nested:
    result: Nested = _as_php_array(nest(pairs, next_index=_next_index))
    return result


def parse_query(query: str) -> Nested:
    return parse_pairs(parse_qsl(query, keep_blank_values=True))


def scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def flatten(data: Mapping[str, Any] | list[Any], prefix: str = "") -> list[tuple[str, str]]:
    """The pairs `http_build_query` would produce; empty arrays vanish, as in PHP."""
    pairs: list[tuple[str, str]] = []
    items = data.items() if isinstance(data, Mapping) else enumerate(data)
    for key, value in items:
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping | list):
            pairs.extend(flatten(value, name))
        else:
            pairs.append((name, scalar(value)))
    return pairs


def build_query(data: Mapping[str, Any]) -> str:
    return urlencode(flatten(data))
