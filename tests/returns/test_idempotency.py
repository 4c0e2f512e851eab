"""Retries of return writes under the same Idempotency-Key never act twice."""

from __future__ import annotations

import httpx
import pytest

from b24mw.kit.db import Database
from tests.returns.helpers import URL, create_return, jobs, return_body
from tests.support.auth import auth
from tests.support.problems import assert_problem

pytestmark = pytest.mark.usefixtures("couriers")


async def test_create_replay_returns_the_same_return_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    headers = auth("courier", "c-1", key="widget-click-1")
    first = await client.post(URL, headers=headers, json=return_body())
    jobs_after_first = len(await jobs(db))
    second = await client.post(URL, headers=headers, json=return_body())
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["idempotent-replayed"] == "true"
    listing = await client.get(URL, headers=auth("admin"))
    assert listing.json()["total_items"] == 1
    assert len(await jobs(db)) == jobs_after_first


async def test_same_key_with_other_body_is_409(client: httpx.AsyncClient) -> None:
    headers = auth("courier", "c-1", key="k-1")
    await client.post(URL, headers=headers, json=return_body())
    response = await client.post(URL, headers=headers, json=return_body(comment="other"))
    problem = assert_problem(response, 409, "conflict.idempotency")
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    listing = await client.get(URL, headers=auth("admin"))
    assert listing.json()["total_items"] == 1


async def test_decision_replay_is_not_a_second_transition(
    client: httpx.AsyncClient, db: Database
) -> None:
    created = await create_return(client)
    url = f"{URL}/{created['id']}"
    headers = auth("1c", "onec", key="decision-1")
    first = await client.patch(url, headers=headers, json={"status": "accepted"})
    count = len(await jobs(db))
    again = await client.patch(url, headers=headers, json={"status": "accepted"})
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(await jobs(db)) == count


async def test_refused_transition_is_replayed_as_refused(client: httpx.AsyncClient) -> None:
    created = await create_return(client)
    url = f"{URL}/{created['id']}"
    await client.patch(url, headers=auth("1c", "onec"), json={"status": "rejected"})
    headers = auth("1c", "onec", key="late")
    refused = await client.patch(url, headers=headers, json={"status": "accepted"})
    assert_problem(refused, 422, "conflict.transition")
    replay = await client.patch(url, headers=headers, json={"status": "accepted"})
    assert replay.status_code == 422
    assert replay.headers["idempotent-replayed"] == "true"


async def test_cancel_replay_is_204_again(client: httpx.AsyncClient) -> None:
    created = await create_return(client)
    headers = auth("admin", key="cancel-1")
    first = await client.delete(f"{URL}/{created['id']}", headers=headers)
    second = await client.delete(f"{URL}/{created['id']}", headers=headers)
    assert first.status_code == second.status_code == 204
    assert second.headers["idempotent-replayed"] == "true"


async def test_missing_key_is_400(client: httpx.AsyncClient) -> None:
    headers = auth("courier", "c-1")
    del headers["Idempotency-Key"]
    response = await client.post(URL, headers=headers, json=return_body())
    assert_problem(response, 400, "validation.required")
