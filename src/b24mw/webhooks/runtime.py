"""The per-app webhook machinery (authenticator, SIEM stream, limits) and the
one way a rejection is answered: the same generic 401 whatever the reason,
the reason itself only on the SIEM stream and in the metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import Scope

from b24mw.b24app.tokens import InstalledTokens
from b24mw.kit.errors import AppError
from b24mw.settings import Settings
from b24mw.siem import SecurityEvent, SiemStream, open_stream
from b24mw.webhooks import metrics
from b24mw.webhooks.auth import Reason, WebhookAuthenticator
from b24mw.webhooks.inbox_pg import PgInbox

WEBHOOK_PREFIX = "/api/v1/webhooks/"
GENERIC_DETAIL = "The webhook could not be accepted."


class WebhookUnauthorized(AppError):
    status = 401
    code = "auth.webhook_rejected"
    title = "Unauthorized"

    def __init__(self) -> None:
        super().__init__(GENERIC_DETAIL)


@dataclass
class WebhookRuntime:
    authenticator: WebhookAuthenticator
    siem: SiemStream
    max_body_bytes: int
    # PostgreSQL only: the ingest path's own small pool (see inbox_pg).
    pg_inbox: PgInbox | None = None
    # B24MW_B24_AUTH=oauth: the installed application's token, accepted in token mode.
    installed: InstalledTokens | None = None

    async def aclose(self) -> None:
        if self.pg_inbox is not None:
            await self.pg_inbox.aclose()
        self.siem.close()

    def reject(self, scope: Scope, reason: Reason) -> WebhookUnauthorized:
        """Report a rejection and return the error to answer with."""
        self.siem.emit(security_event(scope, reason))
        metrics.count("rejected", reason.value)
        return WebhookUnauthorized()


def build_runtime(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    siem: SiemStream | None = None,
) -> WebhookRuntime:
    installed = InstalledTokens() if settings.b24_auth == "oauth" else None
    authenticator = WebhookAuthenticator(
        settings.webhook_auth,
        secrets=settings.webhook_secret_list,
        app_tokens=settings.webhook_app_token_list,
        member_id=settings.webhook_member_id,
        domain=settings.webhook_domain,
        clock=clock,
        installed_tokens=installed.current if installed is not None else tuple,
    )
    return WebhookRuntime(
        authenticator=authenticator,
        installed=installed,
        siem=siem or open_stream(settings.siem_sink),
        max_body_bytes=settings.webhook_max_body_bytes,
        pg_inbox=(
            None
            if settings.is_sqlite
            else PgInbox(settings.database_url, max_size=settings.db_pool_size)
        ),
    )


def runtime_of(app: Any) -> WebhookRuntime:
    """The runtime ``create_app`` built (``b24mw.state``); for the pure ASGI
    guard, which runs before FastAPI has a request to depend on."""
    runtime: WebhookRuntime = app.state.webhooks
    return runtime


def install_runtime(app: Any, runtime: WebhookRuntime) -> None:
    """Replace the runtime (tests inject a clock or a sink this way).  The
    replaced one has served no request, so its ingest pool was never opened:
    closing its SIEM stream is all it needs."""
    previous: WebhookRuntime | None = getattr(app.state, "webhooks", None)
    if previous is not None and previous is not runtime:
        previous.siem.close()
    app.state.webhooks = runtime


async def close_runtime(app: Any) -> None:
    """At shutdown: close the ingest pool, if one was opened."""
    runtime: WebhookRuntime | None = getattr(app.state, "webhooks", None)
    if runtime is not None:
        await runtime.aclose()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def security_event(scope: Scope, reason: Reason) -> SecurityEvent:
    client = scope.get("client")
    return SecurityEvent(
        reason=reason.value,
        source_ip=client[0] if client else None,
        request_id=scope.get("state", {}).get("request_id"),
        path=scope.get("path", ""),
        user_agent=_header(scope, b"user-agent"),
    )
