"""Russian phone numbers, normalised to ``+7XXXXXXXXXX`` (README "HTTP conventions")."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s\-().]")


def normalize_phone(raw: str) -> str:
    """Accept +7XXXXXXXXXX, 8XXXXXXXXXX and formatted variants; raise ValueError otherwise."""
    compact = _SEPARATORS.sub("", raw.strip())
    if compact.startswith("+7"):
        digits = compact[2:]
    elif compact.startswith("8") and len(compact) == 11:
        digits = compact[1:]
    else:
        raise ValueError("phone must be +7XXXXXXXXXX (8XXXXXXXXXX accepted)")
    if len(digits) != 10 or not digits.isdigit():
        raise ValueError("phone must be +7XXXXXXXXXX (8XXXXXXXXXX accepted)")
    return "+7" + digits
