"""Real processes: several API processes sharing PostgreSQL, the CLI, logs."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.auth import JWT_SECRET, auth
from tests.support.postgres import PostgresServer
from tests.support.processes import api_server, b24mw_process, run_cli

URL = "/api/v1/ww/couriers"


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    name = "proc_" + uuid.uuid4().hex[:8]
    pg_server.createdb(name)
    return pg_server.url(name)


async def test_idempotency_holds_across_processes(pg_url: str) -> None:
    assert run_cli("migrate", database_url=pg_url).returncode == 0
    env = {"database_url": pg_url, "jwt_secret": JWT_SECRET, "log_level": "WARNING"}
    with api_server(**env) as first, api_server(**env) as second:
        headers = auth("admin", key="cross-process")
        body = {"id": "c-1", "display_name": "Anna"}
        async with httpx.AsyncClient(timeout=10) as client:
            responses = await asyncio.gather(
                *[
                    client.post(f"{base}{URL}", headers=headers, json=body)
                    for base in (first, second) * 4
                ]
            )
            fresh = [
                r
                for r in responses
                if r.status_code == 201 and "idempotent-replayed" not in r.headers
            ]
            assert len(fresh) == 1
            assert all(r.status_code in (201, 409) for r in responses)
            # Once finished, both processes replay the same stored answer.
            for base in (first, second):
                again = await client.post(f"{base}{URL}", headers=headers, json=body)
                assert again.status_code == 201
                assert again.headers["idempotent-replayed"] == "true"
                assert again.json()["id"] == "c-1"


async def test_chunked_upload_over_limit_is_cut_off_over_real_http(pg_url: str) -> None:
    assert run_cli("migrate", database_url=pg_url).returncode == 0
    env = {"database_url": pg_url, "jwt_secret": JWT_SECRET, "max_body_bytes": "65536"}
    with api_server(**env) as base:

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(1024):  # 64 MiB if it were all read
                yield b" " * 65536

        headers = auth("admin") | {"Content-Type": "application/json"}
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(f"{base}{URL}", headers=headers, content=chunks())
        assert response.status_code == 413
        assert response.json()["code"] == "payload.too_large"


def test_token_command_mints_a_token_that_creates_a_courier(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    assert run_cli("migrate", database_url=url).returncode == 0
    minted = run_cli("token", "--role", "admin", "--sub", "a", "--ttl", "5m", jwt_secret=JWT_SECRET)
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    with api_server(database_url=url, jwt_secret=JWT_SECRET) as base:
        response = httpx.post(
            f"{base}{URL}",
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "curl-1"},
            json={"id": "c-1", "display_name": "Anna"},
        )
    assert response.status_code == 201, response.text


def test_bad_setting_stops_with_one_line_naming_it() -> None:
    result = run_cli("migrate", database_url="mysql://nope")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("b24mw: B24MW_DATABASE_URL")


def test_serve_without_jwt_key_refuses_to_start() -> None:
    result = run_cli("serve")
    assert result.returncode == 2
    assert "B24MW_JWT_SECRET" in result.stderr


def test_migrate_downgrade_to_base(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/down.db"
    assert run_cli("migrate", database_url=url).returncode == 0
    down = run_cli("migrate", "base", "--downgrade", database_url=url)
    assert down.returncode == 0, down.stderr


def test_request_log_line_is_json_with_masked_phone(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/log.db"
    assert run_cli("migrate", database_url=url).returncode == 0
    env = {"database_url": url, "jwt_secret": JWT_SECRET}
    with b24mw_process("serve", health="/health", **env) as (base, proc):
        token = auth("admin")["Authorization"]
        httpx.get(f"{base}{URL}", headers={"X-Request-Id": "log-1", "Authorization": token})
        proc.terminate()
        out = proc.stdout.read().decode() if proc.stdout else ""
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    request_line = next(entry for entry in lines if entry.get("request_id") == "log-1")
    assert request_line["event"] == "request"
    assert request_line["route"] == "/api/v1/ww/couriers"
    assert request_line["status"] == 200 and "duration_ms" in request_line


def test_emulator_command_serves_a_portal() -> None:
    with b24mw_process("emulator", "--rest-secret", "s3", health="/_emulator/health") as (base, _):
        added = httpx.post(
            f"{base}/rest/1/s3/tasks.task.add.json",
            json={"fields": {"TITLE": "Deliver", "RESPONSIBLE_ID": 7}},
        )
        assert added.status_code == 200
        assert added.json()["result"]["task"]["title"] == "Deliver"
        wrong = httpx.post(f"{base}/rest/1/nope/tasks.task.get", json={"taskId": 1})
        assert wrong.status_code == 401 and wrong.json()["error"] == "INVALID_CREDENTIALS"


async def test_every_line_of_serve_is_json_uvicorns_and_the_pools_too(
    pg_server: PostgresServer, pg_url: str
) -> None:
    assert run_cli("migrate", database_url=pg_url).returncode == 0
    env = {"database_url": pg_url, "jwt_secret": JWT_SECRET, "log_level": "INFO"}
    with b24mw_process("serve", health="/health", **env) as (base, proc):
        async with httpx.AsyncClient(timeout=10) as client:
            await client.get(f"{base}{URL}", headers=auth("admin"))
            await asyncio.to_thread(pg_server.restart)
            for _ in range(3):
                await client.get(f"{base}{URL}", headers=auth("admin"))
        # Not HTTP at all: uvicorn logs a warning of its own.
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"NOT HTTP\r\n\r\n")
        await writer.drain()
        await reader.read()
        writer.close()
        await asyncio.sleep(0.2)
        proc.terminate()
        proc.wait(timeout=10)
        out = proc.stdout.read().decode() if proc.stdout else ""
    lines = [line for line in out.splitlines() if line.strip()]
    events = [json.loads(line).get("event") for line in lines]  # raises on plain text
    assert "Invalid HTTP request received." in events
