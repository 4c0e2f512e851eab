"""The installed application's ``application_token``, for authenticating events.

Bitrix24 puts it into ``auth[application_token]`` of every event it sends to
the application's handlers.  In ``token``/``both`` webhook mode it is accepted
alongside ``B24MW_WEBHOOK_APP_TOKENS``.  The installation may have been
stored by another process a moment ago, so an event whose token is unknown
makes this process look again — at most once per ``interval_s`` whatever the
number of such events (a flood of forged tokens costs four reads a second),
and always with a read that started after the event was refused.
"""

from __future__ import annotations

import asyncio
import time

from b24mw.b24app.repository import AppRepository
from b24mw.kit.db import Database


class InstalledTokens:
    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s = interval_s
        self._tokens: tuple[str, ...] = ()
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    def current(self) -> tuple[str, ...]:
        return self._tokens

    async def reload(self, db: Database, *, refused_at: float) -> None:
        """Make sure a read that began after ``refused_at`` (``time.monotonic()``) is in."""
        async with self._lock:
            if self._loaded_at > refused_at:
                return
            wait = self._loaded_at + self.interval_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._loaded_at = time.monotonic()
            async with db.reader() as session:
                self._tokens = tuple(await AppRepository(session).application_tokens())
