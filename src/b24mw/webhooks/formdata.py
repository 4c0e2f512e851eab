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
