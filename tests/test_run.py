"""``b24mw run``: the whole product from one command, as a newcomer starts it.

A person creates a tagged task in the built-in emulator and sees the order in
the API, answered in the task; a part that dies comes back; Ctrl-C stops
everything; a part that cannot start stops the run with a message.
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.auth import JWT_SECRET, auth
from tests.support.net import free_port
from tests.support.postgres import PostgresServer
from tests.support.processes import b24mw_env

ORDER = "- SKU-1 | Чехол | 2 | 490,00\ncustomer: Иван Петров"


@dataclass
class Run:
    proc: subprocess.Popen[str]
    api: str
    portal: str
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str] = field(default_factory=queue.Queue)

    def read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self._queue.empty():
                    break
                continue
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r}; output:\n" + "\n".join(self.lines))

    def children(self) -> dict[int, str]:
        """The supervisor's child processes: pid -> command line."""
        found: dict[int, str] = {}
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        for pid in path.read_text().split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            found[int(pid)] = cmdline.decode()
        return found


@pytest.fixture
def start_run(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    runs: list[Run] = []

    def start(*args: str, **settings: str) -> Run:
        port, emulator_port = free_port(), free_port()
        settings.setdefault("database_url", f"sqlite+aiosqlite:///{tmp_path}/run.db")
        ports = ("--port", str(port), "--emulator-port", str(emulator_port))
        proc = subprocess.Popen(
            [sys.executable, "-m", "b24mw", "run", *ports, *args],
            cwd=tmp_path,
            env=b24mw_env(jwt_secret=JWT_SECRET, **settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        run = Run(proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{emulator_port}")
        threading.Thread(target=run.read, daemon=True).start()
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()


async def _order_from_tagged_task(run: Run, client: httpx.AsyncClient, sku: str) -> dict[str, Any]:
    created = await client.post(
        f"{run.portal}/_emulator/person/tasks",
        json={
            "title": "С улицы",
            "responsible_id": 17,
            "tags": ["instant_order"],
            "description": ORDER.replace("SKU-1", sku),
        },
    )
    assert created.status_code == 201, created.text
    task_id = int(created.json()["id"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = await client.get(f"{run.api}/api/v1/ww/orders", headers=auth("admin", "alice"))
        mine = [o for o in listed.json()["items"] if o["task_id_b24"] == task_id]
        task = (await client.get(f"{run.portal}/_emulator/tasks/{task_id}")).json()
        if mine and task["comments"]:
            assert f"Заказ {mine[0]['id']} создан" in task["comments"][0]["text"]
            return mine[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"task {task_id} did not become an answered order")


async def _setup_courier(run: Run, client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{run.api}/api/v1/ww/couriers",
        headers=auth("admin", "alice"),
        json={"id": "c-17", "display_name": "Иван", "b24_user_id": 17},
    )
    assert response.status_code == 201, response.text


async def test_a_tagged_task_becomes_an_order_and_ctrl_c_stops_everything(
    start_run: Callable[..., Run],
) -> None:
    run = start_run()
    run.wait_for("all parts are up")
    assert any("docs http://127.0.0.1:" in line for line in run.lines)
    assert any("built-in Bitrix24 emulator" in line for line in run.lines)
    children = run.children()
    assert len(children) == 3

    async with httpx.AsyncClient(timeout=10) as client:
        await _setup_courier(run, client)
        order = await _order_from_tagged_task(run, client, "SKU-1")
    assert (order["courier_id"], order["total_amount"]) == ("c-17", "980.00")

    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(timeout=30) == 0
    run.wait_for("stopped")
    assert all(_gone(pid) for pid in children)


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True


async def test_a_worker_that_dies_is_restarted(start_run: Callable[..., Run]) -> None:
    run = start_run()
    run.wait_for("all parts are up")
    [worker] = [pid for pid, cmd in run.children().items() if " worker " in f"{cmd} "]
    os.kill(worker, signal.SIGKILL)
    run.wait_for("worker-1 exited with code -9; restarting")

    async with httpx.AsyncClient(timeout=10) as client:
        await _setup_courier(run, client)
        await _order_from_tagged_task(run, client, "SKU-2")
    assert worker not in run.children()


def test_a_part_that_cannot_start_stops_the_run_with_a_message(
    start_run: Callable[..., Run], tmp_path: Path
) -> None:
    # The emulator keeps its tasks in ./var/emulator.json: a directory there breaks it.
    (tmp_path / "var" / "emulator.json").mkdir(parents=True)
    run = start_run()
    assert run.proc.wait(timeout=60) == 1
    run.wait_for("stopped: emulator exited with code")


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "b24mw", "run", "--port", str(port)],
            cwd=tmp_path,
            env=b24mw_env(jwt_secret=JWT_SECRET),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"port {port} is in use" in result.stderr


async def test_several_api_and_worker_processes_on_postgresql(
    start_run: Callable[..., Run], pg_server: PostgresServer
) -> None:
    name = "run_" + uuid.uuid4().hex[:8]
    pg_server.createdb(name)
    run = start_run("--api-workers", "2", "--workers", "2", database_url=pg_server.url(name))
    run.wait_for("all parts are up")
    assert any("PostgreSQL (2 API process(es), 2 worker(s))" in line for line in run.lines)
    async with httpx.AsyncClient(timeout=10) as client:
        await _setup_courier(run, client)
        for sku in ("SKU-3", "SKU-4", "SKU-5"):
            await _order_from_tagged_task(run, client, sku)
    run.proc.send_signal(signal.SIGTERM)
    assert run.proc.wait(timeout=30) == 0
