"""The emulated portal's CRM: deals and leads as crm.item.* and crm.deal.*/crm.lead.*
answer them, pipelines and stages, refusals, automation, events, timeline."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from .conftest import Emulator, Receiver

SECOND_PIPELINE = {"id": 1, "name": "Deliveries"}


async def _person_deal(emu: Emulator, **body: Any) -> dict[str, Any]:
    response = await emu.client.post(
        "/_emulator/person/deals", json={"title": "Sofa", "opportunity": 1490, **body}
    )
    assert response.status_code == 201, response.text
    deal: dict[str, Any] = response.json()
    return deal


async def test_crm_item_add_get_list_answer_camel_case_with_numbers(emu: Emulator) -> None:
    added = await emu.ok(
        "crm.item.add",
        {"entityTypeId": 2, "fields": {"title": "Sofa", "opportunity": 1490.5, "assignedById": 5}},
    )
    item = added["result"]["item"]
    assert item["id"] == 1 and item["stageId"] == "NEW" and item["categoryId"] == 0
    assert item["stageSemanticId"] == "P" and item["closed"] == "N"
    assert item["opportunity"] == 1490.5 and item["entityTypeId"] == 2
    got = await emu.ok("crm.item.get", {"entityTypeId": 2, "id": 1})
    assert got["result"]["item"]["title"] == "Sofa"
    listed = await emu.ok(
        "crm.item.list", {"entityTypeId": 2, "select": ["id", "stageId"], "filter": {">id": 0}}
    )
    assert listed["result"]["items"] == [{"id": 1, "stageId": "NEW"}]
    assert listed["total"] == 1


async def test_crm_deal_methods_answer_upper_case_strings(emu: Emulator) -> None:
    created = await emu.ok("crm.deal.add", {"fields": {"TITLE": "Chair", "OPPORTUNITY": "10"}})
    deal_id = created["result"]
    assert isinstance(deal_id, int)
    got = (await emu.ok("crm.deal.get", {"id": deal_id}))["result"]
    assert got["ID"] == str(deal_id) and got["STAGE_ID"] == "NEW" and got["CATEGORY_ID"] == "0"
    assert got["OPPORTUNITY"] == "10.00" and got["CLOSED"] == "N"
    updated = await emu.ok("crm.deal.update", {"id": deal_id, "fields": {"STAGE_ID": "WON"}})
    assert updated["result"] is True
    listed = await emu.ok("crm.deal.list", {"filter": {"STAGE_ID": "WON"}, "select": ["ID"]})
    assert listed["result"] == [{"ID": str(deal_id)}]
    missing = await emu.call("crm.deal.get", {"id": 999})
    assert missing.status_code == 400


async def test_lead_id_is_read_only_in_crm_deal_but_set_by_crm_item_add(emu: Emulator) -> None:
    lead = await emu.ok("crm.lead.add", {"fields": {"TITLE": "Call"}})
    lead_id = lead["result"]
    deal = await emu.ok("crm.deal.add", {"fields": {"TITLE": "x", "LEAD_ID": lead_id}})
    assert (await emu.ok("crm.deal.get", {"id": deal["result"]}))["result"]["LEAD_ID"] is None
    item = await emu.ok("crm.item.add", {"entityTypeId": 2, "fields": {"leadId": lead_id}})
    assert item["result"]["item"]["leadId"] == lead_id


async def test_second_pipeline_stage_ids_carry_its_prefix(emu: Emulator) -> None:
    await emu.client.post("/_emulator/settings", json={"crm_pipelines": [SECOND_PIPELINE]})
    deal = await _person_deal(emu, category_id=1)
    assert deal["stage_id"] == "C1:NEW"
    refused = await emu.call(
        "crm.item.update", {"entityTypeId": 2, "id": deal["id"], "fields": {"stageId": "WON"}}
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "CRM_FIELD_ERROR_VALUE_NOT_VALID"
    await emu.ok(
        "crm.item.update",
        {"entityTypeId": 2, "id": deal["id"], "fields": {"stageId": "C1:WON", "categoryId": 0}},
    )
    state = (await emu.client.get(f"/_emulator/deals/{deal['id']}")).json()
    # CATEGORY_ID does not change through an update.
    assert (state["stage_id"], state["category_id"], state["semantics"]) == ("C1:WON", 1, "S")


async def test_status_entity_types_give_each_pipelines_final_stages(emu: Emulator) -> None:
    await emu.client.post("/_emulator/settings", json={"crm_pipelines": [SECOND_PIPELINE]})
    types = {t["ID"]: t for t in (await emu.ok("crm.status.entity.types"))["result"]}
    assert types["DEAL_STAGE"]["SEMANTIC_INFO"]["FINAL_SUCCESS_FIELD"] == "WON"
    assert types["DEAL_STAGE"]["SEMANTIC_INFO"]["FINAL_UNSUCCESS_FIELD"] == "LOSE"
    assert types["DEAL_STAGE_1"]["SEMANTIC_INFO"]["FINAL_SUCCESS_FIELD"] == "C1:WON"
    assert types["DEAL_STAGE_1"]["CATEGORY_ID"] == "1"
    assert types["STATUS"]["SEMANTIC_INFO"]["FINAL_SUCCESS_FIELD"] == "CONVERTED"
    stages = (await emu.ok("crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE_1"}}))["result"]
    semantics = {s["STATUS_ID"]: s["SEMANTICS"] for s in stages}
    assert semantics["C1:WON"] == "S" and semantics["C1:LOSE"] == "F"
    assert semantics["C1:APOLOGY"] == "F" and semantics["C1:NEW"] is None
    categories = (await emu.ok("crm.category.list", {"entityTypeId": 2}))["result"]["categories"]
    assert {c["id"] for c in categories} == {0, 1}


async def test_required_field_refuses_the_stage_change_until_it_is_set(emu: Emulator) -> None:
    await emu.client.post(
        "/_emulator/settings", json={"crm_required_fields": {"WON": ["UF_CRM_INVOICE"]}}
    )
    deal = await _person_deal(emu)
    refused = await emu.call(
        "crm.item.update", {"entityTypeId": 2, "id": deal["id"], "fields": {"stageId": "WON"}}
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "CRM_FIELD_ERROR_REQUIRED"
    assert "UF_CRM_INVOICE" in refused.json()["error_description"]
    state = (await emu.client.get(f"/_emulator/deals/{deal['id']}")).json()
    assert state["stage_id"] == "NEW"  # a refused save changes nothing
    await emu.client.patch(
        f"/_emulator/person/deals/{deal['id']}", json={"fields": {"UF_CRM_INVOICE": "A-17"}}
    )
    await emu.ok(
        "crm.item.update", {"entityTypeId": 2, "id": deal["id"], "fields": {"stageId": "WON"}}
    )
    item = (await emu.ok("crm.item.get", {"entityTypeId": 2, "id": deal["id"]}))["result"]["item"]
    assert item["stageId"] == "WON" and item["ufCrm_INVOICE"] == "A-17"


async def test_denied_stage_is_refused_for_the_webhook_user(emu: Emulator) -> None:
    await emu.client.post("/_emulator/settings", json={"crm_stage_denied": ["LOSE"]})
    deal = await _person_deal(emu)
    refused = await emu.call(
        "crm.item.update", {"entityTypeId": 2, "id": deal["id"], "fields": {"stageId": "LOSE"}}
    )
    assert refused.json()["error"] == "ACCESS_DENIED"


async def test_automation_moves_the_deal_after_the_save(
    hooked: Emulator, receiver: Receiver
) -> None:
    await hooked.client.post("/_emulator/settings", json={"crm_automation": {"WON": "APOLOGY"}})
    deal = await _person_deal(hooked)
    answer = await hooked.ok(
        "crm.item.update", {"entityTypeId": 2, "id": deal["id"], "fields": {"stageId": "WON"}}
    )
    assert answer["result"]["item"]["stageId"] == "WON"  # the save, as answered
    got = await hooked.ok("crm.item.get", {"entityTypeId": 2, "id": deal["id"]})
    assert got["result"]["item"]["stageId"] == "APOLOGY"
    await hooked.portal.events.join()
    events = [dict(parse_qsl(body.decode()))["event"] for body, _ in receiver.requests]
    assert events == ["ONCRMDEALADD", "ONCRMDEALUPDATE", "ONCRMDEALUPDATE"]


async def test_crm_events_carry_only_the_id(hooked: Emulator, receiver: Receiver) -> None:
    deal = await _person_deal(hooked)
    unchanged = await hooked.ok(
        "crm.item.update", {"entityTypeId": 2, "id": deal["id"], "fields": {"title": "Sofa"}}
    )
    assert unchanged["result"]["item"]["title"] == "Sofa"
    await hooked.client.delete(f"/_emulator/person/deals/{deal['id']}")
    lead = await hooked.client.post("/_emulator/person/leads", json={"title": "Call"})
    assert lead.status_code == 201
    await hooked.portal.events.join()
    forms = [dict(parse_qsl(body.decode())) for body, _ in receiver.requests]
    # A save that changes nothing is not performed: no event.
    assert [f["event"] for f in forms] == ["ONCRMDEALADD", "ONCRMDEALDELETE", "ONCRMLEADADD"]
    assert forms[0]["data[FIELDS][ID]"] == str(deal["id"])
    assert not [k for k in forms[0] if k.startswith("data[") and k != "data[FIELDS][ID]"]


async def test_timeline_comment_needs_lowercase_fields_and_shows_in_state(emu: Emulator) -> None:
    deal = await _person_deal(emu)
    upper = await emu.call(
        "crm.timeline.comment.add",
        {"FIELDS": {"ENTITY_TYPE": "deal", "ENTITY_ID": deal["id"], "COMMENT": "hi"}},
    )
    assert upper.status_code == 400
    added = await emu.ok(
        "crm.timeline.comment.add",
        {"fields": {"ENTITY_TYPE": "deal", "ENTITY_ID": deal["id"], "COMMENT": "READY"}},
    )
    assert isinstance(added["result"], int)
    missing = await emu.call(
        "crm.timeline.comment.add",
        {"fields": {"ENTITY_TYPE": "deal", "ENTITY_ID": 999, "COMMENT": "x"}},
    )
    assert missing.json()["error"] == "OWNER_NOT_FOUND"
    state = (await emu.client.get(f"/_emulator/deals/{deal['id']}")).json()
    assert [c["comment"] for c in state["timeline"]] == ["READY"]
    listed = await emu.ok(
        "crm.timeline.comment.list", {"filter": {"ENTITY_TYPE": "deal", "ENTITY_ID": deal["id"]}}
    )
    assert [c["COMMENT"] for c in listed["result"]] == ["READY"]


async def test_simple_crm_has_no_leads(emu: Emulator) -> None:
    await emu.client.post("/_emulator/person/leads", json={"title": "Call"})
    await emu.client.post("/_emulator/settings", json={"crm_mode": 2})
    assert (await emu.ok("crm.settings.mode.get"))["result"] == 2
    listed = await emu.ok("crm.item.list", {"entityTypeId": 1})
    assert listed["result"]["items"] == []
    refused = await emu.client.post("/_emulator/person/leads", json={"title": "Call"})
    assert refused.status_code == 400
    types = [t["ID"] for t in (await emu.ok("crm.status.entity.types"))["result"]]
    assert "STATUS" not in types


async def test_list_scan_with_start_minus_one_counts_nothing(emu: Emulator) -> None:
    for n in range(55):
        await emu.ok("crm.item.add", {"entityTypeId": 2, "fields": {"title": f"d{n}"}})
    first = await emu.ok(
        "crm.item.list",
        {"entityTypeId": 2, "order": {"id": "ASC"}, "filter": {">id": 0}, "start": -1},
    )
    assert len(first["result"]["items"]) == 50 and "total" not in first and "next" not in first
    last_id = first["result"]["items"][-1]["id"]
    second = await emu.ok(
        "crm.item.list",
        {"entityTypeId": 2, "order": {"id": "ASC"}, "filter": {">id": last_id}, "start": -1},
    )
    assert [i["id"] for i in second["result"]["items"]] == list(range(51, 56))


async def test_crm_needs_the_crm_scope(make_emulator: Any) -> None:
    emu = await make_emulator(webhook_scope="task,user")
    refused = await emu.call("crm.item.list", {"entityTypeId": 2})
    assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"


async def test_bad_settings_are_refused_whole(emu: Emulator) -> None:
    bad = await emu.client.post(
        "/_emulator/settings",
        json={"crm_pipelines": [{"id": 1, "stages": [{"id": "NEW", "semantics": "P"}]}]},
    )
    assert bad.status_code == 400
    types = [t["ID"] for t in (await emu.ok("crm.status.entity.types"))["result"]]
    assert "DEAL_STAGE_1" not in types


async def test_crm_state_survives_a_restart(make_emulator: Any, tmp_path: Any) -> None:
    path = tmp_path / "state.json"
    first = await make_emulator(state_file=path)
    deal = await _person_deal(first)
    await first.ok(
        "crm.timeline.comment.add",
        {"fields": {"ENTITY_TYPE": "deal", "ENTITY_ID": deal["id"], "COMMENT": "x"}},
    )
    await first.portal.aclose()
    second = await make_emulator(state_file=path)
    state = (await second.client.get(f"/_emulator/deals/{deal['id']}")).json()
    assert state["title"] == "Sofa" and len(state["timeline"]) == 1
    again = await _person_deal(second)
    assert again["id"] == deal["id"] + 1
