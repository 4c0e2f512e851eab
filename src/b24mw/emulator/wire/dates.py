"""Portal-time formatting and lenient date parsing for filters."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any


def portal_tz(utc_offset_minutes: int) -> timezone:
    return timezone(timedelta(minutes=utc_offset_minutes))


def iso(ts: float | None, tz: timezone) -> str | None:
    """Bitrix24 writes dates as `2025-07-23T14:41:41+02:00` in the portal's zone."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")


_SITE_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y")


def parse(value: Any, tz: timezone) -> float | None:
    """ISO 8601 (with or without offset) or the site format `dd.mm.yyyy hh:mm:ss`.

    Values without an offset are in portal time, as the real filters read them.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        for fmt in _SITE_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.timestamp()
