"""What a courier may reach, for either order kind: only their own."""

from __future__ import annotations

from typing import Protocol, TypeVar

from b24mw.kit.auth import Actor
from b24mw.kit.errors import FieldError, Forbidden, NotFound


class CourierOwned(Protocol):
    @property
    def courier_id(self) -> str | None: ...


Owned = TypeVar("Owned", bound=CourierOwned)


def visible(actor: Actor, row: Owned | None, missing: str) -> Owned:
    """The row, if the actor may see it; a courier asking for another's gets the
    same 404 as for none, so ids do not reveal what exists."""
    if row is None or not actor.owns(row.courier_id):
        raise NotFound(missing)
    return row


def own_courier_id(actor: Actor, courier_id: str | None, refusal: str) -> str | None:
    """The courier a request acts for: a courier only themselves (None means them)."""
    if not actor.courier_scoped:
        return courier_id
    if courier_id not in (None, actor.sub):
        raise Forbidden(refusal, errors=[FieldError("courier_id", "must be your own courier id")])
    return actor.sub
