"""What the generated OpenAPI cannot see: conventions applied outside route
signatures.

The ``Idempotency-Key`` header is required by the idempotency middleware, not
by any route signature, so it is added to every unsafe operation it applies
to (a client generated from the document must send it).  The paging
parameters are read by ``kit.pagination`` from the query string itself, so
they are added to every operation whose route depends on it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant

from b24mw.kit.idempotency import HEADER, UNSAFE_METHODS
from b24mw.kit.pagination import PAGED, PAGING_PARAMETERS
from b24mw.kit.routes import route_contexts

IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": HEADER,
    "in": "header",
    "required": True,
    "description": "1-128 printable ASCII characters (bare or in double quotes); the same key"
    " with the same request replays the stored answer, with another request is a 409",
    "schema": {"type": "string", "pattern": r"^[!-~](?:[ -~]{0,126}[!-~])?$"},
}


def _paged(dependant: Dependant) -> bool:
    if getattr(dependant.call, PAGED, False):
        return True
    return any(_paged(sub) for sub in dependant.dependencies)


def _paged_operations(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (context.path_format, method.lower())
        for context in route_contexts(app)
        if isinstance(getattr(context, "dependant", None), Dependant) and _paged(context.dependant)
        for method in context.methods or ()
    }


def install_openapi(app: FastAPI, *, prefix: str, exempt: tuple[str, ...]) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            paged = _paged_operations(app)
            for path, operations in schema.get("paths", {}).items():
                for method, operation in operations.items():
                    if (path, method) in paged:
                        parameters = operation.setdefault("parameters", [])
                        parameters.extend(
                            {"in": "query", "required": False, **p} for p in PAGING_PARAMETERS
                        )
                if not path.startswith(prefix) or path.startswith(exempt):
                    continue
                for method, operation in operations.items():
                    if method.upper() in UNSAFE_METHODS:
                        operation.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
