from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel

from b24mw.kit.schemas import UtcOut
from b24mw.models.enums import InstallationState


class InstallOutcome(StrEnum):
    INSTALLED = "installed"
    UNINSTALLED = "uninstalled"


class InstallAck(BaseModel):
    """The answer to Bitrix24's installation (or uninstallation) request."""

    status: InstallOutcome
    member_id: str | None = None


class AppStatus(BaseModel):
    """How b24mw authenticates to Bitrix24 and, as a local application, its
    installation (never a token)."""

    auth: Literal["webhook", "oauth"]
    installed: bool
    state: InstallationState | None = None
    member_id: str | None = None
    domain: str | None = None
    client_endpoint: str | None = None
    scope: str | None = None
    user_id: int | None = None
    version: int | None = None
    expires_at: UtcOut | None = None
    installed_at: UtcOut | None = None
    refreshed_at: UtcOut | None = None
    events_bound_at: UtcOut | None = None
    last_error: str | None = None
