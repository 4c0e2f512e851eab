"""Where a task's tags are read: in the one tasks.task.get that reads the task
(`select` has TAGS), or — B24MW_WEBHOOK_TAGS_FROM=list, for a portal whose get
ignores TAGS — in an extra tasks.task.list.  Either way a tagged task becomes
an order; a get that brings no tags keeps the event instead of dropping it."""

from __future__ import annotations

from pathlib import Path

from b24mw.kit.db import Database
from tests.support.portal import ORDER, Portal, open_portal


def _read_methods(portal: Portal) -> list[str]:
    return [
        command["method"]
        for call in portal.portal.calls.since()
        for command in (call["commands"] or [call])
        if command["method"].startswith("tasks.task.") and command["method"] != "tasks.task.add"
    ]


async def test_one_get_per_event_reads_the_task_and_its_tags(db: Database, tmp_path: Path) -> None:
    portal = await open_portal(db, tmp_path)
    try:
        task_id = await portal.create_task(ORDER)
        await portal.settle()
        [order] = await portal.orders()
        assert order["task_id_b24"] == task_id
        reads = _read_methods(portal)
        assert "tasks.task.list" not in reads
        assert set(reads) == {"tasks.task.get"}
    finally:
        await portal.close()


async def test_the_list_fallback_reads_tags_from_a_portal_whose_get_ignores_them(
    db: Database, tmp_path: Path
) -> None:
    portal = await open_portal(db, tmp_path, webhook_tags_from="list")
    try:
        portal.portal.apply_settings({"task_get_tags": False})
        task_id = await portal.create_task(ORDER)
        await portal.settle()
        [order] = await portal.orders()
        assert order["task_id_b24"] == task_id
        assert "tasks.task.list" in _read_methods(portal)
    finally:
        await portal.close()


async def test_a_get_without_tags_keeps_the_event_and_says_what_to_set(
    db: Database, tmp_path: Path
) -> None:
    portal = await open_portal(db, tmp_path)
    try:
        portal.portal.apply_settings({"task_get_tags": False})
        await portal.create_task(ORDER)
        await portal.settle()
        assert await portal.orders() == []  # not dropped as "not tagged" either
        [row] = await portal.inbox()
        assert row.status == "pending"
        [error] = row.errors
        assert error["code"] == "TAGS_NOT_RETURNED"
        assert "B24MW_WEBHOOK_TAGS_FROM=list" in error["message"]
    finally:
        await portal.close()
