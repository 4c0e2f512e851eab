"""pending → accepted | rejected | cancelled; finals are final; PUT only while pending."""

from __future__ import annotations

import itertools

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from b24mw.kit.errors import TransitionRefused
from b24mw.models.enums import ReturnStatus
from b24mw.returns.lifecycle import TRANSITIONS, ensure_transition
from tests.returns.helpers import URL, create_return, line, return_body
from tests.support.auth import auth
from tests.support.problems import assert_problem

pytestmark = pytest.mark.usefixtures("couriers")
STATUSES = [s.value for s in ReturnStatus]


async def _in_state(client: httpx.AsyncClient, state: str) -> dict:
    created = await create_return(client)
    if state != "pending":
        response = await client.patch(
            f"{URL}/{created['id']}", headers=auth("admin"), json={"status": state}
        )
        assert response.status_code == 200, response.text
        created = response.json()
    return created


@pytest.mark.parametrize(("source", "target"), list(itertools.product(STATUSES, STATUSES)))
async def test_every_transition(client: httpx.AsyncClient, source: str, target: str) -> None:
    ret = await _in_state(client, source)
    url = f"{URL}/{ret['id']}"
    response = await client.patch(url, headers=auth("1c", "onec"), json={"status": target})
    if source == "pending" and target != "pending":
        assert response.status_code == 200, response.text
        assert response.json()["status"] == target
    else:
        problem = assert_problem(response, 422, "conflict.transition")
        assert problem["errors"][0]["field"] == "status"
        assert (problem["from_status"], problem["to_status"]) == (source, target)
        after = await client.get(url, headers=auth("admin"))
        assert after.json()["status"] == source


async def test_decision_with_comment_and_manager(client: httpx.AsyncClient) -> None:
    ret = await _in_state(client, "pending")
    body = {"status": "rejected", "comment": "opened package", "manager_id": "m-7"}
    response = await client.patch(f"{URL}/{ret['id']}", headers=auth("1c", "onec"), json=body)
    assert response.status_code == 200
    out = response.json()
    decided = (out["status"], out["comment"], out["manager_id"])
    assert decided == ("rejected", "opened package", "m-7")
    assert out["updated_at"] > ret["updated_at"]


async def test_annotations_alone_leave_status_alone(client: httpx.AsyncClient) -> None:
    ret = await _in_state(client, "accepted")
    response = await client.patch(
        f"{URL}/{ret['id']}", headers=auth("admin"), json={"manager_id": "m-1"}
    )
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    assert response.json()["manager_id"] == "m-1"


@pytest.mark.parametrize("state", ["accepted", "rejected", "cancelled"])
async def test_delete_of_a_decided_return_is_refused(client: httpx.AsyncClient, state: str) -> None:
    ret = await _in_state(client, state)
    response = await client.delete(f"{URL}/{ret['id']}", headers=auth("admin"))
    assert_problem(response, 422, "conflict.transition")


async def test_delete_is_a_logical_cancel(client: httpx.AsyncClient) -> None:
    ret = await _in_state(client, "pending")
    response = await client.delete(f"{URL}/{ret['id']}", headers=auth("admin"))
    assert response.status_code == 204
    assert response.content == b""
    after = await client.get(f"{URL}/{ret['id']}", headers=auth("admin"))
    assert after.status_code == 200
    assert after.json()["status"] == "cancelled"


async def test_put_replaces_a_pending_return(client: httpx.AsyncClient) -> None:
    ret = await _in_state(client, "pending")
    body = return_body("c-2", source="call_center", task_id_b24=None, comment=None)
    body["items"] = [line(sku="NEW-1", qty=5, photos=[], imei=None)]
    response = await client.put(f"{URL}/{ret['id']}", headers=auth("1c", "onec"), json=body)
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["id"] == ret["id"] and out["status"] == "pending"
    assert (out["courier_id"], out["source"], out["task_id_b24"]) == ("c-2", "call_center", None)
    assert [(i["sku"], i["qty"]) for i in out["items"]] == [("NEW-1", 5)]
    old_line_ids = {i["line_id"] for i in ret["items"]}
    assert out["items"][0]["line_id"] not in old_line_ids
    fetched = await client.get(f"{URL}/{ret['id']}", headers=auth("admin"))
    assert fetched.json() == out


@pytest.mark.parametrize("state", ["accepted", "rejected", "cancelled"])
async def test_put_on_a_decided_return_is_refused(client: httpx.AsyncClient, state: str) -> None:
    ret = await _in_state(client, state)
    response = await client.put(f"{URL}/{ret['id']}", headers=auth("admin"), json=return_body())
    assert_problem(response, 422, "conflict.transition")


async def test_put_validates_like_create(client: httpx.AsyncClient) -> None:
    ret = await _in_state(client, "pending")
    body = return_body(items=[line(qty=0)])
    response = await client.put(f"{URL}/{ret['id']}", headers=auth("admin"), json=body)
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["field"] == "items.0.qty"


@given(st.lists(st.sampled_from(list(ReturnStatus)), max_size=6))
def test_state_machine_allows_at_most_one_move(moves: list[ReturnStatus]) -> None:
    state, applied = ReturnStatus.PENDING, 0
    for target in moves:
        try:
            ensure_transition(state, target)
        except TransitionRefused:
            continue
        state, applied = target, applied + 1
    assert applied <= 1
    assert applied == 0 or state is not ReturnStatus.PENDING
    assert all(not TRANSITIONS[s] for s in ReturnStatus if s is not ReturnStatus.PENDING)
