"""Route dependencies both order kinds share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from pydantic import AwareDatetime

from b24mw.settings import Settings


def _locale(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return settings.locale


# The language of what is written into Bitrix24 (``B24MW_LOCALE``).
Locale = Annotated[str, Depends(_locale)]
# List filters take RFC 3339 with an offset; a naive time is ambiguous.
Rfc3339 = AwareDatetime
