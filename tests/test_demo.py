"""``b24mw demo``, run as a newcomer runs it: the flows end to end on a fresh
``./var/demo``, checked afterwards from what the parts left behind (the
database, the emulator's saved portal, the CloudEvents file, what 1C got) —
not from the demo's own narration."""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from b24mw.demo.stage import MARKER, CannotStart, prepare
from b24mw.supervisor import port_is_free
from tests.support.net import free_port
from tests.support.processes import b24mw_env

MARKER_LINE = "[b24mw:"


def _demo(cwd: Path, *args: str, **settings: str) -> tuple[subprocess.Popen[str], int, int]:
    port, emulator_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "b24mw",
            "demo",
            "--port",
            str(port),
            "--emulator-port",
            str(emulator_port),
            *args,
        ],
        cwd=cwd,
        env=b24mw_env(**settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, port, emulator_port


@pytest.fixture
def demos() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return list(conn.execute(sql))


def _without_marker(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if MARKER_LINE not in line)


def test_the_demo_plays_every_flow_on_its_own_database_and_exits_0(
    tmp_path: Path, demos: list[subprocess.Popen[str]]
) -> None:
    # An operator's settings in the shell and in .env: the demo must not use them.
    (tmp_path / ".env").write_text(f"B24MW_EVENT_SINKS=file://{tmp_path}/dotenv-events.jsonl\n")
    proc, port, emulator_port = _demo(
        tmp_path,
        "--no-serve",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/production.db",
        b24_url="https://portal.example/rest/1/real-secret/",
        onec_url="http://127.0.0.1:9/1c",
    )
    demos.append(proc)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    assert "every step held" in out
    assert "Not in this demo yet" not in out
    assert not (tmp_path / "production.db").exists()
    assert not (tmp_path / "dotenv-events.jsonl").exists()
    assert port_is_free("127.0.0.1", port) and port_is_free("127.0.0.1", emulator_port)

    root = tmp_path / "var" / "demo"
    assert (root / MARKER).is_file()
    db = root / "b24mw.db"
    [(order_id, task_id, status, total)] = _rows(
        db, "SELECT id, task_id_b24, status, total_amount FROM instant_orders"
    )
    assert (status, float(total)) == ("DONE", 2270.0)
    [(return_status,)] = _rows(db, "SELECT status FROM returns")
    assert return_status == "rejected"
    deliveries = _rows(db, "SELECT task_id_b24, deal_id_b24, status FROM orders ORDER BY id")
    [(delivery_task, no_deal, first_status), (deal_task, deal_id, deal_status)] = deliveries
    assert (no_deal, first_status, deal_status) == (None, "NEW", "DONE")
    assert delivery_task is not None and deal_task is not None
    # The customer's chat: kept whole (the final read took the closing notice)
    # and linked to the order it names.
    [(chat_id, chat_status)] = _rows(db, "SELECT id, status FROM chat_sessions")
    assert chat_status == "closed"
    senders = _rows(db, "SELECT sender_kind FROM chat_messages ORDER BY b24_message_id")
    assert [k for (k,) in senders] == ["client", "operator", "system"]
    links = _rows(db, "SELECT session_id, target_kind, target_id, found_by FROM chat_links")
    assert links == [(chat_id, "instant_order", str(order_id), "mention")]
    assert dict(_rows(db, "SELECT status, count(*) FROM outbox GROUP BY status")).keys() == {"done"}
    assert {s for (s,) in _rows(db, "SELECT status FROM webhook_inbox")} <= {"done"}

    portal = json.loads((root / "emulator.json").read_text("utf-8"))
    tasks = {t["id"]: t for t in portal["tasks"]}
    assert tasks[task_id]["status"] == 5  # completed by DONE
    [subtask] = [t for t in tasks.values() if t["parent_id"] == task_id]
    assert subtask["responsible_id"] == 17
    assert tasks[delivery_task]["responsible_id"] == 17
    assert tasks[deal_task]["extra"]["UF_CRM_TASK"] == [f"D_{deal_id}"]
    assert len(tasks) == 4
    # The deal its delivery served is won in Bitrix24, one timeline comment per move.
    [deal] = [i for i in portal["crm"]["items"] if i["entity_type_id"] == 2]
    assert (deal["id"], deal["stage_id"]) == (deal_id, "WON")
    timeline = [_without_marker(c["comment"]) for c in portal["crm"]["timeline"]]
    assert timeline == [
        f"Заказ ЗК-000124: {a} → {b}"
        for a, b in [
            ("NEW", "READY"), ("READY", "PICKED_UP"), ("PICKED_UP", "ON_ROUTE"),
            ("ON_ROUTE", "DELIVERED"), ("DELIVERED", "DONE"),
        ]
    ]  # fmt: skip
    texts = [_without_marker(c["message"]) for c in portal["comments"] if c["task_id"] == task_id]
    # One answer, seven status comments, two about the return — each once.
    assert len(texts) == 10 and max(Counter(texts).values()) == 1
    assert texts[0].startswith(f"Заказ {order_id} создан")

    events = [json.loads(line) for line in (root / "events.jsonl").read_text().splitlines()]
    kinds = Counter(e["type"] for e in events)
    moved = Counter(e["subject"] for e in events if e["type"] == "integration.task.status_changed")
    assert moved == {f"ww/orders/{order_id}": 7, "deliveries/2": 5}
    assert kinds["integration.return.created"] == kinds["integration.return.status_changed"] == 1
    assert kinds["integration.deal.closed"] == 1
    assert len({e["id"] for e in events}) == len(events)
    onec = [json.loads(line) for line in (root / "onec.jsonl").read_text().splitlines()]
    assert [r["body"]["status"] for r in onec if r["path"].startswith("/1c/returns")] == [
        "pending",
        "rejected",
    ]
    # The courier's moves of the deal's delivery, handed to 1C (1C's own READY is not).
    assert [r["body"]["status"] for r in onec if r["path"] == "/1c/deliveries/status"] == [
        "PICKED_UP",
        "ON_ROUTE",
        "DELIVERED",
        "DONE",
    ]


def _read_lines(proc: subprocess.Popen[str], into: queue.Queue[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        into.put(line.rstrip("\n"))


def _wait_for(lines: queue.Queue[str], seen: list[str], text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"no line with {text!r}:\n" + "\n".join(seen))


def test_after_the_flows_the_service_keeps_working_until_ctrl_c(
    tmp_path: Path, demos: list[subprocess.Popen[str]]
) -> None:
    proc, port, emulator_port = _demo(tmp_path)
    demos.append(proc)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_lines, args=(proc, lines), daemon=True).start()
    seen: list[str] = []
    _wait_for(lines, seen, "keeps running", timeout=240)
    token = _wait_for(lines, seen, "export TOKEN=", 10).split("export TOKEN=", 1)[1].strip()

    api, portal = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{emulator_port}"
    headers = {"Authorization": f"Bearer {token}"}
    # A person goes on trying: one more tagged task becomes one more order.
    created = httpx.post(
        f"{portal}/_emulator/person/tasks",
        json={
            "title": "Ещё заказ",
            "responsible_id": 17,
            "tags": ["instant_order"],
            "description": "- SKU-9 | Кабель | 1 | 390\ncustomer: Пётр",
        },
    )
    assert created.status_code == 201, created.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        orders = httpx.get(f"{api}/api/v1/ww/orders", headers=headers).json()["items"]
        if any(o["task_id_b24"] == created.json()["id"] for o in orders):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"no order for the new task: {orders}")

    # The chat the demo played is linked to its order, as the API tells it.
    chats = httpx.get(f"{api}/api/v1/ww/orders/1/chats", headers=headers).json()["items"]
    assert [(c["status"], [link["target_kind"] for link in c["links"]]) for c in chats] == [
        ("closed", ["instant_order"])
    ]
    assert httpx.get(f"{api}/api/v1/deliveries/1/chats", headers=headers).json()["items"] == []

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    _wait_for(lines, seen, "stopped", 10)
    assert port_is_free("127.0.0.1", port) and port_is_free("127.0.0.1", emulator_port)


def test_a_step_that_does_not_happen_in_time_fails_the_demo_and_stops_the_parts(
    tmp_path: Path, demos: list[subprocess.Popen[str]]
) -> None:
    # No step can be seen within 0 s: the first wait fails, as a stuck worker would.
    proc, port, emulator_port = _demo(tmp_path, "--no-serve", "--timeout", "0")
    demos.append(proc)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    assert "demo failed" in out and "not seen within 0 s" in out
    assert port_is_free("127.0.0.1", port) and port_is_free("127.0.0.1", emulator_port)


def test_a_directory_with_someone_elses_files_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "var" / "demo").mkdir(parents=True)
    keep = tmp_path / "var" / "demo" / "notes.txt"
    keep.write_text("mine")
    result = subprocess.run(
        [sys.executable, "-m", "b24mw", "demo", "--no-serve"],
        cwd=tmp_path,
        env=b24mw_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "did not create" in result.stdout
    assert keep.read_text() == "mine"


def test_prepare_wipes_only_what_the_demo_made(tmp_path: Path) -> None:
    demo = tmp_path / "var" / "demo"
    stage = prepare(demo)
    (stage.root / "b24mw.db").write_text("old run")
    again = prepare(demo)
    assert sorted(p.name for p in again.root.iterdir()) == [MARKER]
    assert again.jwt_secret != stage.jwt_secret  # a fresh secret every run


def test_prepare_refuses_a_link_or_a_file(tmp_path: Path) -> None:
    elsewhere = tmp_path / "precious"
    elsewhere.mkdir()
    (elsewhere / MARKER).write_text("even with the marker")
    (tmp_path / "var").mkdir()
    os.symlink(elsewhere, tmp_path / "var" / "demo")
    with pytest.raises(CannotStart, match="symbolic link"):
        prepare(tmp_path / "var" / "demo")
    assert (elsewhere / MARKER).exists()

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "demo").write_text("a file")
    with pytest.raises(CannotStart, match="not a directory"):
        prepare(tmp_path / "other" / "demo")
