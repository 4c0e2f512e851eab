"""What the generated OpenAPI cannot see: conventions applied by middlewares.

The ``Idempotency-Key`` header is required by the idempotency middleware, not
by any route signature, so it is added to every unsafe operation it applies
to (a client generated from the document must send it)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from b24mw.kit.idempotency import HEADER, UNSAFE_METHODS

IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": HEADER,
    "in": "header",
    "required": True,
    "description": "1-128 printable ASCII characters (bare or in double quotes); the same key"
    " with the same request replays the stored answer, with another request is a 409",
    "schema": {"type": "string", "pattern": r"^[!-~](?:[ -~]{0,126}[!-~])?$"},
}


def install_openapi(app: FastAPI, *, prefix: str, exempt: tuple[str, ...]) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for path, operations in schema.get("paths", {}).items():
                if not path.startswith(prefix) or path.startswith(exempt):
                    continue
                for method, operation in operations.items():
                    if method.upper() in UNSAFE_METHODS:
                        operation.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
