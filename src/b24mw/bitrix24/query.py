"""PHP ``http_build_query`` encoding, as ``batch`` commands need it.

A batch command is ``method?query``; Bitrix24 parses the query with PHP's
``parse_str``, so nested values become bracketed keys
(``FIELDS[POST_MESSAGE]=hi``, ``select[0]=ID``).  Key order is kept: the legacy
``task.commentitem.*`` methods bind their parameters by position.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus


def _scalar(value: Any) -> str:
    # http_build_query: true -> 1, false -> 0.
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _pairs(value: Any, prefix: str, out: list[tuple[str, str]]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _pairs(item, f"{prefix}[{key}]", out)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _pairs(item, f"{prefix}[{index}]", out)
    elif value is not None:  # http_build_query drops nulls
        out.append((prefix, _scalar(value)))


def php_pairs(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in params.items():
        _pairs(value, str(key), out)
    return out


def php_query(params: Mapping[str, Any]) -> str:
    """``{"FIELDS": {"POST_MESSAGE": "a b"}}`` -> ``FIELDS[POST_MESSAGE]=a+b``."""
    return "&".join(
        f"{quote_plus(key, safe='[]')}={quote_plus(value)}" for key, value in php_pairs(params)
    )


def command(method: str, params: Mapping[str, Any] | None) -> str:
    """One ``cmd`` entry of a ``batch`` request."""
    query = php_query(params or {})
    return f"{method}?{query}" if query else method
