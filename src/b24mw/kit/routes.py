"""The route template (``/api/v1/ww/orders/{order_id}``) a request matched.

Metrics and logs are labelled by template, never by raw path (bounded label
cardinality).  FastAPI keeps included routers as objects, so the matched route
only knows its path inside its own router; the full template comes from the
app's effective route contexts, indexed once.

``match_route`` finds the route before FastAPI does, for the middleware that
must know it first (idempotency scopes a key by template and parsed path
parameters, and its own answers are metered by template).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from starlette._utils import get_route_path
from starlette.types import Scope

UNMATCHED = "<unmatched>"


def _index(app: Any) -> dict[int, str]:
    index: dict[int, str] = {}
    for route in getattr(app, "routes", ()):
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            if hasattr(route, "path"):
                index[id(route)] = route.path
            continue
        for context in contexts():
            index[id(context.original_route)] = context.path_format
    return index


def route_contexts(app: Any) -> Iterator[Any]:
    """Every route of ``app`` as it serves requests: an included router's
    routes with their full template (``path_format``), methods and dependant;
    a route of the app itself as it is."""
    for route in getattr(app, "routes", ()):
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            yield route
        else:
            yield from contexts()


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    app = scope.get("app")
    state = getattr(app, "state", None)
    index: dict[int, str] | None = getattr(state, "route_templates", None)
    if index is None or id(route) not in index:
        index = _index(app)
        if state is not None:
            state.route_templates = index
    return index.get(id(route), getattr(route, "path", UNMATCHED))


@dataclass(frozen=True, slots=True)
class MatchedRoute:
    """The route a request will reach, with its path parameters parsed the way
    the endpoint declares them (``"0156"`` → ``156``); a parameter that does
    not parse keeps its text (the request will fail validation anyway)."""

    route: Any
    template: str
    params: dict[str, Any]

    def canonical(self) -> str:
        """Template and parameters as one stable string."""
        if not self.params:
            return self.template
        values = json.dumps(self.params, sort_keys=True, default=str, ensure_ascii=False)
        return f"{self.template} {values}"


def _candidates(app: Any, method: str) -> list[Any]:
    """The API route contexts that take ``method``, in routing order; built
    once per app and method (this runs on every unsafe request)."""
    state = getattr(app, "state", None)
    cache: dict[str, list[Any]] | None = getattr(state, "route_candidates", None)
    if cache is None:
        cache = {}
        if state is not None:
            state.route_candidates = cache
    found = cache.get(method)
    if found is None:
        found = cache[method] = [
            context
            for route in getattr(app, "routes", ())
            for context in getattr(route, "effective_route_contexts", lambda: ())()
            if getattr(context, "dependant", None) is not None
            and getattr(context, "path_regex", None) is not None
            and method in (context.methods or ())
        ]
    return found


def match_route(scope: Scope) -> MatchedRoute | None:
    """The route that fully matches (path and method), or None (404/405)."""
    path = get_route_path(scope)
    for context in _candidates(scope.get("app"), scope["method"]):
        found = context.path_regex.match(path)
        if found is None:
            continue
        params: dict[str, Any] = {}
        for field in context.dependant.path_params:
            value = context.param_convertors[field.alias].convert(found[field.alias])
            parsed, errors = field.validate(value, {}, loc=("path", field.alias))
            params[field.alias] = value if errors else parsed
        return MatchedRoute(context.original_route, context.path_format, params)
    return None
