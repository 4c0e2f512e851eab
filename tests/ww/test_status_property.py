"""Property: whatever sequence of status calls clients make, through the API,
an order only ever takes the moves the matrix has, made by roles it allows."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b24mw.models.enums import OrderStatus as S
from b24mw.orders.machine import TRANSITIONS
from tests.support.auth import auth
from tests.support.orders import ORDERS, create_order, set_status

pytestmark = pytest.mark.usefixtures("couriers")
ROLES = ("admin", "1c", "courier")


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_no_api_sequence_reaches_a_forbidden_state(
    client: httpx.AsyncClient, data: st.DataObject
) -> None:
    order = await create_order(client, courier_id="c1")
    url = f"{ORDERS}/{order['id']}"
    state = S.NEW
    for _ in range(data.draw(st.integers(min_value=1, max_value=8), label="steps")):
        # Mostly moves the matrix has, by a role it allows (to get deep);
        # sometimes any status by any role.
        legal = [
            (to, r.value) for (frm, to), roles in TRANSITIONS.items() if frm is state for r in roles
        ]
        anything = st.tuples(st.sampled_from(list(S)), st.sampled_from(ROLES))
        moves = st.one_of(st.sampled_from(legal), anything) if legal else anything
        target, role = data.draw(moves, label="move")
        sub = "c1" if role == "courier" else "someone"
        response = await set_status(client, url, target, role, sub)
        allowed = TRANSITIONS.get((state, target))
        if allowed is not None and role in {r.value for r in allowed}:
            assert response.status_code == 200, response.text
            state = target
        else:
            assert response.status_code in (403, 422), response.text
        stored = await client.get(url, headers=auth("admin"))
        assert stored.json()["status"] == state.value
