"""JSON request bodies as the portal can read them: UTF-8 text whose strings
are valid Unicode.

Python's ``json`` accepts an escaped unpaired surrogate (``"\\ud800"``); such a
string can be neither written to the state file nor sent on as UTF-8, so one
stored comment would break every later save.  PHP's ``json_decode`` refuses it
(``JSON_ERROR_UTF16``), and so does this.
"""

from __future__ import annotations

import json
from typing import Any


def _valid_unicode(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_valid_unicode(k) and _valid_unicode(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_valid_unicode(item) for item in value)
    return True


def decode_json(body: bytes) -> Any:
    """The document in ``body``; ``ValueError`` when it is not UTF-8 JSON with
    valid Unicode strings (or nests deeper than the parser goes)."""
    try:
        data = json.loads(body.decode("utf-8"))
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if not _valid_unicode(data):
        raise ValueError("unpaired UTF-16 surrogate")
    return data
