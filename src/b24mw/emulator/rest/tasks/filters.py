"""Bitrix24 list filters (`!`, `<`, `<=`, `>`, `>=`, `%` prefixes) and ordering."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import timezone
from typing import Any, Literal, TypeVar

from b24mw.emulator.rest.tasks.service import as_int, as_list
from b24mw.emulator.wire import dates

Kind = Literal["int", "str", "date", "tags"]
T = TypeVar("T")
Field = tuple[Kind, Callable[[T], Any]]

# Longest first, so `<=` is not read as `<` plus a field named `=X`.
_PREFIXES = ("!=", "<=", ">=", "!%", "!", "<", ">", "=", "%")


def split_key(key: str) -> tuple[str, str]:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            op = {"!=": "!", "=": ""}.get(prefix, prefix)
            return op, key[len(prefix) :]
    return "", key


def _like(pattern: str) -> re.Pattern[str]:
    parts = (".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _convert(kind: Kind, value: Any, tz: timezone) -> Any:
    if kind == "int":
        return as_int(value)
    if kind == "date":
        return dates.parse(value, tz)
    if value is None:
        return None
    return str(value)


def _equal(kind: Kind, actual: Any, expected: Any) -> bool:
    if kind == "tags":
        return isinstance(expected, str) and expected.casefold() in {t.casefold() for t in actual}
    if kind == "str":
        if not isinstance(actual, str) or expected is None:
            return False
        if "%" in expected or "_" in expected:
            return _like(expected).fullmatch(actual) is not None
        return actual.casefold() == expected.casefold()
    return actual is not None and actual == expected


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if actual is None or expected is None:
        return False
    if op == "<":
        return bool(actual < expected)
    if op == "<=":
        return bool(actual <= expected)
    if op == ">":
        return bool(actual > expected)
    return bool(actual >= expected)


def matches(op: str, kind: Kind, actual: Any, raw_expected: Any, tz: timezone) -> bool:
    candidates = as_list(raw_expected) if isinstance(raw_expected, list | dict) else [raw_expected]
    expected = [_convert(kind, value, tz) for value in candidates]
    if kind == "date" and op in ("", "!") and all(c in ("", None) for c in candidates):
        # `CLOSED_DATE: ""` asks for an empty date, `!CLOSED_DATE: ""` for a set one.
        return (actual is None) == (op == "")
    if op == "":
        return any(_equal(kind, actual, e) for e in expected)
    if op == "!":
        return not any(_equal(kind, actual, e) for e in expected)
    if op in ("%", "!%"):
        found = any(
            isinstance(actual, str) and isinstance(e, str) and e.casefold() in actual.casefold()
            for e in expected
        )
        return found if op == "%" else not found
    if kind == "tags":
        return False
    return any(_compare(op, actual, e) for e in expected)


def apply_filter(
    items: Iterable[T],
    filter_spec: Mapping[str, Any],
    fields: Mapping[str, Field[T]],
    tz: timezone,
) -> list[T]:
    """Keep items matching every known condition; unknown keys are ignored, as the portal does."""
    conditions: list[tuple[str, Kind, Callable[[T], Any], Any]] = []
    for key, value in filter_spec.items():
        op, name = split_key(str(key))
        field = fields.get(name.upper())
        if field is not None:
            conditions.append((op, field[0], field[1], value))
    return [
        item
        for item in items
        if all(matches(op, kind, getter(item), value, tz) for op, kind, getter, value in conditions)
    ]


def sort_items(
    items: list[T],
    order: Iterable[tuple[str, str]],
    getters: Mapping[str, Callable[[T], Any]],
) -> list[T]:
    """Stable multi-key sort; NULLs first ascending, like MySQL."""
    result = list(items)
    for name, direction in reversed(list(order)):
        getter = getters[name]

        def key(item: T, getter: Callable[[T], Any] = getter) -> tuple[int, Any]:
            value = getter(item)
            return (0, 0) if value is None else (1, value)

        result.sort(key=key, reverse=direction == "desc")
    return result


def parse_order(
    order: Any, allowed: Iterable[str], on_bad_key: Callable[[str], Exception]
) -> list[tuple[str, str]]:
    if not isinstance(order, Mapping):
        return []
    known = set(allowed)
    parsed: list[tuple[str, str]] = []
    for raw_key, raw_direction in order.items():
        name = str(raw_key).upper()
        if name not in known:
            raise on_bad_key(str(raw_key))
        direction = "desc" if str(raw_direction).strip().lower() == "desc" else "asc"
        parsed.append((name, direction))
    return parsed
