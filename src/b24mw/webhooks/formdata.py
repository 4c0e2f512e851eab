"""Bitrix24's event bodies: PHP-style nested form keys, or the same shape as JSON.

``data[FIELDS_AFTER][ID]=123`` becomes ``{"data": {"FIELDS_AFTER": {"ID": "123"}}}``
by the rules of PHP's ``parse_str``: ``a[]`` appends the next integer key, a
key with broken brackets stays whole, a later nested key replaces an earlier
scalar.  Total: any bytes give a dict or ``None`` (undecodable, or over the
limits PHP itself applies), never an exception.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

# PHP's max_input_vars and max_input_nesting_level; a real event uses ~15 keys.
MAX_PAIRS = 1000
MAX_DEPTH = 64


def split_key(key: str) -> list[str]:
    """``a[b][]`` -> ``["a", "b", ""]``; a key without well-formed brackets stays whole."""
    open_at = key.find("[")
    if open_at <= 0:
        return [key]
    parts = [key[:open_at]]
    rest = key[open_at:]
    while rest.startswith("[") and len(parts) <= MAX_DEPTH:
        close_at = rest.find("]")
        if close_at < 0:
            break
        parts.append(rest[1:close_at])
        rest = rest[close_at + 1 :]
    return parts if len(parts) > 1 else [key]


def _next_index(node: dict[str, Any]) -> str:
    ints = [int(k) for k in node if k.isascii() and k.isdigit()]
    return str(max(ints) + 1 if ints else 0)


def nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        parts = split_key(raw_key)
        node = root
        for depth, part in enumerate(parts):
            key = _next_index(node) if part == "" else part
            if depth == len(parts) - 1:
                node[key] = value
                break
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child
    return root


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
    return nest(pairs)


def parse_json(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def parse_body(body: bytes, content_type: str | None) -> dict[str, Any] | None:
    """JSON when declared (or, undeclared, when it looks like JSON); form otherwise."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return parse_json(body)
    if not media and body.lstrip()[:1] == b"{":
        return parse_json(body)
    return parse_form(body)
