"""The FastAPI application: routers plus the cross-cutting middlewares.

Middleware order, outermost first: request context (request id, log line,
metrics, last-resort 500) → webhook body guard → body limit → unit of work →
idempotency → FastAPI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import APIRouter, FastAPI

from b24mw import __version__
from b24mw.admin.endpoints import router as admin_router
from b24mw.b24app.endpoints import admin_router as b24app_admin_router
from b24mw.b24app.endpoints import router as b24app_router
from b24mw.b24app.runtime import close_runtime as close_b24app
from b24mw.couriers.endpoints import router as couriers_router
from b24mw.crm.endpoints import router as crm_router
from b24mw.deliveries.endpoints import router as deliveries_router
from b24mw.kit.body_limit import BodyLimitMiddleware
from b24mw.kit.db import Database
from b24mw.kit.idempotency import IdempotencyMiddleware
from b24mw.kit.logging import configure_logging
from b24mw.kit.openapi import install_openapi
from b24mw.kit.problems import install_problem_handlers
from b24mw.kit.request_context import RequestContextMiddleware
from b24mw.kit.routing import PARAMETER_CHECKS
from b24mw.kit.uow import UnitOfWorkMiddleware
from b24mw.reports.endpoints import router as reports_router
from b24mw.returns.endpoints import router as returns_router
from b24mw.settings import Settings, get_settings
from b24mw.state import build_state
from b24mw.support.endpoints import router as support_router
from b24mw.system.endpoints import root_router as system_root_router
from b24mw.system.endpoints import router as system_router
from b24mw.webhooks.endpoints import router as webhooks_router
from b24mw.webhooks.guard import WebhookBodyGuard
from b24mw.webhooks.runtime import close_runtime as close_webhooks
from b24mw.ww.endpoints import router as ww_orders_router

API_PREFIX = "/api/v1"
# Bitrix24 cannot send Idempotency-Key; its events are deduplicated by the inbox.
IDEMPOTENCY_EXEMPT = (f"{API_PREFIX}/webhooks/",)


# Routes match in order, candidate by candidate, and each included router is
# a level of matching: the resource routers are included directly under the
# prefix (not through one /api/v1 router), the busiest first — Bitrix24
# events, then the courier-facing writes.
API_ROUTERS: tuple[APIRouter, ...] = (
    webhooks_router,
    ww_orders_router,
    returns_router,
    deliveries_router,
    couriers_router,
    crm_router,
    reports_router,
    support_router,
    admin_router,
    b24app_admin_router,
    b24app_router,
    system_router,
)


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.require_jwt()
    configure_logging(settings.log_level, settings.log_json)
    owns_database = database is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await close_webhooks(app)
        await close_b24app(app)
        if owns_database:
            await db.dispose()

    app = FastAPI(
        title="b24mw",
        version=__version__,
        summary="Middleware between Bitrix24, 1C and Walking Warehouse couriers",
        lifespan=lifespan,
        # FastAPI asks OpenTelemetry for its providers on every request even
        # when none is configured (a few per cent of every request, issue 19).
        telemetry={"tracing": settings.otel, "metrics": settings.otel, "logs": settings.otel},
    )
    db = database or Database(settings, pre_ping=False)
    # Everything the routes need besides the request, built now, not on first use.
    state = app.state = build_state(settings, db)

    install_problem_handlers(app)
    app.include_router(system_root_router)
    for router in API_ROUTERS:
        # Webhooks read their raw body and query themselves (signatures).
        checks = [] if router is webhooks_router else PARAMETER_CHECKS
        app.include_router(router, prefix=API_PREFIX, dependencies=checks)

    app.add_middleware(
        IdempotencyMiddleware,
        database=db,
        verifier=state.verifier,
        ttl=timedelta(hours=settings.idempotency_ttl_hours),
        prefix=f"{API_PREFIX}/",
        exempt=IDEMPOTENCY_EXEMPT,
    )
    # Every unsafe request gets a unit of work, with or without a key.
    app.add_middleware(
        UnitOfWorkMiddleware, database=db, prefix=f"{API_PREFIX}/", ungated=IDEMPOTENCY_EXEMPT
    )
    install_openapi(app, prefix=f"{API_PREFIX}/", exempt=IDEMPOTENCY_EXEMPT)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Outside the body limit: oversized webhooks get a SIEM line (webhooks/guard.py).
    app.add_middleware(WebhookBodyGuard)
    app.add_middleware(RequestContextMiddleware)
    return app
