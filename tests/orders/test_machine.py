"""The status machine as data: README "Resources" status table, who may, what it syncs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from b24mw.i18n import TEXTS
from b24mw.kit.auth import Actor, Role
from b24mw.kit.errors import Forbidden, TransitionRefused
from b24mw.models.enums import OrderStatus as S
from b24mw.orders.flows import task_methods
from b24mw.orders.machine import FINAL, TRANSITIONS, check, may, targets

ACTORS = {role: Actor(sub=role.value, roles=frozenset({role})) for role in Role}

# README "Resources", written out once more by hand so a change to the table is a
# deliberate change to this test too.
SPEC_TABLE = {
    S.NEW: {S.PICKING, S.READY, S.REFUSED},
    S.PICKING: {S.READY, S.REFUSED},
    S.READY: {S.PICKED_UP, S.REFUSED},
    S.PICKED_UP: {S.ON_ROUTE, S.FAILED},
    S.ON_ROUTE: {S.DELIVERED, S.FAILED},
    S.DELIVERED: {S.CASH_RETURNED, S.DONE, S.FAILED},
    S.CASH_RETURNED: {S.DONE},
    S.FAILED: {S.READY, S.DONE},
    S.DONE: set(),
    S.REFUSED: set(),
}


def test_matrix_is_the_spec_table() -> None:
    assert {s: set(targets(s)) for s in S} == SPEC_TABLE


def test_who_may_is_the_spec_table() -> None:
    courier, admin, onec = Role.COURIER, Role.ADMIN, Role.ONEC
    assert TRANSITIONS[(S.READY, S.PICKED_UP)] == {courier}
    assert TRANSITIONS[(S.READY, S.REFUSED)] == {admin, onec}
    assert TRANSITIONS[(S.FAILED, S.READY)] == {admin, onec}
    for (source, _), roles in TRANSITIONS.items():
        if source in (S.NEW, S.PICKING, S.FAILED):
            assert roles == {admin, onec}
        if source in (S.PICKED_UP, S.ON_ROUTE, S.DELIVERED, S.CASH_RETURNED):
            assert roles == {courier, admin}


def test_finals_have_no_exit_and_every_status_is_reachable() -> None:
    assert FINAL == {s for s in S if not targets(s)}
    reachable, frontier = {S.NEW}, [S.NEW]
    while frontier:
        for nxt in targets(frontier.pop()):
            if nxt not in reachable:
                reachable.add(nxt)
                frontier.append(nxt)
    assert reachable == set(S)


def test_a_courier_never_moves_an_order_back() -> None:
    for source in S:
        for target in (S.NEW, S.PICKING, S.READY):
            assert not may(ACTORS[Role.COURIER], source, target)


def test_refusals_say_which_move_and_why() -> None:
    with pytest.raises(TransitionRefused) as same:
        check(ACTORS[Role.ADMIN], S.READY, S.READY)
    assert "READY → READY" in same.value.detail and "already" in same.value.detail
    with pytest.raises(TransitionRefused) as final:
        check(ACTORS[Role.ADMIN], S.DONE, S.FAILED)
    assert "final" in final.value.detail
    with pytest.raises(Forbidden) as who:
        check(ACTORS[Role.ADMIN], S.READY, S.PICKED_UP)
    assert "courier" in who.value.detail


@given(st.lists(st.tuples(st.sampled_from(list(S)), st.sampled_from(list(Role))), max_size=40))
def test_no_sequence_of_attempts_leaves_the_matrix(attempts: list[tuple[S, Role]]) -> None:
    state = S.NEW
    for target, role in attempts:
        try:
            transition = check(ACTORS[role], state, target)
        except (TransitionRefused, Forbidden):
            continue
        assert (state, target) in TRANSITIONS and role in TRANSITIONS[(state, target)]
        assert state not in FINAL and state is not target
        state = transition.target


def test_task_methods_per_move() -> None:
    from b24mw.orders.machine import Transition

    def methods(a: S, b: S) -> list[str]:
        return task_methods(Transition(a, b))

    assert methods(S.PICKED_UP, S.ON_ROUTE) == ["tasks.task.start"]
    assert methods(S.DELIVERED, S.DONE) == ["tasks.task.complete"]
    assert methods(S.NEW, S.REFUSED) == ["tasks.task.complete"]
    assert methods(S.ON_ROUTE, S.FAILED) == ["tasks.task.defer"]
    assert methods(S.FAILED, S.READY) == ["tasks.task.renew"]
    assert methods(S.NEW, S.READY) == []


def test_every_text_exists_in_both_languages() -> None:
    assert TEXTS["ru"].keys() == TEXTS["en"].keys()
