"""SQL for the installation row (``b24_app_installation``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.b24app.oauth_server import TokenPair
from b24mw.models.b24app import AppInstallation
from b24mw.models.base import utcnow
from b24mw.models.enums import InstallationState

ACTIVE = InstallationState.ACTIVE
REFUSED = InstallationState.REFUSED
UNINSTALLED = InstallationState.UNINSTALLED


def _epoch_to_dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class AppRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _newest(self) -> Any:
        return select(AppInstallation).order_by(AppInstallation.installed_at.desc()).limit(1)

    async def current(self) -> AppInstallation | None:
        """The installation in use (b24mw serves one portal: the newest)."""
        return (await self.session.execute(self._newest())).scalar_one_or_none()

    async def lock_current(self) -> AppInstallation | None:
        """The installation, locked until the transaction ends: PostgreSQL
        ``FOR UPDATE``; on SQLite the unit of work already holds the write lock
        (``BEGIN IMMEDIATE``), which serialises every process."""
        stmt = self._newest().with_for_update().execution_options(populate_existing=True)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def install(self, values: dict[str, Any]) -> AppInstallation:
        """Store a verified installation; it replaces any other portal's row.

        ``version`` keeps counting across installations, so a process holding
        the old token knows the new one is newer.
        """
        existing = await self.lock_current()
        version = (existing.version if existing is not None else 0) + 1
        member_id = values["member_id"]
        await self.session.execute(
            delete(AppInstallation).where(AppInstallation.member_id != member_id)
        )
        row = existing if existing is not None and existing.member_id == member_id else None
        now = utcnow()
        fields = {
            **values,
            "version": version,
            "state": ACTIVE,
            "last_error": None,
            "events_bound_at": None,
            "installed_at": now,
            "refreshed_at": now,
        }
        if row is None:
            row = AppInstallation(**fields)
            self.session.add(row)
        else:
            for key, value in fields.items():
                setattr(row, key, value)
        await self.session.flush()
        return row

    def save_pair(self, row: AppInstallation, pair: TokenPair) -> None:
        """The new pair replaces the old one as a whole (in the caller's transaction)."""
        row.access_token = pair.access_token
        row.refresh_token = pair.refresh_token
        row.expires_at = _epoch_to_dt(pair.expires_at)
        row.client_endpoint = pair.client_endpoint
        row.server_endpoint = pair.server_endpoint or row.server_endpoint
        row.scope = pair.scope or row.scope
        row.app_status = pair.status or row.app_status
        row.user_id = pair.user_id if pair.user_id is not None else row.user_id
        row.version += 1
        row.refreshed_at = utcnow()
        row.last_error = None

    def refuse(
        self, row: AppInstallation, error: str, *, state: InstallationState = REFUSED
    ) -> None:
        """No more calls with this installation until the application is installed again."""
        row.state = state
        row.last_error = error[:2000]

    async def events_bound(self, member_id: str, version_installed_at: datetime) -> bool:
        """Record that the handlers are bound, unless a re-installation came in between."""
        result = await self.session.execute(
            update(AppInstallation)
            .where(
                AppInstallation.member_id == member_id,
                AppInstallation.installed_at == version_installed_at,
                AppInstallation.events_bound_at.is_(None),
            )
            .values(events_bound_at=utcnow())
        )
        return bool(getattr(result, "rowcount", 0))

    async def application_tokens(self) -> list[str]:
        """The ``application_token`` of the active installation (events carry it)."""
        stmt = select(AppInstallation.application_token).where(
            AppInstallation.state == ACTIVE, AppInstallation.application_token.is_not(None)
        )
        return [token for token in (await self.session.scalars(stmt)) if token]
