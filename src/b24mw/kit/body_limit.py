"""Refuse request bodies over the limit (2 MiB; README "HTTP conventions") while they stream.

``Content-Length`` is checked up front; chunked bodies are counted as they
arrive, so an oversized upload is cut off without being buffered.
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from b24mw.kit.errors import PayloadTooLarge
from b24mw.kit.problems import problem_response


class BodyTooLarge(HTTPException):
    """An HTTPException so FastAPI's body reader lets it through unchanged
    (it turns any other exception into a 400); the problem handler maps 413."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="Payload Too Large")


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body exceeds {limit} bytes.")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await problem_response(_too_large(self.max_bytes))(scope, receive, send)
                    return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await problem_response(_too_large(self.max_bytes))(scope, receive, send)
