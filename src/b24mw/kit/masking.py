"""Personal data masking for logs and the integration log (README "HTTP conventions",
"Personal data")."""

from __future__ import annotations

import re
from typing import Any

# +7XXXXXXXXXX, 8XXXXXXXXXX and formatted variants such as +7 (912) 345-67-89;
# not glued to letters or digits, so ids (a UUID's "…b8891-0471-458a…") stay intact.
_PHONE = re.compile(r"(?<![0-9A-Za-z])(\+7|8)([\s\-()]*\d){10}(?![0-9A-Za-z])")
# Keys whose whole value is personal: masked whatever their content.
_PERSONAL_KEYS = frozenset(
    {"address", "customer_name", "client_phone", "phone", "customer", "imei", "serial"}
)


def mask_phones(text: str) -> str:
    def _mask(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return f"+7******{digits[-4:-2]}**"

    return _PHONE.sub(_mask, text)


def _mask_scalar(value: Any) -> Any:
    if value is None:
        return None
    text = str(value)
    return text[:1] + "***" if text else text


def mask_personal(value: Any, *, key: str | None = None) -> Any:
    """A copy of ``value`` with phones masked everywhere and personal keys hidden."""
    if key is not None and key.lower() in _PERSONAL_KEYS and not isinstance(value, dict | list):
        return _mask_scalar(value)
    if isinstance(value, str):
        return mask_phones(value)
    if isinstance(value, dict):
        return {k: mask_personal(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_personal(v) for v in value]
    return value
