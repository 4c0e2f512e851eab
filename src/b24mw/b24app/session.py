"""Calls as the installed local application: the OAuth side of ``PortalAuth``.

Every refresh rotates the refresh token (the old one stops working), so two
processes refreshing at once would lock b24mw out of the portal.  One
refresher at a time, across processes and machines: the refresh runs inside
a transaction holding the installation row's lock (PostgreSQL ``FOR
UPDATE``; SQLite's write lock), re-reads the row under the lock, and uses
the token another process just stored instead of refreshing again.  The new
pair is saved in that same transaction, and the refresh is shielded from
cancellation so a stopping worker does not lose a pair the server already
rotated.

Tokens are refreshed ``B24MW_B24_TOKEN_MARGIN_S`` before they expire, when a
call needs one (never on a timer: the OAuth server blocks applications that
refresh needlessly), and once more when the portal refuses one as expired or
invalid.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import structlog
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.b24app.oauth_server import TokenError, TokenPair, TokenServer
from b24mw.b24app.repository import ACTIVE, UNINSTALLED, AppRepository
from b24mw.bitrix24.client import Credentials, rate_limit_key
from b24mw.bitrix24.errors import CallError, Outcome
from b24mw.bitrix24.throttle import SharedThrottle
from b24mw.history.repository import log_exchange
from b24mw.kit.db import Database
from b24mw.models.b24app import AppInstallation
from b24mw.models.enums import LogDirection
from b24mw.settings import Settings

log = structlog.get_logger("b24mw.b24app")

REFRESHES = Counter(
    "b24mw_b24_token_refreshes_total",
    "OAuth token refreshes by outcome (ok, refused, unavailable)",
    ["outcome"],
)
# How often a process that cannot call looks for a new installation.
RECHECK_S = 5.0
# After the OAuth server failed to answer: 5 s, 10 s, 20 s... up to 5 minutes.
BACKOFF_S = (5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0)
TOKEN_ENDPOINT = "oauth/token"


@dataclass(frozen=True, slots=True)
class Grant:
    base_url: str
    access_token: str
    expires_at: float
    version: int
    user_id: int | None

    @classmethod
    def of(cls, row: AppInstallation) -> Grant:
        return cls(
            base_url=row.client_endpoint,
            access_token=row.access_token,
            expires_at=row.expires_at.timestamp(),
            version=row.version,
            user_id=row.user_id,
        )

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.base_url, self.access_token, self.version)


@dataclass(slots=True)
class _Block:
    """Why no call can be made: until a newer installation (``until`` None) or a time."""

    error: CallError
    version: int | None
    until: float | None = None


def _unusable(code: str, description: str) -> CallError:
    # Nothing reached the portal: retrying later cannot duplicate anything.
    return CallError(Outcome.RETRYABLE, code, description, may_have_run=False)


def not_installed() -> CallError:
    return _unusable(
        "OAUTH_NOT_INSTALLED",
        "b24mw is not installed in the portal as a local application yet",
    )


def refused(row: AppInstallation) -> CallError:
    if row.state == UNINSTALLED:
        return _unusable("OAUTH_UNINSTALLED", "the application was uninstalled; install it again")
    return _unusable(
        "OAUTH_REFRESH_REFUSED",
        f"the OAuth server refused the refresh token ({row.last_error}); "
        "install the application again",
    )


class AppSession:
    """``PortalAuth`` for the installed application (one per process)."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        http: httpx.AsyncClient,
        *,
        throttle: SharedThrottle | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.server = TokenServer(settings, http, clock=clock)
        self.throttle = throttle
        self.clock = clock
        self.margin_s = settings.b24_token_margin_s
        self.slot_wait_s = settings.b24_timeout_s
        self.recheck_s = RECHECK_S
        self._portal = rate_limit_key(settings) or "oauth"
        self._grant: Grant | None = None
        # Unknown until the first look at the database (``ready``).
        self._block: _Block | None = _Block(not_installed(), None)
        self._checked_at = float("-inf")
        self._failures = 0
        self._lock = asyncio.Lock()

    @property
    def portal(self) -> str:
        return self._portal

    @property
    def user_id(self) -> int | None:
        return self._grant.user_id if self._grant is not None else None

    def _fresh(self, grant: Grant | None) -> bool:
        return grant is not None and grant.expires_at - self.margin_s > self.clock()

    async def credentials(self) -> Credentials | CallError:
        grant = self._grant
        if self._fresh(grant) and grant is not None:
            return grant.credentials
        async with self._lock:  # one coroutine per process looks; the database lock does the rest
            grant = self._grant
            if self._fresh(grant) and grant is not None:
                return grant.credentials
            return await self._obtain(stale=None)

    async def renewed(self, rejected: Credentials) -> Credentials | CallError:
        async with self._lock:
            grant = self._grant
            if grant is not None and grant.version > rejected.version and self._fresh(grant):
                outcome: Credentials | CallError = grant.credentials
            else:
                outcome = await self._obtain(stale=rejected.version)
        if isinstance(outcome, Credentials) and self.throttle is not None:
            # The repeated call is a request of its own: it takes a slot like any other.
            await self.throttle.acquire(self.slot_wait_s)
        return outcome

    async def ready(self) -> bool:
        """Answered from memory; every ``recheck_s`` the row is read again, so an
        uninstallation or a new installation stored by any process is seen."""
        block = self._block
        now = self.clock()
        if block is not None and block.until is not None and now >= block.until:
            self._block = block = None
        if now - self._checked_at < self.recheck_s:
            return block is None
        self._checked_at = now
        async with self.db.reader() as session:
            row = await AppRepository(session).current()
        if row is None or row.state != ACTIVE:
            self._grant = None
            error = refused(row) if row is not None else not_installed()
            self._set_block(_Block(error, row.version if row is not None else None))
            return False
        if block is not None and row.version == block.version:
            return False
        if self._grant is not None and self._grant.version != row.version:
            self._grant = None  # replaced elsewhere: read it again before the next call
        self._block = None
        return True

    async def _obtain(self, *, stale: int | None) -> Credentials | CallError:
        """The stored token if it is usable, else a refresh (one process at a time)."""
        async with self.db.reader() as session:
            row = await AppRepository(session).current()
        if row is None:
            return self._blocked(not_installed(), None)
        if row.state != ACTIVE:
            return self._blocked(refused(row), row.version)
        grant = Grant.of(row)
        if self._fresh(grant) and row.version != stale:
            return self._adopt(grant)
        block = self._block
        if block is not None and block.until is not None and row.version == block.version:
            if self.clock() < block.until:
                return block.error  # the OAuth server failed a moment ago: do not hammer it
        # Shielded: once the server has rotated the pair, it must be saved.
        return await asyncio.shield(self._refresh(seen=row.version, stale=stale))

    async def _refresh(self, *, seen: int, stale: int | None) -> Credentials | CallError:
        async with self.db.unit_of_work() as session:
            repo = AppRepository(session)
            row = await repo.lock_current()
            if row is None:
                return self._blocked(not_installed(), None)
            if row.state != ACTIVE:
                return self._blocked(refused(row), row.version)
            grant = Grant.of(row)
            if row.version != seen or (self._fresh(grant) and row.version != stale):
                # Another process refreshed (or the application was re-installed)
                # while this one waited for the lock: its token is the one to use.
                return self._adopt(grant)
            try:
                pair = await self.server.refresh(row.refresh_token)
                if pair.member_id != row.member_id:
                    raise TokenError(
                        "MEMBER_MISMATCH", "the token belongs to another portal", refused=True
                    )
            except TokenError as failure:
                _log(session, row, None, failure)
                if failure.refused:
                    repo.refuse(row, failure.text)
                    return self._refused(row, failure)
                return self._unavailable(seen, failure)
            _log(session, row, pair, None)
            repo.save_pair(row, pair)
            grant = Grant.of(row)
        REFRESHES.labels("ok").inc()
        self._failures = 0
        log.info("b24_token_refreshed", version=grant.version, portal=self._portal)
        return self._adopt(grant)

    def _refused(self, row: AppInstallation, failure: TokenError) -> CallError:
        REFRESHES.labels("refused").inc()
        log.error("b24_token_refused", code=failure.code, portal=self._portal)
        return self._blocked(refused(row), row.version)

    def _unavailable(self, seen: int, failure: TokenError) -> CallError:
        REFRESHES.labels("unavailable").inc()
        log.warning("b24_token_server_unavailable", code=failure.code, portal=self._portal)
        wait = BACKOFF_S[min(self._failures, len(BACKOFF_S) - 1)]
        self._failures += 1
        error = _unusable("OAUTH_SERVER_UNAVAILABLE", f"no new token: {failure.text}")
        return self._blocked(error, seen, until=self.clock() + wait)

    def _adopt(self, grant: Grant) -> Credentials:
        self._grant = grant
        self._block = None
        return grant.credentials

    def _blocked(
        self, error: CallError, version: int | None, *, until: float | None = None
    ) -> CallError:
        self._grant = None
        self._set_block(_Block(error, version, until))
        self._checked_at = self.clock()
        return error

    def _set_block(self, block: _Block) -> None:
        previous = self._block
        if previous is None or previous.error.code != block.error.code:
            # Once per change: calls to Bitrix24 wait until this is resolved.
            log.warning(
                "b24_calls_waiting",
                code=block.error.code,
                reason=block.error.description,
                portal=self._portal,
            )
        self._block = block


def _log(
    session: AsyncSession,
    row: AppInstallation,
    pair: TokenPair | None,
    failure: TokenError | None,
) -> None:
    # Tokens and the client secret never reach the log: the request is named by
    # its grant type, the answer by what is public in it.
    log_exchange(
        session,
        direction=LogDirection.OUT,
        system="b24",
        endpoint=TOKEN_ENDPOINT,
        status="ok" if pair is not None else "error",
        http_code=failure.http_status if failure is not None else 200,
        resource_ref=f"b24app:{row.member_id}",
        request={"grant_type": "refresh_token", "version": row.version},
        response=pair.public() if pair is not None else {"error": failure.text if failure else ""},
        error_code=failure.code if failure is not None else None,
    )
