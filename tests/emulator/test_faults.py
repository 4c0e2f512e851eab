from __future__ import annotations

import asyncio
import time

import pytest

from b24mw.emulator.limits.faults import FaultSet, FaultSpecError

from .conftest import Emulator


async def _fault(emu: Emulator, **spec: object) -> int:
    response = await emu.client.post("/_emulator/faults", json=spec)
    assert response.status_code == 201, response.text
    fault_id: int = response.json()["id"]
    return fault_id


async def test_http_500_with_count_then_recovers(emu: Emulator) -> None:
    await _fault(emu, kind="http_500", method="user.current", count=2)
    first = await emu.call("user.current")
    assert first.status_code == 500
    assert first.json() == {
        "error": "INTERNAL_SERVER_ERROR",
        "error_description": "Internal server error",
    }
    assert (await emu.call("user.get")).status_code == 200
    assert (await emu.call("user.current")).status_code == 500
    assert (await emu.call("user.current")).status_code == 200


async def test_html_502_is_an_html_page_and_the_call_never_ran(emu: Emulator) -> None:
    await _fault(emu, kind="html_502", count=1)
    response = await emu.call("tasks.task.add", {"fields": {"TITLE": "x", "RESPONSIBLE_ID": 1}})
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "502 Bad Gateway" in response.text
    assert emu.portal.store.tasks == {}


async def test_after_phase_runs_the_call_then_loses_the_answer(emu: Emulator) -> None:
    await _fault(emu, kind="html_502", method="tasks.task.add", count=1, phase="after")
    response = await emu.call("tasks.task.add", {"fields": {"TITLE": "x", "RESPONSIBLE_ID": 1}})
    assert response.status_code == 502
    assert len(emu.portal.store.tasks) == 1


async def test_late_apply_loses_the_answer_first_and_writes_afterwards(emu: Emulator) -> None:
    task = (await emu.ok("tasks.task.add", {"fields": {"TITLE": "t", "RESPONSIBLE_ID": 1}}))[
        "result"
    ]["task"]
    await _fault(
        emu,
        kind="http_500",
        method="task.commentitem.add",
        count=1,
        phase="after",
        apply_delay_s=0.2,
    )
    lost = await emu.call("task.commentitem.add", [int(task["id"]), {"POST_MESSAGE": "late"}])
    assert lost.status_code == 500
    # Asked right after the failure, the portal has no comment yet...
    listed = await emu.ok("task.commentitem.getlist", [int(task["id"])])
    assert listed["result"] == []
    assert emu.portal.late_pending == 1
    await emu.portal.join_late()
    # ...and then it has, with the event a portal fires for it.
    [comment] = (await emu.ok("task.commentitem.getlist", [int(task["id"])]))["result"]
    assert comment["POST_MESSAGE"] == "late"


async def test_late_apply_inside_a_batch(emu: Emulator) -> None:
    await _fault(
        emu, kind="html_502", method="tasks.task.add", count=1, phase="after", apply_delay_s=0.1
    )
    response = await emu.call(
        "batch", {"cmd": {"a": "tasks.task.add?fields[TITLE]=x&fields[RESPONSIBLE_ID]=1"}}
    )
    assert response.status_code == 502
    assert emu.portal.store.tasks == {}
    await emu.portal.join_late()
    assert [t.title for t in emu.portal.store.tasks.values()] == ["x"]


async def test_reset_drops_late_writes_not_yet_applied(emu: Emulator) -> None:
    await _fault(
        emu, kind="http_500", method="tasks.task.add", count=1, phase="after", apply_delay_s=0.1
    )
    await emu.call("tasks.task.add", {"fields": {"TITLE": "x", "RESPONSIBLE_ID": 1}})
    assert (await emu.client.post("/_emulator/reset")).status_code == 200
    await emu.portal.join_late()
    assert emu.portal.store.tasks == {}


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "http_500", "apply_delay_s": 1},  # phase before: the call never runs
        {"kind": "latency", "phase": "after", "apply_delay_s": 1},  # the answer is not lost
        {"kind": "http_500", "phase": "after", "apply_delay_s": -1},
    ],
)
async def test_late_apply_needs_a_lost_answer(emu: Emulator, spec: dict[str, object]) -> None:
    response = await emu.client.post("/_emulator/faults", json=spec)
    assert response.status_code == 400


async def test_query_and_operation_limit_faults(emu: Emulator) -> None:
    await _fault(emu, kind="query_limit", count=1)
    limited = await emu.call("user.current")
    assert (limited.status_code, limited.json()["error"]) == (503, "QUERY_LIMIT_EXCEEDED")
    await _fault(emu, kind="operation_limit", method="user.current", duration_s=30)
    blocked = await emu.call("user.current")
    assert (blocked.status_code, blocked.json()["error"]) == (429, "OPERATION_TIME_LIMIT")
    assert "time" not in blocked.json()  # as documented: no reset time in a 429
    assert (await emu.call("user.get")).status_code == 200
    emu.clock.advance(31)
    assert (await emu.call("user.current")).status_code == 200


async def test_latency_delays_the_answer(emu: Emulator) -> None:
    await _fault(emu, kind="latency", latency_s=0.2, count=1)
    began = time.perf_counter()
    assert (await emu.call("user.current")).status_code == 200
    assert time.perf_counter() - began >= 0.2
    # count=1 is used up: the fault is gone, so the next call is not delayed.
    assert (await emu.client.get("/_emulator/faults")).json() == []


async def test_hang_outlasts_a_client_timeout(emu: Emulator) -> None:
    await _fault(emu, kind="hang", latency_s=5, count=1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(emu.call("user.current"), 0.1)


async def test_hang_ends_in_a_gateway_timeout(emu: Emulator) -> None:
    await _fault(emu, kind="hang", latency_s=0.05, count=1)
    response = await emu.call("user.current")
    assert response.status_code == 504
    assert "Gateway Time-out" in response.text


async def test_command_fault_fails_only_that_command(emu: Emulator) -> None:
    await _fault(emu, kind="http_500", method="user.current", count=1)
    data = await emu.ok("batch", {"cmd": {"a": "user.current", "b": "user.current"}})
    assert data["result"]["result_error"]["a"]["error"] == "INTERNAL_SERVER_ERROR"
    assert set(data["result"]["result"]) == {"b"}


async def test_fault_on_batch_matches_the_whole_request(emu: Emulator) -> None:
    await _fault(emu, kind="http_500", method="batch", count=1)
    response = await emu.call("batch", {"cmd": {"a": "user.current"}})
    assert response.status_code == 500


async def test_proxy_error_mid_batch_keeps_earlier_commands_done(emu: Emulator) -> None:
    await _fault(emu, kind="html_502", method="task.commentitem.add", count=1)
    response = await emu.call(
        "batch",
        {
            "cmd": {
                "a": "tasks.task.add?fields[TITLE]=kept&fields[RESPONSIBLE_ID]=1",
                "b": "task.commentitem.add?TASKID=1&FIELDS[POST_MESSAGE]=lost",
                "c": "tasks.task.add?fields[TITLE]=never&fields[RESPONSIBLE_ID]=1",
            }
        },
    )
    assert response.status_code == 502
    assert [t.title for t in emu.portal.store.tasks.values()] == ["kept"]
    assert emu.portal.store.comments == {}
    call = (await emu.client.get("/_emulator/calls")).json()[-1]
    assert [c["error"] for c in call["commands"]] == [None, "html_502"]


async def test_duration_window_expires(emu: Emulator) -> None:
    await _fault(emu, kind="http_500", duration_s=10)
    assert (await emu.call("user.current")).status_code == 500
    assert (await emu.call("user.get")).status_code == 500
    emu.clock.advance(10)
    assert (await emu.call("user.current")).status_code == 200


async def test_list_delete_and_clear(emu: Emulator) -> None:
    first = await _fault(emu, kind="http_500", method="user.get")
    await _fault(emu, kind="latency", latency_s=0.01)
    listed = (await emu.client.get("/_emulator/faults")).json()
    assert [f["kind"] for f in listed] == ["http_500", "latency"]
    assert (await emu.client.delete(f"/_emulator/faults/{first}")).status_code == 200
    assert (await emu.client.delete(f"/_emulator/faults/{first}")).status_code == 404
    cleared = await emu.client.delete("/_emulator/faults")
    assert cleared.json() == {"cleared": 1}
    assert (await emu.call("user.get")).status_code == 200


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "explode"},
        {"kind": "latency", "count": 0},
        {"kind": "latency", "count": 1.5},
        {"kind": "latency", "latency_s": "slow"},
        {"kind": "latency", "phase": "during"},
        {"kind": "latency", "colour": "red"},
    ],
)
def test_bad_fault_specs_are_rejected(spec: dict[str, object]) -> None:
    with pytest.raises(FaultSpecError):
        FaultSet().add(spec, 0.0)


async def test_bad_fault_spec_is_a_400(emu: Emulator) -> None:
    response = await emu.client.post("/_emulator/faults", json={"kind": "explode"})
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


async def test_no_code_answers_an_error_whose_code_is_empty(emu: Emulator) -> None:
    await _fault(emu, kind="no_code", method="user.current", count=1)
    await _fault(emu, kind="no_code", method="user.get", count=1, description="Access denied")
    top = await emu.call("user.current")
    assert (top.status_code, top.json()) == (
        400,
        {"error": "", "error_description": "Not found"},
    )
    batch = await emu.ok("batch", {"cmd": {"a": "user.get", "b": "user.current"}})
    assert batch["result"]["result_error"] == {
        "a": {"error": "", "error_description": "Access denied"}
    }
    bad = await emu.client.post("/_emulator/faults", json={"kind": "no_code", "description": 5})
    assert bad.status_code == 400
