"""Idempotency-Key through real requests: replay, mismatch, in-flight, scope, TTL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.kit.db import Database
from b24mw.kit.idempotency import (
    ClaimOutcome,
    IdempotencyRepository,
    KeyedRequest,
    fingerprint,
    parse_key,
)
from b24mw.models.base import utcnow
from b24mw.models.ops import IdempotencyKey
from tests.support.auth import auth
from tests.support.config import make_settings
from tests.support.problems import assert_problem

URL = "/api/v1/ww/couriers"
# How a key's actor is recorded for auth("admin"): the sub and its roles.
ADMIN = "tester [admin]"


def courier(cid: str = "c-1", name: str = "Anna") -> dict[str, object]:
    return {"id": cid, "display_name": name, "phone": "8 (912) 345-67-89"}


async def test_missing_key_is_400_and_nothing_created(client: httpx.AsyncClient) -> None:
    headers = auth("admin")
    del headers["Idempotency-Key"]
    response = await client.post(URL, headers=headers, json=courier())
    problem = assert_problem(response, 400, "validation.required")
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    listing = await client.get(URL, headers=auth("admin"))
    assert listing.json()["total_items"] == 0


async def test_replay_returns_stored_response(client: httpx.AsyncClient) -> None:
    headers = auth("admin", key="create-anna")
    first = await client.post(URL, headers=headers, json=courier())
    second = await client.post(URL, headers=headers, json=courier())
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers


async def test_quoted_key_is_the_same_key(client: httpx.AsyncClient) -> None:
    await client.post(URL, headers=auth("admin", key="k-1"), json=courier())
    replay = await client.post(URL, headers=auth("admin", key='"k-1"'), json=courier())
    assert replay.headers.get("idempotent-replayed") == "true"


async def test_replay_with_other_body_is_409(client: httpx.AsyncClient) -> None:
    await client.post(URL, headers=auth("admin", key="k"), json=courier())
    response = await client.post(URL, headers=auth("admin", key="k"), json=courier("c-2"))
    problem = assert_problem(response, 409, "conflict.idempotency")
    assert problem["errors"][0]["field"] == "Idempotency-Key"


async def test_domain_error_is_stored_and_replayed(client: httpx.AsyncClient) -> None:
    await client.post(URL, headers=auth("admin"), json=courier())
    dup1 = await client.post(URL, headers=auth("admin", key="dup"), json=courier())
    dup2 = await client.post(URL, headers=auth("admin", key="dup"), json=courier())
    assert dup1.status_code == dup2.status_code == 409
    assert dup2.headers["idempotent-replayed"] == "true"


async def test_request_validation_failure_is_not_stored(client: httpx.AsyncClient) -> None:
    bad = await client.post(URL, headers=auth("admin", key="fix-me"), json={"id": "c-9"})
    assert bad.status_code == 422
    fixed = await client.post(URL, headers=auth("admin", key="fix-me"), json=courier("c-9"))
    assert fixed.status_code == 201
    assert "idempotent-replayed" not in fixed.headers


async def test_auth_failure_is_not_stored(client: httpx.AsyncClient) -> None:
    forbidden = await client.post(URL, headers=auth("courier", key="k403"), json=courier())
    assert forbidden.status_code == 403
    # Same actor id, now with a role that may: the key is free, the handler runs.
    allowed = await client.post(
        URL, headers=auth(["courier", "admin"], "tester", key="k403"), json=courier()
    )
    assert allowed.status_code == 201
    assert "idempotent-replayed" not in allowed.headers


async def test_scope_is_per_actor(client: httpx.AsyncClient) -> None:
    first = await client.post(URL, headers=auth("admin", "alice", key="same"), json=courier())
    other = await client.post(URL, headers=auth("admin", "bob", key="same"), json=courier("c-2"))
    assert first.status_code == other.status_code == 201


async def test_scope_is_per_endpoint(client: httpx.AsyncClient) -> None:
    await client.post(URL, headers=auth("admin", key="same"), json=courier())
    patch = await client.patch(
        f"{URL}/c-1", headers=auth("admin", key="same"), json={"display_name": "Anna B"}
    )
    assert patch.status_code == 200
    assert patch.json()["display_name"] == "Anna B"


async def test_expired_key_runs_the_request_again(client: httpx.AsyncClient, db: Database) -> None:
    await client.post(URL, headers=auth("admin", key="old"), json=courier())
    async with db.unit_of_work() as session:
        await session.execute(
            update(IdempotencyKey).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    again = await client.post(URL, headers=auth("admin", key="old"), json=courier())
    # The handler ran again (the duplicate id is now a domain 409), not a replay.
    assert again.status_code == 409
    assert "idempotent-replayed" not in again.headers


async def test_key_is_kept_for_72_hours(client: httpx.AsyncClient, db: Database) -> None:
    before = utcnow()
    await client.post(URL, headers=auth("admin", key="ttl"), json=courier())
    async with db.reader() as session:
        row = (await session.execute(select(IdempotencyKey))).scalar_one()
    assert row.state == "done"
    expected = before + timedelta(hours=72)
    assert abs((row.expires_at - expected).total_seconds()) < 60


def _fingerprint_of(body: bytes) -> str:
    return fingerprint("POST", URL, "", body)


async def test_in_flight_key_is_409_with_retry_after(
    client: httpx.AsyncClient, db: Database
) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite serialises writers: a second request waits and replays")
    body = httpx.Request("POST", "http://x", json=courier()).content
    # Another request holds the key: its transaction claimed it and is still open.
    async with db.sessions() as holder:
        claim = await IdempotencyRepository(holder).claim(
            KeyedRequest(
                "busy", f"POST {URL}", ADMIN, _fingerprint_of(body), "r-1", timedelta(hours=1)
            )
        )
        assert claim.outcome is ClaimOutcome.CLAIMED
        response = await client.post(
            URL,
            headers={**auth("admin", key="busy"), "Content-Type": "application/json"},
            content=body,
        )
        assert_problem(response, 409, "conflict.idempotency")
        assert response.headers["retry-after"] == "1"
        await holder.rollback()
    # The holder gave up (rolled back or died): the key is free again.
    again = await client.post(
        URL,
        headers={**auth("admin", key="busy"), "Content-Type": "application/json"},
        content=body,
    )
    assert again.status_code == 201


async def test_key_left_in_flight_by_a_dead_request_is_taken_over(
    client: httpx.AsyncClient, db: Database
) -> None:
    # Rows are no longer committed in flight, but one left by an older
    # version (or a crash between statements) must not block the key forever.
    body = httpx.Request("POST", "http://x", json=courier()).content
    async with db.unit_of_work() as session:
        session.add(
            IdempotencyKey(
                key="orphan",
                endpoint=f"POST {URL}",
                actor_id=ADMIN,
                fingerprint=_fingerprint_of(body),
                state="in_flight",
                locked_at=utcnow(),
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
    response = await client.post(
        URL,
        headers={**auth("admin", key="orphan"), "Content-Type": "application/json"},
        content=body,
    )
    assert response.status_code == 201
    assert "idempotent-replayed" not in response.headers


async def test_change_and_stored_answer_commit_together(
    client: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Storing the answer fails after the route succeeded: the change must not
    # stay behind without its answer (a retry would otherwise be a duplicate).
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("lost while storing the answer")

    monkeypatch.setattr(IdempotencyRepository, "complete", broken)
    failed = await client.post(URL, headers=auth("admin", key="both"), json=courier())
    assert failed.status_code == 500
    assert (await client.get(f"{URL}/c-1", headers=auth("admin"))).status_code == 404
    monkeypatch.undo()

    retried = await client.post(URL, headers=auth("admin", key="both"), json=courier())
    assert retried.status_code == 201
    async with db.reader() as session:
        row = (await session.execute(select(IdempotencyKey))).scalar_one()
    assert (row.state, row.response_status, row.response_body) == ("done", 201, retried.content)


async def test_an_answer_committed_meanwhile_is_replayed_and_ours_rolled_back(
    client: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite serialises writers: nobody can commit in between")
    # The claim reads the key's row with a snapshot taken just before it got
    # the key's lock; a request that committed in that instant is detected
    # when our answer's row meets its row at our commit.
    complete = IdempotencyRepository.complete
    theirs = (201, {"content-type": "application/json"}, b'{"id": "theirs"}')

    def racing(self: IdempotencyRepository, request: KeyedRequest, answer: Any) -> None:
        other = Database(make_settings(db.url))

        async def commit_theirs() -> None:
            async with other.statements() as conn:
                await IdempotencyRepository(conn).store_answer(request, theirs)
            await other.dispose()

        racing.pending = commit_theirs()  # type: ignore[attr-defined]
        complete(self, request, answer)

    monkeypatch.setattr(IdempotencyRepository, "complete", racing)
    original_commit = AsyncSession.commit

    async def commit_after_theirs(self: AsyncSession) -> None:
        pending = getattr(racing, "pending", None)
        if pending is not None:
            racing.pending = None  # type: ignore[attr-defined]
            await pending
        await original_commit(self)

    monkeypatch.setattr(AsyncSession, "commit", commit_after_theirs)
    response = await client.post(URL, headers=auth("admin", key="race-1"), json=courier())
    assert response.status_code == 201
    assert response.headers["idempotent-replayed"] == "true"
    assert response.content == b'{"id": "theirs"}'
    monkeypatch.undo()
    # Ours was rolled back: the courier does not exist.
    fresh = await client.post(URL, headers=auth("admin", key="race-2"), json=courier())
    assert fresh.status_code == 201 and "idempotent-replayed" not in fresh.headers


async def test_concurrent_same_key_runs_handler_once(client: httpx.AsyncClient) -> None:
    headers = auth("admin", key="race")
    responses = await asyncio.gather(
        *[client.post(URL, headers=headers, json=courier()) for _ in range(5)]
    )
    statuses = sorted(r.status_code for r in responses)
    created = [r for r in responses if r.status_code == 201]
    assert all(s in (201, 409) for s in statuses)
    fresh = [r for r in created if "idempotent-replayed" not in r.headers]
    assert len(fresh) == 1
    for r in responses:
        if r.status_code == 409:
            assert r.json()["code"] == "conflict.idempotency"
            assert r.headers["retry-after"] == "1"


@given(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=128))
def test_visible_keys_parse_to_themselves(value: str) -> None:
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        return
    assert parse_key(value) == value
    assert parse_key(f'"{value}"') == value


@given(st.text(max_size=300))
def test_parse_key_accepts_only_the_rule(value: str) -> None:
    try:
        parsed = parse_key(value)
    except ValueError:
        return
    assert 1 <= len(parsed) <= 128
    assert all(0x20 <= ord(c) <= 0x7E for c in parsed)
    assert parsed.strip()


async def test_same_sub_with_other_roles_gets_403_not_the_stored_answer(
    client: httpx.AsyncClient,
) -> None:
    admin = await client.post(URL, headers=auth("admin", "boss", key="k-boss"), json=courier())
    assert admin.status_code == 201
    # A courier token whose sub equals the admin's: the key is theirs alone.
    same = await client.post(URL, headers=auth("courier", "boss", key="k-boss"), json=courier())
    assert_problem(same, 403, "auth.forbidden")
    assert "idempotent-replayed" not in same.headers
    # Another body does not reveal (409) that the admin used the key.
    other = await client.post(
        URL, headers=auth("courier", "boss", key="k-boss"), json=courier("c-2")
    )
    assert_problem(other, 403, "auth.forbidden")
    # The admin still gets their own answer.
    again = await client.post(URL, headers=auth("admin", "boss", key="k-boss"), json=courier())
    assert again.headers["idempotent-replayed"] == "true"


async def test_scope_is_the_route_and_its_parsed_parameters(
    client: httpx.AsyncClient, db: Database
) -> None:
    from tests.support.orders import add_couriers, create_order

    await add_couriers(db)
    order = await create_order(client, courier_id="c1")
    body = {"status": "PICKING"}
    padded = f"/api/v1/ww/orders/{order['id']:04d}/status"
    first = await client.post(padded, headers=auth("admin", key="move-1"), json=body)
    assert first.status_code == 200, first.text
    plain = f"/api/v1/ww/orders/{order['id']}/status"
    retry = await client.post(plain, headers=auth("admin", key="move-1"), json=body)
    # The retry spelled differently is the same request: replayed, not run again
    # (which would be a 422 PICKING -> PICKING).
    assert retry.status_code == 200
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    other = await client.post(plain, headers=auth("admin", key="move-1"), json={"status": "READY"})
    assert_problem(other, 409, "conflict.idempotency")


async def test_uuid_path_parameters_are_one_scope_in_any_case(
    client: httpx.AsyncClient, db: Database
) -> None:
    from tests.support.orders import add_couriers

    await add_couriers(db)
    line = {"sku": "S-1", "qty": 1, "quality": "new", "reason_code": "broken"}
    created = await client.post(
        "/api/v1/returns",
        headers=auth("admin"),
        json={"source": "widget", "courier_id": "c1", "items": [line]},
    )
    rid = created.json()["id"]
    body = {"comment": "checked"}
    first = await client.patch(
        f"/api/v1/returns/{rid}", headers=auth("admin", key="r-1"), json=body
    )
    assert first.status_code == 200
    upper = await client.patch(
        f"/api/v1/returns/{rid.upper()}", headers=auth("admin", key="r-1"), json=body
    )
    assert upper.headers["idempotent-replayed"] == "true"


async def test_long_text_path_parameter_is_scoped_without_a_500(
    client: httpx.AsyncClient,
) -> None:
    path = f"{URL}/{'x' * 2000}"
    first = await client.patch(path, headers=auth("admin", key="long"), json={"display_name": "A"})
    assert_problem(first, 404, "not_found")
    again = await client.patch(path, headers=auth("admin", key="long"), json={"display_name": "A"})
    assert again.headers["idempotent-replayed"] == "true"


async def test_answers_of_the_idempotency_layer_are_metered_by_route(
    client: httpx.AsyncClient,
) -> None:
    from b24mw.kit.metrics import HTTP_REQUESTS

    def count(route: str, status: str) -> float:
        return HTTP_REQUESTS.labels("POST", route, status)._value.get()

    before = count(URL, "409"), count("<unmatched>", "409")
    await client.post(URL, headers=auth("admin", key="metered"), json=courier())
    mismatch = await client.post(URL, headers=auth("admin", key="metered"), json=courier("c-2"))
    assert mismatch.status_code == 409
    assert count(URL, "409") == before[0] + 1
    assert count("<unmatched>", "409") == before[1]


async def test_unknown_route_is_404_before_the_key_is_asked_for(
    client: httpx.AsyncClient,
) -> None:
    headers = auth("admin")
    del headers["Idempotency-Key"]
    response = await client.post("/api/v1/nothing-here", headers=headers, json={})
    assert_problem(response, 404, "not_found")


async def test_openapi_declares_the_key_on_every_unsafe_operation(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            unsafe = method.upper() in {"POST", "PUT", "PATCH", "DELETE"}
            expected = unsafe and not path.startswith("/api/v1/webhooks/")
            assert ("Idempotency-Key" in names) is expected, (method, path)
            if path.startswith("/api/v1/") and not path.startswith("/api/v1/webhooks/"):
                assert "503" in operation["responses"], (method, path)
