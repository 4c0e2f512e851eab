"""The `/_emulator/` control API: what tests and benchmarks use to watch and steer the portal.

Not part of Bitrix24. Plain JSON in snake_case; errors are `{"error", "detail"}`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from b24mw.emulator.limits.faults import FaultSpecError
from b24mw.emulator.portal import Portal
from b24mw.emulator.state.settings import SettingsError
from b24mw.emulator.wire.errors import B24Error
from b24mw.emulator.wire.jsonbody import decode_json

Endpoint = Callable[[Request], Awaitable[Response]]


class ControlError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def guarded(endpoint: Endpoint) -> Endpoint:
    """Map control and Bitrix24 errors to JSON; a change is persisted afterwards
    (a read never writes the state file)."""

    @wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        portal: Portal = request.app.state.portal
        try:
            return await endpoint(request)
        except ControlError as exc:
            return JSONResponse({"error": exc.code, "detail": exc.detail}, exc.status)
        except B24Error as exc:
            return JSONResponse(
                {"error": exc.code, "detail": exc.description.removesuffix("<br>")}, 400
            )
        finally:
            if request.method != "GET":
                portal.persist()

    return wrapper


def portal_of(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


async def json_object(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body.strip():
        return {}
    try:
        data = decode_json(body)
    except ValueError as exc:
        raise ControlError(400, "bad_request", f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ControlError(400, "bad_request", "body must be a JSON object")
    return data


def int_query(request: Request, name: str, default: int = 0) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ControlError(400, "bad_request", f"{name} must be an integer") from exc


@guarded
async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


@guarded
async def list_calls(request: Request) -> Response:
    portal = portal_of(request)
    method = request.query_params.get("method")
    return JSONResponse(portal.calls.since(int_query(request, "since"), method))


@guarded
async def list_events(request: Request) -> Response:
    since = int_query(request, "since")
    return JSONResponse([e for e in portal_of(request).events.log if e["seq"] > since])


@guarded
async def faults(request: Request) -> Response:
    portal = portal_of(request)
    now = portal.clock()
    if request.method == "POST":
        try:
            fault = portal.faults.add(await json_object(request), now)
        except FaultSpecError as exc:
            raise ControlError(400, "bad_request", str(exc)) from exc
        return JSONResponse({"id": fault.id, **fault.to_dict()}, 201)
    if request.method == "DELETE":
        return JSONResponse({"cleared": portal.faults.clear()})
    return JSONResponse([f.to_dict() for f in portal.faults.active(now)])


@guarded
async def delete_fault(request: Request) -> Response:
    if not portal_of(request).faults.remove(request.path_params["fault_id"]):
        raise ControlError(404, "not_found", "no such fault")
    return JSONResponse({"cleared": 1})


@guarded
async def settings(request: Request) -> Response:
    portal = portal_of(request)
    if request.method == "POST":
        try:
            portal.apply_settings(await json_object(request))
        except SettingsError as exc:
            raise ControlError(400, "bad_request", str(exc)) from exc
    return JSONResponse(portal.settings.to_dict())


@guarded
async def limits(request: Request) -> Response:
    portal = portal_of(request)
    now = portal.clock()
    methods = portal.operating.methods()
    return JSONResponse(
        {
            "bucket": {
                "level": portal.bucket.level(now),
                "rps": portal.bucket.rps,
                "burst": portal.bucket.burst,
            },
            "operating": {
                m: {
                    "operating": portal.operating.operating(m, now),
                    "blocked_until": portal.operating.blocked_until(m, now),
                }
                for m in methods
            },
        }
    )


@guarded
async def reset(request: Request) -> Response:
    portal_of(request).reset()
    return JSONResponse({"reset": True})


@guarded
async def list_tasks(request: Request) -> Response:
    portal = portal_of(request)
    return JSONResponse(
        [portal.view.state(t) for t in sorted(portal.store.tasks.values(), key=lambda t: t.id)]
    )


@guarded
async def get_task(request: Request) -> Response:
    portal = portal_of(request)
    task = portal.store.tasks.get(request.path_params["task_id"])
    if task is None:
        raise ControlError(404, "not_found", "no such task")
    return JSONResponse(portal.view.state(task))


ROUTES = [
    Route("/_emulator/health", health, methods=["GET"]),
    Route("/_emulator/calls", list_calls, methods=["GET"]),
    Route("/_emulator/events", list_events, methods=["GET"]),
    Route("/_emulator/faults", faults, methods=["GET", "POST", "DELETE"]),
    Route("/_emulator/faults/{fault_id:int}", delete_fault, methods=["DELETE"]),
    Route("/_emulator/settings", settings, methods=["GET", "POST"]),
    Route("/_emulator/limits", limits, methods=["GET"]),
    Route("/_emulator/reset", reset, methods=["POST"]),
    Route("/_emulator/tasks", list_tasks, methods=["GET"]),
    Route("/_emulator/tasks/{task_id:int}", get_task, methods=["GET"]),
]
