"""Bitrix24's event bodies: PHP-style nested form keys, or the same shape as JSON.

``data[FIELDS_AFTER][ID]=123`` becomes ``{"data": {"FIELDS_AFTER": {"ID": "123"}}}``
by the rules of PHP's ``parse_str``: ``a[]`` appends the next integer key, a
key with broken brackets stays whole, a later nested key replaces an earlier
scalar.  Total: any bytes give a dict or ``None`` (undecodable, or over the
limits PHP itself applies), never an exception.

JSON is held to what a database can store and RFC 8259 calls interoperable:
``NaN``/``Infinity`` (and numbers that overflow to them), strings with lone
surrogates and nesting deeper than PHP allows give ``None`` too, because
the JSON column and the UTF-8 text around it would refuse them later, after
the sender had been told nothing.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import parse_qsl

from b24mw.kit import phpform

# PHP's max_input_vars and max_input_nesting_level; a real event uses ~15 keys.
MAX_PAIRS = 1000
MAX_DEPTH = 64


def parse_form(body: bytes) -> dict[str, Any] | None:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_PAIRS,
        )
    except (UnicodeDecodeError, ValueError):
        return None
    return phpform.nest(pairs, max_depth=MAX_DEPTH)


class _NotStorable(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NotStorable(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotStorable(f"{text[:20]} overflows")
    return value


def _storable(value: Any) -> bool:
    """No string (key or value) that UTF-8 cannot encode, no nesting past ``MAX_DEPTH``."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                return False
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in items:
                stack.append((key, depth))
                stack.append((child, depth + 1))
    return True


def parse_json(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or not _storable(value):
        return None
    return value


def parse_body(body: bytes, content_type: str | None) -> dict[str, Any] | None:
    """JSON when declared (or, undeclared, when it looks like JSON); form otherwise."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return parse_json(body)
    if not media and body.lstrip()[:1] == b"{":
        return parse_json(body)
    return parse_form(body)
