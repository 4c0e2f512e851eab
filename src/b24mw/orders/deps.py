"""Route dependencies both order kinds share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Query

from b24mw.kit.types import Rfc3339
from b24mw.models.enums import OrderStatus
from b24mw.orders.schemas import OrderFilter


def order_filter(q_help: str) -> Callable[..., Awaitable[OrderFilter]]:
    """The list query both kinds take; ``q_help`` tells the OpenAPI what ``q`` searches."""

    async def dependency(
        status_: Annotated[list[OrderStatus] | None, Query(alias="status")] = None,
        courier_id: Annotated[str | None, Query(max_length=64)] = None,
        # A default, not Annotated: a string annotation cannot see ``q_help``.
        q: str | None = Query(None, max_length=100, description=q_help),
        created_from: Annotated[Rfc3339 | None, Query(description="inclusive")] = None,
        created_to: Annotated[Rfc3339 | None, Query(description="exclusive")] = None,
    ) -> OrderFilter:
        return OrderFilter(
            statuses=[s.value for s in status_ or ()],
            courier_id=courier_id,
            q=q,
            created_from=created_from,
            created_to=created_to,
        )

    return dependency
