"""The return lifecycle (README "Resources"): ``pending`` is the only state with a way out."""

from __future__ import annotations

from b24mw.kit.errors import FieldError, TransitionRefused
from b24mw.models.enums import ReturnStatus

TRANSITIONS: dict[ReturnStatus, frozenset[ReturnStatus]] = {
    ReturnStatus.PENDING: frozenset(
        {ReturnStatus.ACCEPTED, ReturnStatus.REJECTED, ReturnStatus.CANCELLED}
    ),
    ReturnStatus.ACCEPTED: frozenset(),
    ReturnStatus.REJECTED: frozenset(),
    ReturnStatus.CANCELLED: frozenset(),
}


def can_move(current: ReturnStatus, target: ReturnStatus) -> bool:
    return target in TRANSITIONS[current]


def ensure_transition(current: ReturnStatus, target: ReturnStatus) -> None:
    """Raise 422 ``conflict.transition`` naming both ends when the move is not allowed."""
    if can_move(current, target):
        return
    allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (final)"
    raise TransitionRefused(
        f"A return cannot go from {current} to {target}; allowed from {current}: {allowed}.",
        errors=[
            FieldError("status", f"{current} → {target} is not allowed", "conflict.transition")
        ],
        extra={"from_status": current.value, "to_status": target.value},
    )


def ensure_editable(current: ReturnStatus) -> None:
    """Only a ``pending`` return can be replaced (PUT): a decided one is history."""
    if current is not ReturnStatus.PENDING:
        raise TransitionRefused(
            f"Only a pending return can be replaced; this one is {current}.",
            errors=[FieldError("status", f"is {current}; only pending returns can be replaced")],
            extra={"from_status": current.value},
        )
