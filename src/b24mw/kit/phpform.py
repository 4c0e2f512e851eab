"""PHP's ``parse_str`` rules for nested form keys (``data[FIELDS_AFTER][ID]=1``, ``a[]=x``).

Both sides of the wire read them: the webhook inbox parses Bitrix24's event bodies,
the emulator parses the calls made to it.  The walk is the same; how deep a key may
go and which keys count as integers for ``[]`` is the caller's to say.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

NextIndex = Callable[[dict[str, Any]], str]


def split_key(key: str, max_depth: int | None = None) -> list[str]:
    """``a[b][]`` -> ``["a", "b", ""]``; a key without well-formed brackets stays whole.

    Past ``max_depth`` brackets the rest of the key is dropped.
    """
    open_at = key.find("[")
    if open_at <= 0:
        return [key]
    parts = [key[:open_at]]
    rest = key[open_at:]
    while rest.startswith("[") and (max_depth is None or len(parts) <= max_depth):
        close_at = rest.find("]")
        if close_at < 0:
            break
        parts.append(rest[1:close_at])
        rest = rest[close_at + 1 :]
    return parts if len(parts) > 1 else [key]


def next_natural_index(node: dict[str, Any]) -> str:
    """What ``[]`` appends as: one past the largest non-negative integer key, else 0."""
    ints = [int(k) for k in node if k.isascii() and k.isdigit()]
    return str(max(ints) + 1 if ints else 0)


def nest(
    pairs: Iterable[tuple[str, str]],
    *,
    max_depth: int | None = None,
    next_index: NextIndex = next_natural_index,
) -> dict[str, Any]:
    """Decoded ``key=value`` pairs as nested dicts; every key stays a string."""
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        parts = split_key(raw_key, max_depth)
        node = root
        for depth, part in enumerate(parts):
            key = next_index(node) if part == "" else part
            if depth == len(parts) - 1:
                node[key] = value
                break
            child = node.get(key)
            if not isinstance(child, dict):
                # PHP lets a later nested key override an earlier scalar.
                child = {}
                node[key] = child
            node = child
    return root
