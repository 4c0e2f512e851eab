"""Refuse oversized webhook bodies before the general body limit does.

The general limit (2 MiB, README "HTTP conventions") answers 413 before any route runs, so an
oversized webhook would leave no trace on the SIEM stream.  This middleware
sits outside it and, for the webhook path only, refuses a declared
``Content-Length`` over the (much smaller) webhook limit with the same
generic 401 and a ``too_large`` SIEM line.  Chunked bodies without a length
are counted by the route while it reads them.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from b24mw.kit.problems import problem_response
from b24mw.webhooks.auth import Reason
from b24mw.webhooks.runtime import WEBHOOK_PREFIX, runtime_of


class WebhookBodyGuard:
    def __init__(self, app: ASGIApp, prefix: str = WEBHOOK_PREFIX) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            runtime = runtime_of(scope["app"])
            for key, value in scope.get("headers", ()):
                if key == b"content-length":
                    declared = bytes(value)
                    reason = None
                    if not declared.isdigit():
                        reason = Reason.MALFORMED
                    elif int(declared) > runtime.max_body_bytes:
                        reason = Reason.TOO_LARGE
                    if reason is not None:
                        error = runtime.reject(scope, reason)
                        await problem_response(error)(scope, receive, send)
                        return
        await self.app(scope, receive, send)
