"""How every ``/api/v1`` route reads its request before validation.

- JSON bodies are decoded by ``decode_json``: UTF-8 only, numbers with a
  fraction as exact ``Decimal`` (a price is never rounded through a float),
  no ``NaN``/``Infinity`` (not JSON), and anything undecodable — bad UTF-8,
  nesting past the parser's depth, a 5,000-digit integer — is a 400
  ``payload.malformed`` like any other malformed JSON.
- Path and query parameters meet the same text rule as body fields
  (``kit.types.unstorable``) before any route code runs: 422 naming
  ``path.<name>`` or ``query.<name>``.

Routers opt in with ``APIRouter(route_class=ApiRoute)`` and
``dependencies=PARAMETER_CHECKS``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute

from b24mw.kit.errors import FieldError, ValidationFailed
from b24mw.kit.request_scope import STATEMENT_READS, mark_not_stored
from b24mw.kit.types import unstorable


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def decode_json(body: bytes) -> Any:
    """The JSON document in ``body``; any failure is a ``JSONDecodeError``
    (FastAPI answers it as malformed JSON), never an unexpected exception."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError("the body is not UTF-8", "", exc.start) from None
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None
    except ValueError as exc:  # NaN/Infinity, an integer too long to convert
        raise json.JSONDecodeError(str(exc), text, 0) from None


class JsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = decode_json(await self.body())
        return self._json


class ApiRoute(APIRoute):
    """An ``APIRoute`` whose request decodes JSON with ``decode_json``, and
    that closes the request's statement reads (``b24mw.deps.ReadStatementsDep``)
    once the answer is built, before it is sent."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_json_request(request: Request) -> Response:
            state = request.scope.setdefault("state", {})
            state[STATEMENT_READS] = None
            try:
                return await handler(JsonRequest(request.scope, request.receive))
            finally:
                reads = state.pop(STATEMENT_READS)
                if reads is not None:
                    await reads.close()

        return with_json_request


async def _storable_parameters(request: Request) -> None:
    problems = [
        FieldError(f"path.{name}", problem, "validation.format")
        for name, value in request.path_params.items()
        if isinstance(value, str) and (problem := unstorable(value))
    ]
    for name, value in request.query_params.multi_items():
        problem = unstorable(name) or unstorable(value)
        if problem is not None:
            shown = name.replace("\x00", "\\u0000")
            problems.append(FieldError(f"query.{shown}", problem, "validation.format"))
    if problems:
        # Like any request validation failure: the handler never ran, so the
        # Idempotency-Key stays free for the corrected request.
        mark_not_stored(request.scope.setdefault("state", {}))
        raise ValidationFailed(f"{len(problems)} parameter(s) failed validation.", errors=problems)


PARAMETER_CHECKS = [Depends(_storable_parameters)]


def single_query(*names: str) -> Any:
    """A dependency refusing a repeated scalar query parameter (``?linked=true&linked=x``):
    without it the last value silently wins and the others are never checked."""

    async def check(request: Request) -> None:
        problems = [
            FieldError(f"query.{name}", "given more than once", "validation.format")
            for name in names
            if len(request.query_params.getlist(name)) > 1
        ]
        if problems:
            mark_not_stored(request.scope.setdefault("state", {}))
            raise ValidationFailed("A parameter was given more than once.", errors=problems)

    return Depends(check)
