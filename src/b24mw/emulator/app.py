"""The emulator as an ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Route

from b24mw.emulator.config import EmulatorConfig
from b24mw.emulator.control import core, crm, oauth, openlines, tasks
from b24mw.emulator.portal import Portal
from b24mw.emulator.rest.transport import oauth_call, webhook_call


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """Build the portal (loading `state_file` if set) and its routes.

    The portal is `app.state.portal`; in-process tests can `await
    app.state.portal.events.join()` to wait for event deliveries.
    """
    portal = Portal(config or EmulatorConfig())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await portal.aclose()

    routes = [
        Route("/rest/{user}/{secret}/{method}", webhook_call, methods=["GET", "POST"]),
        Route("/rest/{method}", oauth_call, methods=["GET", "POST"]),
        *core.ROUTES,
        *tasks.ROUTES,
        *openlines.ROUTES,
        *crm.ROUTES,
        *oauth.ROUTES,
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.portal = portal
    return app
