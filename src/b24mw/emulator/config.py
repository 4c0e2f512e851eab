"""Emulator settings: what the CLI takes, plus the seams tests need (clock, transport)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

DEFAULT_PORT = 8090
DEFAULT_REST_SECRET = "emulator"
DEFAULT_APPLICATION_TOKEN = "emulator-application-token"
DEFAULT_CLIENT_ID = "local.b24mw0emulator.00000001"
DEFAULT_CLIENT_SECRET = "emulator-client-secret"
DEFAULT_WEBHOOK_SCOPE = "task,user,im,imopenlines,crm"
OAUTH_SERVER_ENDPOINT = "https://oauth.bitrix.info/rest/"


@dataclass
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    rest_user: int = 1
    rest_secret: str = DEFAULT_REST_SECRET
    handler_url: str | None = None
    application_token: str = DEFAULT_APPLICATION_TOKEN
    # The local application (emulator/oauth.py): its keys and token lifetime.
    oauth_client_id: str = DEFAULT_CLIENT_ID
    oauth_client_secret: str = DEFAULT_CLIENT_SECRET
    access_token_lifetime_s: float = 3600.0
    sign_secret: str | None = None
    # The scopes the incoming webhook was given (comma-separated).
    webhook_scope: str = DEFAULT_WEBHOOK_SCOPE
    # The task card the portal shows: "classic" (comments) or "new" (task chats).
    task_card: str = "classic"
    # Whether the webhook user is a portal administrator (sees and may act on every task).
    rest_user_admin: bool = True
    # Whether `tasks.task.get` returns tags when `select` has TAGS.
    task_get_tags: bool = True
    rps: float = 2.0
    burst: float = 50.0
    operating_limit_s: float = 480.0
    operating_window_s: float = 600.0
    # Simulated execution seconds charged per call on top of the measured time,
    # so tests can reach the operating limit without slow calls.
    operating_cost_s: float = 0.0
    operating_costs: dict[str, float] = field(default_factory=dict)
    state_file: Path | None = None
    domain: str | None = None
    member_id: str | None = None
    event_handler_id: int = 1
    event_timeout_s: float = 5.0
    events_enabled: bool = True
    utc_offset_minutes: int = 180
    max_calls: int = 50_000
    max_events: int = 10_000
    clock: Callable[[], float] = time.time
    handler_transport: httpx.AsyncBaseTransport | None = None

    @property
    def portal_domain(self) -> str:
        return self.domain or f"{self.host}:{self.port}"

    @property
    def client_endpoint(self) -> str:
        if self.domain:
            return f"https://{self.domain}/rest/"
        return f"http://{self.host}:{self.port}/rest/"

    @property
    def portal_member_id(self) -> str:
        if self.member_id:
            return self.member_id
        # Stable per domain, shaped like the real 32-hex member id.
        return hashlib.md5(self.portal_domain.encode(), usedforsecurity=False).hexdigest()
