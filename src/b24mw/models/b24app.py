"""b24mw as a Bitrix24 local application: its installation and OAuth tokens (migration 0008)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from b24mw.models.base import Base, EnumString, in_list, utcnow
from b24mw.models.enums import InstallationState, values

INSTALLATION_STATES = values(InstallationState)


class AppInstallation(Base):
    """The portal b24mw is installed in, with the one valid token pair.

    A refresh rotates both tokens (the old refresh token stops working), so
    the pair is only ever replaced as a whole, under this row's lock, and
    ``version`` counts the replacements: a process whose token was refused
    asks for one newer than the version it used.
    """

    __tablename__ = "b24_app_installation"
    __table_args__ = (CheckConstraint(in_list("state", INSTALLATION_STATES), name="state"),)

    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    domain: Mapped[str] = mapped_column(String(255))
    client_endpoint: Mapped[str] = mapped_column(String(500))
    server_endpoint: Mapped[str | None] = mapped_column(String(500))
    # Secrets: never logged, never shown by the API.
    application_token: Mapped[str | None] = mapped_column(String(128))
    access_token: Mapped[str] = mapped_column(String(512))
    refresh_token: Mapped[str] = mapped_column(String(512))
    expires_at: Mapped[datetime]
    scope: Mapped[str | None] = mapped_column(Text)
    app_status: Mapped[str | None] = mapped_column(String(8))
    # The Bitrix24 user the tokens act as (the one who installed the application).
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[InstallationState] = mapped_column(
        EnumString(InstallationState, 16), default=InstallationState.ACTIVE
    )
    last_error: Mapped[str | None] = mapped_column(Text)
    # Where Bitrix24 reaches b24mw; event handlers are bound under it.
    handler_base: Mapped[str | None] = mapped_column(String(500))
    events_bound_at: Mapped[datetime | None]
    installed_at: Mapped[datetime] = mapped_column(default=utcnow)
    refreshed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
