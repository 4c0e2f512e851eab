"""POST /api/v1/webhooks/bitrix24: authentication, the SIEM stream, the durable inbox."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import update

from b24mw.kit.db import Database
from b24mw.models.ops import WebhookInbox
from b24mw.webhooks.service import MAX_ROWS_PER_DIGEST
from tests.support.webhooks import (
    APP_TOKEN,
    GENERIC,
    OLD_SECRET,
    URL,
    Hook,
    assert_generic_401,
    inbox_rows,
    task_event,
)


async def test_signed_form_event_is_stored_before_the_answer(hook: Hook, db: Database) -> None:
    response = await hook.post_signed(task_event(123), request_id="rid-1")
    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    [row] = await inbox_rows(db)
    assert (row.event, row.task_id_b24, row.status, row.request_id) == (
        "ONTASKADD",
        123,
        "pending",
        "rid-1",
    )
    assert row.payload["data"]["FIELDS_AFTER"] == {"ID": "123"}
    # The portal's secret never lands in the database.
    assert "application_token" not in row.payload["auth"]
    assert row.payload["auth"]["member_id"] == "d897063e1ce7c5eb9f04b9751eef5915"
    assert hook.siem_lines() == []


async def test_json_body_with_the_same_shape_is_accepted(hook: Hook, db: Database) -> None:
    response = await hook.post_signed(task_event(55), as_json=True)
    assert response.json() == {"status": "accepted"}
    [row] = await inbox_rows(db)
    assert row.task_id_b24 == 55


async def test_hundred_repeats_of_one_delivery_leave_one_inbox_row(
    hook: Hook, db: Database
) -> None:
    ts = int(hook.clock())
    statuses = [
        (await hook.post_signed(task_event(7), request_id="same", timestamp=ts)).json()["status"]
        for _ in range(100)
    ]
    assert statuses[0] == "accepted"
    assert set(statuses[1:]) == {"duplicate"}
    assert len(await inbox_rows(db)) == 1
    assert hook.siem_lines() == []


async def test_secret_of_the_previous_rotation_still_verifies(hook: Hook, db: Database) -> None:
    response = await hook.post_signed(task_event(9), secret=OLD_SECRET)
    assert response.json() == {"status": "accepted"}
    bad = await hook.post_signed(task_event(9), secret="retired-secret")
    assert_generic_401(bad)
    assert [line["reason"] for line in hook.siem_lines()] == ["bad_signature"]


@pytest.mark.parametrize("missing", ["x-signature", "x-request-timestamp", "x-request-id"])
async def test_missing_header_is_rejected_and_reported(hook: Hook, missing: str) -> None:
    response = await hook.post_signed(task_event(1), headers={missing: None})
    assert_generic_401(response)
    [line] = hook.siem_lines()
    assert line["reason"] == "missing_header"
    assert line["path"] == URL
    assert line["user_agent"] == "test-proxy/1.0"
    assert line["source_ip"] == "127.0.0.1"
    assert line["request_id"] == response.headers["x-request-id"]
    assert line["time"].endswith("Z")


async def test_siem_line_never_carries_secret_or_body(hook: Hook) -> None:
    await hook.post_signed(task_event(4242), secret="attacker-guess", request_id="rid-x")
    raw = hook.siem_path.read_text()
    for secret_or_body in ("attacker-guess", "proxy-secret", APP_TOKEN, "4242", "ONTASKADD"):
        assert secret_or_body not in raw
    [line] = hook.siem_lines()
    assert set(line) == {"time", "event", "reason", "source_ip", "request_id", "path", "user_agent"}
    assert line["request_id"] == "rid-x"


async def test_every_reason_gets_the_same_answer(hook: Hook, db: Database) -> None:
    ts = int(hook.clock())
    answers = [
        await hook.post_signed(task_event(1), headers={"x-signature": None}),
        await hook.post_signed(task_event(1), secret="wrong"),
        await hook.post_signed(task_event(1), timestamp=ts - 301),
        await hook.post_signed(b"\xff\xfe not a form"),
        await hook.post_signed(b"data[FIELDS_AFTER][ID]=1"),
    ]
    for response in answers:
        assert_generic_401(response)
    assert {r.json()["detail"] for r in answers} == {GENERIC}
    assert [line["reason"] for line in hook.siem_lines()] == [
        "missing_header",
        "bad_signature",
        "stale_timestamp",
        "malformed",
        "malformed",
    ]
    assert await inbox_rows(db) == []


@pytest.mark.parametrize("skew", [-301, 301])
async def test_timestamp_301_s_off_either_way_is_stale(hook: Hook, skew: int) -> None:
    response = await hook.post_signed(task_event(1), timestamp=int(hook.clock()) + skew)
    assert_generic_401(response)
    assert [line["reason"] for line in hook.siem_lines()] == ["stale_timestamp"]


@pytest.mark.parametrize("skew", [-300, 300])
async def test_timestamp_300_s_off_is_still_accepted(hook: Hook, skew: int) -> None:
    hook.clock.now = float(int(hook.clock()))
    response = await hook.post_signed(task_event(1), timestamp=int(hook.clock()) + skew)
    assert response.json() == {"status": "accepted"}


async def test_known_request_id_with_other_body_is_a_replay(hook: Hook, db: Database) -> None:
    first = await hook.post_signed(task_event(10), request_id="rid-r")
    assert first.json() == {"status": "accepted"}
    forged = await hook.post_signed(task_event(11), request_id="rid-r")
    assert_generic_401(forged)
    assert [line["reason"] for line in hook.siem_lines()] == ["replayed"]
    [row] = await inbox_rows(db)
    assert row.task_id_b24 == 10


async def mark_read(db: Database) -> None:
    """The worker has claimed every row: its read is under way."""
    async with db.unit_of_work() as session:
        await session.execute(update(WebhookInbox).values(status="processing"))


async def test_same_signed_bytes_under_a_new_request_id_join_the_pending_row(
    hook: Hook, db: Database
) -> None:
    # Two changes of one task in one second: byte-identical, signed in the same
    # second, each under its own request id.  The row still waiting to be read
    # will see both changes.
    ts = int(hook.clock())
    first = await hook.post_signed(task_event(10), request_id="rid-a", timestamp=ts)
    again = await hook.post_signed(task_event(10), request_id="rid-b", timestamp=ts)
    assert first.json() == {"status": "accepted"}
    assert again.json() == {"status": "duplicate"}
    [row] = await inbox_rows(db)
    assert (row.request_id, row.status) == ("rid-a", "pending")
    assert hook.siem_lines() == []


async def test_same_signed_bytes_after_the_read_began_open_a_fresh_read(
    hook: Hook, db: Database
) -> None:
    ts = int(hook.clock())
    await hook.post_signed(task_event(10), request_id="rid-a", timestamp=ts)
    await mark_read(db)  # the read may have run before the second change
    again = await hook.post_signed(task_event(10), request_id="rid-b", timestamp=ts)
    assert again.json() == {"status": "accepted"}
    assert [(r.request_id, r.status) for r in await inbox_rows(db)] == [
        ("rid-a", "processing"),
        ("rid-b", "pending"),
    ]
    # The second delivery repeated by the proxy is still one delivery.
    repeat = await hook.post_signed(task_event(10), request_id="rid-b", timestamp=ts)
    assert repeat.json() == {"status": "duplicate"}
    assert len(await inbox_rows(db)) == 2
    assert hook.siem_lines() == []


async def test_a_captured_request_replayed_costs_at_most_ten_reads(
    hook: Hook, db: Database
) -> None:
    ts = int(hook.clock())
    answers = []
    for n in range(12):
        await mark_read(db)
        response = await hook.post_signed(task_event(10), request_id=f"rid-{n}", timestamp=ts)
        answers.append(response.status_code)
    assert answers == [200] * MAX_ROWS_PER_DIGEST + [401, 401]
    assert len(await inbox_rows(db)) == MAX_ROWS_PER_DIGEST
    assert [line["reason"] for line in hook.siem_lines()] == ["replayed", "replayed"]
    # With a row waiting, the same bytes fold into it, cap or not.
    async with db.unit_of_work() as session:
        await session.execute(update(WebhookInbox).values(status="pending"))
    folded = await hook.post_signed(task_event(10), request_id="rid-late", timestamp=ts)
    assert folded.json() == {"status": "duplicate"}


async def test_known_request_id_on_other_bytes_is_a_replay_even_after_a_fold(
    hook: Hook, db: Database
) -> None:
    ts = int(hook.clock())
    await hook.post_signed(task_event(10), request_id="rid-a", timestamp=ts)
    moved = await hook.post_signed(task_event(10), request_id="rid-a", timestamp=ts + 1)
    assert_generic_401(moved)
    assert [line["reason"] for line in hook.siem_lines()] == ["replayed"]
    assert len(await inbox_rows(db)) == 1


async def test_declared_oversized_body_is_refused_with_a_siem_line(hook: Hook) -> None:
    huge = b"event=ONTASKADD&x=" + b"a" * (3 * 1024 * 1024)
    response = await hook.post_signed(huge)
    assert_generic_401(response)
    assert [line["reason"] for line in hook.siem_lines()] == ["too_large"]


async def test_streamed_oversized_body_is_refused_with_a_siem_line(hook: Hook) -> None:
    limit = hook.settings.webhook_max_body_bytes

    async def chunks() -> Any:
        for _ in range(limit // 1024 + 2):
            yield b"a" * 1024

    response = await hook.client.post(
        URL,
        content=chunks(),
        headers={"x-request-id": "r", "x-request-timestamp": "1", "x-signature": "sha256=0"},
    )
    assert_generic_401(response)
    assert [line["reason"] for line in hook.siem_lines()] == ["too_large"]


async def test_token_mode_accepts_the_portal_and_dedupes_by_content(
    token_hook: Hook, db: Database
) -> None:
    first = await token_hook.post_plain(task_event(77))
    again = await token_hook.post_plain(task_event(77), as_json=True)
    assert first.json() == {"status": "accepted"}
    assert again.json() == {"status": "duplicate"}
    other = await token_hook.post_plain(task_event(78))
    assert other.json() == {"status": "accepted"}
    assert [r.task_id_b24 for r in await inbox_rows(db)] == [77, 78]


async def test_token_mode_same_content_after_the_read_began_opens_a_fresh_read(
    token_hook: Hook, db: Database
) -> None:
    # Unsigned bodies of two same-second changes are identical: once the first
    # row is being read, the second change needs a read of its own.
    assert (await token_hook.post_plain(task_event(77))).json() == {"status": "accepted"}
    await mark_read(db)
    assert (await token_hook.post_plain(task_event(77))).json() == {"status": "accepted"}
    assert [(r.task_id_b24, r.status) for r in await inbox_rows(db)] == [
        (77, "processing"),
        (77, "pending"),
    ]
    assert token_hook.siem_lines() == []


@pytest.mark.parametrize(
    "auth",
    [
        {"application_token": "wrong"},
        {"application_token": ""},
        {"member_id": "another-portal"},
    ],
)
async def test_token_mode_rejects_another_token_or_portal(
    token_hook: Hook, db: Database, auth: dict[str, str]
) -> None:
    response = await token_hook.post_plain(task_event(1, **auth))
    assert_generic_401(response)
    assert [line["reason"] for line in token_hook.siem_lines()] == ["bad_token"]
    assert await inbox_rows(db) == []


async def test_both_mode_needs_signature_and_token(db: Database, tmp_path: Any) -> None:
    from tests.support.webhooks import open_hook

    hook = await open_hook(db, tmp_path, webhook_auth="both")
    try:
        ok = await hook.post_signed(task_event(5))
        no_token = await hook.post_signed(task_event(6, application_token="nope"))
        unsigned = await hook.post_plain(task_event(7))
    finally:
        await hook.close()
    assert ok.json() == {"status": "accepted"}
    assert_generic_401(no_token)
    assert_generic_401(unsigned)
    assert [line["reason"] for line in hook.siem_lines()] == ["bad_token", "missing_header"]


async def test_metrics_count_outcomes_and_reasons(hook: Hook) -> None:
    def value(outcome: str, reason: str = "") -> float:
        from b24mw.webhooks.metrics import WEBHOOKS

        return WEBHOOKS.labels(outcome, reason)._value.get()

    before = (value("accepted"), value("duplicate"), value("rejected", "bad_signature"))
    rid = str(uuid.uuid4())
    ts = int(hook.clock())
    await hook.post_signed(task_event(3), request_id=rid, timestamp=ts)
    await hook.post_signed(task_event(3), request_id=rid, timestamp=ts)
    await hook.post_signed(task_event(3), secret="nope")
    after = (value("accepted"), value("duplicate"), value("rejected", "bad_signature"))
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]
    metrics_text = (await hook.client.get("/metrics")).text
    assert 'b24mw_webhooks_total{outcome="rejected",reason="bad_signature"}' in metrics_text


async def test_concurrent_repeats_are_accepted_once(hook: Hook, db: Database) -> None:
    import asyncio

    ts = int(hook.clock())
    responses = await asyncio.gather(
        *(hook.post_signed(task_event(21), request_id="burst", timestamp=ts) for _ in range(20))
    )
    statuses = sorted(r.json()["status"] for r in responses)
    assert statuses == ["accepted"] + ["duplicate"] * 19
    assert len(await inbox_rows(db)) == 1


async def test_ingest_survives_a_database_restart(
    hook: Hook, db: Database, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend != "postgresql":
        pytest.skip("the dedicated ingest pool exists on PostgreSQL only")
    first = await hook.post_signed(task_event(31))
    assert first.json() == {"status": "accepted"}
    restart_postgres(request.getfixturevalue("pg_server"))
    # Bitrix24 never re-sends: the first event after the restart must be stored.
    second = await hook.post_signed(task_event(32))
    assert second.json() == {"status": "accepted"}
    await db.engine.dispose()  # the shared test engine's connections died too
    assert [r.task_id_b24 for r in await inbox_rows(db)] == [31, 32]


def restart_postgres(server: Any) -> None:
    # PostgresServer.restart() captures pg_ctl's output, and the restarted
    # postmaster inherits those pipes, so it never returns: discard them.
    import subprocess

    pg_ctl = str(server.bindir / "pg_ctl")
    command = server._cmd(pg_ctl, "-D", str(server.datadir), "-m", "fast", "-w", "restart")
    subprocess.run(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, check=True
    )
