"""The one status machine of Walking Warehouse orders and 1C deliveries
(README "Resources", the status table).

The matrix is data: ``TRANSITIONS`` maps (from, to) to the roles that may make
the move.  Both kinds of order, the API and the property tests read this one
table, so a change to the business rules is a change to one literal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from b24mw.kit.auth import Actor, Role
from b24mw.kit.errors import FieldError, Forbidden, TransitionRefused
from b24mw.models.enums import OrderStatus as S

ADMIN_1C = frozenset({Role.ADMIN, Role.ONEC})
COURIER_ADMIN = frozenset({Role.COURIER, Role.ADMIN})

TRANSITIONS: Mapping[tuple[S, S], frozenset[Role]] = {
    (S.NEW, S.PICKING): ADMIN_1C,
    (S.NEW, S.READY): ADMIN_1C,
    (S.NEW, S.REFUSED): ADMIN_1C,
    (S.PICKING, S.READY): ADMIN_1C,
    (S.PICKING, S.REFUSED): ADMIN_1C,
    (S.READY, S.PICKED_UP): frozenset({Role.COURIER}),
    (S.READY, S.REFUSED): ADMIN_1C,
    (S.PICKED_UP, S.ON_ROUTE): COURIER_ADMIN,
    (S.PICKED_UP, S.FAILED): COURIER_ADMIN,
    (S.ON_ROUTE, S.DELIVERED): COURIER_ADMIN,
    (S.ON_ROUTE, S.FAILED): COURIER_ADMIN,
    (S.DELIVERED, S.CASH_RETURNED): COURIER_ADMIN,
    (S.DELIVERED, S.DONE): COURIER_ADMIN,
    (S.DELIVERED, S.FAILED): COURIER_ADMIN,
    (S.CASH_RETURNED, S.DONE): COURIER_ADMIN,
    (S.FAILED, S.READY): ADMIN_1C,
    (S.FAILED, S.DONE): ADMIN_1C,
}

FINAL: frozenset[S] = frozenset({S.DONE, S.REFUSED})
# Assignment changes who will carry the goods; once they are picked up the
# courier holds them, so only orders not yet handed over can be reassigned.
ASSIGNABLE: frozenset[S] = frozenset({S.NEW, S.PICKING, S.READY})


@dataclass(frozen=True, slots=True)
class Transition:
    source: S
    target: S

    @property
    def label(self) -> str:
        return f"{self.source.value} → {self.target.value}"


def targets(source: S) -> list[S]:
    """Statuses reachable from ``source`` in one step, by anyone."""
    return [to for (frm, to) in TRANSITIONS if frm is source]


def may(actor: Actor, source: S, target: S) -> bool:
    roles = TRANSITIONS.get((source, target))
    return roles is not None and actor.has(*roles)


def check(actor: Actor, source: S, target: S) -> Transition:
    """The transition, or the error a client sees: 422 for a move the matrix
    does not have (the same status again included), 403 for a move this
    actor's role may not make."""
    transition = Transition(source, target)
    roles = TRANSITIONS.get((source, target))
    if roles is None:
        if source is target:
            reason = f"the order is already {source.value}"
        elif source in FINAL:
            reason = f"{source.value} is final"
        else:
            allowed = ", ".join(t.value for t in targets(source))
            reason = f"allowed from {source.value}: {allowed}"
        raise TransitionRefused(
            f"Transition {transition.label} is not allowed: {reason}.",
            errors=[
                FieldError("status", f"{transition.label} is not allowed", "conflict.transition")
            ],
            extra={"from": source.value, "to": target.value},
        )
    if not actor.has(*roles):
        names = ", ".join(sorted(r.value for r in roles))
        raise Forbidden(
            f"Transition {transition.label} may only be made by: {names}.",
            errors=[FieldError("status", f"{transition.label} needs one of the roles: {names}")],
        )
    return transition
