from __future__ import annotations

from typing import Any

from .conftest import Emulator


async def _ids(emu: Emulator, payload: dict[str, Any]) -> list[int]:
    data = await emu.ok("tasks.task.list", payload)
    return [int(t["id"]) for t in data["result"]["tasks"]]


async def test_default_order_is_id_descending_with_total(emu: Emulator) -> None:
    for _ in range(3):
        await emu.add_task()
    data = await emu.ok("tasks.task.list", {})
    assert [t["id"] for t in data["result"]["tasks"]] == ["3", "2", "1"]
    assert data["total"] == 3
    assert "next" not in data


async def test_filter_prefixes(emu: Emulator) -> None:
    for responsible in (1, 2, 3, 4, 5):
        await emu.add_task(RESPONSIBLE_ID=responsible)
    order = {"order": {"ID": "asc"}}
    assert await _ids(emu, {**order, "filter": {">ID": 3}}) == [4, 5]
    assert await _ids(emu, {**order, "filter": {">=ID": 3}}) == [3, 4, 5]
    assert await _ids(emu, {**order, "filter": {"<ID": 3}}) == [1, 2]
    assert await _ids(emu, {**order, "filter": {"<=ID": "3"}}) == [1, 2, 3]
    assert await _ids(emu, {**order, "filter": {"!ID": 3}}) == [1, 2, 4, 5]
    assert await _ids(emu, {**order, "filter": {"ID": [2, 4]}}) == [2, 4]
    assert await _ids(emu, {**order, "filter": {"RESPONSIBLE_ID": 5}}) == [5]
    assert await _ids(emu, {**order, "filter": {">ID": 1, "<ID": 5, "!RESPONSIBLE_ID": 3}}) == [
        2,
        4,
    ]


async def test_filter_by_tag_and_status(emu: Emulator) -> None:
    await emu.add_task(TAGS=["instant_order"])
    await emu.add_task(TAGS=["other"])
    third = await emu.add_task(TAGS=["Instant_Order", "x"])
    await emu.ok("tasks.task.complete", {"taskId": third["id"]})
    assert await _ids(emu, {"filter": {"TAG": "instant_order"}}) == [3, 1]
    assert await _ids(emu, {"filter": {"!TAG": "instant_order"}}) == [2]
    assert await _ids(emu, {"filter": {"REAL_STATUS": 5}}) == [3]
    assert await _ids(emu, {"filter": {"!REAL_STATUS": 5, "TAG": "instant_order"}}) == [1]


async def test_filter_by_changed_date(emu: Emulator) -> None:
    first = await emu.add_task()
    emu.clock.advance(10)
    await emu.add_task()
    cutoff = first["changedDate"]
    assert await _ids(emu, {"filter": {">CHANGED_DATE": cutoff}}) == [2]
    assert await _ids(emu, {"filter": {">=CHANGED_DATE": cutoff}}) == [2, 1]
    emu.clock.advance(10)
    await emu.ok("tasks.task.update", {"taskId": 1, "fields": {"TITLE": "touched"}})
    assert await _ids(emu, {"filter": {">CHANGED_DATE": cutoff}, "order": {"ID": "asc"}}) == [1, 2]


async def test_title_like_pattern(emu: Emulator) -> None:
    await emu.add_task(TITLE="Order 15 ready")
    await emu.add_task(TITLE="Return 16")
    assert await _ids(emu, {"filter": {"TITLE": "Order%"}}) == [1]
    assert await _ids(emu, {"filter": {"%TITLE": "16"}}) == [2]


async def test_select_tags_gives_a_map_keyed_by_tag_id(emu: Emulator) -> None:
    await emu.add_task(TAGS=["instant_order"])
    await emu.add_task()
    data = await emu.ok("tasks.task.list", {"select": ["ID", "TAGS"], "order": {"ID": "asc"}})
    tagged, untagged = data["result"]["tasks"]
    assert tagged == {"id": "1", "tags": {"1": {"id": 1, "title": "instant_order"}}}
    assert untagged == {"id": "2", "tags": []}


async def test_pages_of_fifty_with_next_and_total(emu: Emulator) -> None:
    for _ in range(120):
        await emu.add_task()
    first = await emu.ok("tasks.task.list", {"order": {"ID": "asc"}, "select": ["ID"]})
    assert len(first["result"]["tasks"]) == 50
    assert (first["next"], first["total"]) == (50, 120)
    third = await emu.ok("tasks.task.list", {"order": {"ID": "asc"}, "start": 100})
    assert [t["id"] for t in third["result"]["tasks"]][:2] == ["101", "102"]
    assert len(third["result"]["tasks"]) == 20
    assert "next" not in third
    assert third["total"] == 120


async def test_start_minus_one_counts_nothing_and_has_no_next(emu: Emulator) -> None:
    for _ in range(60):
        await emu.add_task()
    data = await emu.ok(
        "tasks.task.list", {"order": {"ID": "asc"}, "filter": {">ID": 5}, "start": -1}
    )
    assert set(data) == {"result", "total", "time"}
    assert data["total"] == 0  # no COUNT(*): the caller pages by >ID
    assert data["result"]["tasks"][0]["id"] == "6"
    assert len(data["result"]["tasks"]) == 50


async def test_order_by_changed_date_then_id(emu: Emulator) -> None:
    for _ in range(3):
        await emu.add_task()
        emu.clock.advance(1)
    await emu.ok("tasks.task.update", {"taskId": 1, "fields": {"TITLE": "latest"}})
    ids = await _ids(emu, {"order": {"CHANGED_DATE": "desc"}})
    assert ids == [1, 3, 2]


async def test_invalid_sort_key_is_error_0(emu: Emulator) -> None:
    response = await emu.call("tasks.task.list", {"order": {"BOGUS": "asc"}})
    assert response.status_code == 400
    assert response.json() == {
        "error": "0",
        "error_description": "Invalid sorting key (internal error)",
    }


async def test_list_through_a_get_query_string(emu: Emulator) -> None:
    for _ in range(3):
        await emu.add_task(TAGS=["instant_order"])
    response = await emu.client.get(
        "/rest/1/emulator/tasks.task.list.json",
        params=[
            ("filter[>ID]", "1"),
            ("filter[TAG]", "instant_order"),
            ("select[]", "ID"),
            ("order[ID]", "asc"),
        ],
    )
    assert response.status_code == 200
    assert [t["id"] for t in response.json()["result"]["tasks"]] == ["2", "3"]


async def test_title_filter_is_a_pattern_and_description_is_not_filterable(emu: Emulator) -> None:
    await emu.add_task(TITLE="Доставка ЗК-1: Oleg", DESCRIPTION="a [b24mw:aaaa]")
    await emu.add_task(TITLE="Доставка ЗК-2: Anna", DESCRIPTION="b [b24mw:bbbb]")
    await emu.add_task(TITLE="доставка зк-1: oleg", DESCRIPTION="c")
    order = {"order": {"ID": "asc"}}
    # Without wildcards: the whole title, case-insensitively (MySQL collation).
    assert await _ids(emu, {**order, "filter": {"TITLE": "Доставка ЗК-1: Oleg"}}) == [1, 3]
    assert await _ids(emu, {**order, "filter": {"TITLE": "Доставка ЗК-_: %"}}) == [1, 2, 3]
    assert await _ids(emu, {**order, "filter": {"TITLE": "Доставка"}}) == []
    # DESCRIPTION is not among the documented filter fields: the portal ignores it.
    assert await _ids(emu, {**order, "filter": {"DESCRIPTION": "[b24mw:aaaa]"}}) == [1, 2, 3]
    assert await _ids(emu, {**order, "filter": {"%DESCRIPTION": "aaaa"}}) == [1, 2, 3]


async def test_filter_by_created_date_responsible_and_parent(emu: Emulator) -> None:
    parent = await emu.add_task(RESPONSIBLE_ID=7)
    emu.clock.advance(60)
    await emu.add_task(RESPONSIBLE_ID=7, PARENT_ID=parent["id"])
    await emu.add_task(RESPONSIBLE_ID=8, PARENT_ID=parent["id"])
    since = {">=CREATED_DATE": "2025-06-15T15:07:00+00:00"}  # 1_750_000_020
    assert await _ids(emu, {"filter": {**since, "RESPONSIBLE_ID": 7}}) == [2]
    assert await _ids(emu, {"filter": {"PARENT_ID": parent["id"], "RESPONSIBLE_ID": 8}}) == [3]
