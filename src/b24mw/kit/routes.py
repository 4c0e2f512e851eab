"""The route template (``/api/v1/ww/orders/{order_id}``) a request matched.

Metrics and logs are labelled by template, never by raw path (bounded label
cardinality).  FastAPI keeps included routers as objects, so the matched route
only knows its path inside its own router; the full template comes from the
app's effective route contexts, indexed once.
"""

from __future__ import annotations

from typing import Any

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
