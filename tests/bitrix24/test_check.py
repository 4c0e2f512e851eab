"""``b24mw check`` against the emulator: what a portal would refuse is named
before going live, for the incoming webhook and for the local application."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from b24mw.bitrix24.check import MISSING, OK, Report
from b24mw.bitrix24.commands import run_check
from b24mw.kit.db import Database
from b24mw.settings import Settings
from tests.support.local_app import open_local_app
from tests.support.outbound import EmulatorHandle, outbound_settings_for
from tests.support.processes import b24mw_process, run_cli


def _status(report: Report) -> dict[str, str]:
    return {f.check: f.status for f in report.findings}


def _detail(report: Report, check: str) -> str:
    return next(f.detail for f in report.findings if f.check == check)


async def test_a_ready_portal_passes(
    outbound_settings: Settings, outbound_http: httpx.AsyncClient, emulator: EmulatorHandle
) -> None:
    await emulator.create_task(title="Anything")
    report = await run_check(outbound_settings, outbound_http)
    assert report.ready, report.findings
    status = _status(report)
    assert {status[c] for c in ("connection", "scopes", "scope im", "administrator")} == {OK}
    assert _detail(report, "connection") == "the webhook answers as user 1 (User 1)"
    assert _detail(report, "task card").startswith("classic")
    assert status["tag reads"] == OK
    # A webhook cannot read the plan: reported, not held against it.
    assert status["quota"] == "info"
    assert "app.info needs an application" in _detail(report, "quota")
    assert status["chat scopes"] == OK
    # Each check is one plain call on the wire.
    methods = [c["method"] for c in await emulator.calls()]
    assert methods == [
        "scope",
        "user.current",
        "user.admin",
        "app.info",
        "tasks.task.list",
        "tasks.task.get",
    ]


async def test_missing_scopes_and_admin_rights_are_named(
    outbound_settings: Settings, outbound_http: httpx.AsyncClient, emulator: EmulatorHandle
) -> None:
    await emulator.configure(webhook_scope="task", rest_user_admin=False, task_card="new")
    await emulator.create_task(title="Anything", created_by=1)
    report = await run_check(outbound_settings, outbound_http)
    assert not report.ready
    status = _status(report)
    assert status["scopes"] == MISSING
    assert _detail(report, "scopes") == "grant user (granted: task)"
    assert status["scope im"] == MISSING
    assert status["administrator"] == MISSING
    assert "make it a Bitrix24 administrator" in _detail(report, "administrator")
    assert status["task card"] == MISSING
    assert "grant the 'im' scope" in _detail(report, "task card")
    # Customer chats are reported, not held against a task-only setup.
    assert status["chat scopes"] == "info"
    assert "crm, imopenlines" in _detail(report, "chat scopes")


async def test_a_get_without_tags_asks_for_the_list_fallback(
    db: Database, outbound_http: httpx.AsyncClient, emulator: EmulatorHandle
) -> None:
    await emulator.configure(task_get_tags=False)
    await emulator.create_task(title="Anything")
    report = await run_check(outbound_settings_for(db.url), outbound_http)
    assert _status(report)["tag reads"] == MISSING
    assert "B24MW_WEBHOOK_TAGS_FROM=list" in _detail(report, "tag reads")
    fallback = outbound_settings_for(db.url, webhook_tags_from="list")
    assert _status(await run_check(fallback, outbound_http))["tag reads"] == OK


async def test_a_webhook_that_does_not_answer_stops_the_check(
    db: Database, outbound_http: httpx.AsyncClient, emulator: EmulatorHandle
) -> None:
    settings = outbound_settings_for(db.url, b24_url="http://b24.test/rest/1/wrong/")
    report = await run_check(settings, outbound_http)
    assert [(f.check, f.status) for f in report.findings] == [("connection", MISSING)]
    assert "INVALID_CREDENTIALS" in report.findings[0].detail


@pytest.mark.parametrize(("rps", "quota"), [(2.0, OK), (200.0, MISSING)])
async def test_the_local_application_reads_the_plan_and_checks_the_rate(
    db: Database, tmp_path: Path, rps: float, quota: str
) -> None:
    app = await open_local_app(db, tmp_path, b24_rps=rps)
    try:
        before = await run_check(app.settings, app.http)
        assert [(f.check, f.status) for f in before.findings] == [("connection", MISSING)]
        assert "not installed" in before.findings[0].detail
        await app.install()
        report = await run_check(app.settings, app.http)
        assert _status(report)["quota"] == quota
        assert "plan ru_pro100: 2 req/s, burst 50" in _detail(report, "quota")
        assert _detail(report, "connection").startswith("the local application (OAuth) answers")
    finally:
        await app.close()


def test_the_command_prints_the_table_and_exits_non_zero_when_something_is_missing() -> None:
    with b24mw_process(
        "emulator",
        "--rest-secret",
        "s3",
        "--webhook-scope",
        "task,user",
        health="/_emulator/health",
    ) as (base, _):
        url = base + "/rest/1/s3/"
        done = run_cli("check", b24_url=url, webhook_auth="token", webhook_app_tokens="t")
        assert done.returncode == 1, done.stdout + done.stderr
        assert "Bitrix24 portal check" in done.stdout
        assert "scope im" in done.stdout and "missing" in done.stdout
        assert "Not ready" in done.stdout
        unset = run_cli("check")
        assert unset.returncode == 2
        assert "B24MW_B24_URL" in unset.stderr
