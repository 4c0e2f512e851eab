from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from b24mw.deps import DatabaseDep
from b24mw.kit import metrics
from b24mw.kit.errors import ServiceUnavailable
from b24mw.kit.routing import ApiRoute
from b24mw.kit.schemas import problem_responses

root_router = APIRouter(route_class=ApiRoute, tags=["system"])
router = APIRouter(
    route_class=ApiRoute, prefix="/system", tags=["system"], responses=problem_responses(500, 503)
)


@root_router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers. Anonymous; touches nothing."""
    return {"status": "ok"}


@root_router.get("/metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    """Prometheus exposition format."""
    body, content_type = metrics.render()
    return Response(content=body, media_type=content_type)


@router.get("/ping")
async def ping(db: DatabaseDep) -> dict[str, str]:
    """Readiness: one round trip to the database; 503 problem when it is unreachable."""
    try:
        async with db.reader() as session:
            await session.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as exc:
        raise ServiceUnavailable(
            "The database is unreachable.",
            code="dependency.database_unavailable",
            headers={"Retry-After": "1"},
        ) from exc
    return {"status": "ok", "database": "ok"}
