from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from b24mw.emulator.cli import emulator_command
from b24mw.emulator.portal import Portal
from tests.support.net import free_port


def _cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Stand-in for the main b24mw CLI."""

    app.command("emulator")(emulator_command)
    return app


def test_help_lists_the_documented_options() -> None:
    result = CliRunner().invoke(_cli(), ["emulator", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for option in (
        "--host",
        "--port",
        "--rest-user",
        "--rest-secret",
        "--handler-url",
        "--application-token",
        "--sign-secret",
        "--rps",
        "--burst",
        "--operating-limit-s",
        "--state",
        "--domain",
        "--member-id",
        "--task-card",
        "--webhook-scope",
    ):
        assert option in result.output


def test_options_reach_the_portal_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    captured: dict[str, Any] = {}

    def fake_run(app: Any, **kwargs: Any) -> None:
        captured["portal"] = app.state.portal
        captured.update(kwargs)

    monkeypatch.setattr("uvicorn.run", fake_run)
    result = CliRunner().invoke(
        _cli(),
        [
            "emulator",
            "--port",
            "9123",
            "--rest-user",
            "7",
            "--rest-secret",
            "s",
            "--handler-url",
            "http://127.0.0.1:1/hook",
            "--application-token",
            "tok",
            "--sign-secret",
            "sig",
            "--rps",
            "0",
            "--burst",
            "250",
            "--operating-limit-s",
            "60",
            "--state",
            str(tmp_path / "s.json"),
            "--domain",
            "demo.bitrix24.local",
            "--task-card",
            "new",
            "--webhook-scope",
            "task,user",
            "--no-rest-user-admin",
            "--no-task-get-tags",
        ],
    )
    assert result.exit_code == 0, result.output
    portal: Portal = captured["portal"]
    config = portal.config
    assert (captured["host"], captured["port"]) == ("127.0.0.1", 9123)
    assert (config.rest_user, config.rest_secret) == (7, "s")
    assert (config.handler_url, config.application_token, config.sign_secret) == (
        "http://127.0.0.1:1/hook",
        "tok",
        "sig",
    )
    assert (config.rps, config.burst, config.operating_limit_s) == (0.0, 250.0, 60.0)
    assert config.state_file == tmp_path / "s.json"
    assert config.client_endpoint == "https://demo.bitrix24.local/rest/"
    assert (portal.settings.task_card, portal.settings.webhook_scope) == ("new", "task,user")
    assert (portal.settings.rest_user_admin, portal.settings.task_get_tags) == (False, False)


def test_an_unknown_task_card_is_refused() -> None:
    result = CliRunner().invoke(_cli(), ["emulator", "--task-card", "v3"])
    assert result.exit_code != 0
    assert "v3" in result.output


def _start(port: int, state: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "b24mw.emulator", "--port", str(port), "--state", str(state)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait_ready(client: httpx.Client, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert process.poll() is None, "emulator exited"
        try:
            if client.get("/_emulator/health").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("emulator did not start")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_python_dash_m_serves_and_a_restart_keeps_tasks(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / "portal.json"
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=5) as client:
        process = _start(port, state)
        try:
            _wait_ready(client, process)
            added = client.post(
                "/rest/1/emulator/tasks.task.add",
                json={"fields": {"TITLE": "survives", "RESPONSIBLE_ID": 3}},
            )
            assert added.status_code == 200
        finally:
            _stop(process)
        process = _start(port, state)
        try:
            _wait_ready(client, process)
            got = client.post("/rest/1/emulator/tasks.task.get", json={"taskId": 1})
            assert got.json()["result"]["task"]["title"] == "survives"
        finally:
            _stop(process)


def test_the_start_banner_masks_the_rest_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: None)
    secret = "s3cr3t-webhook-password"
    result = CliRunner().invoke(_cli(), ["emulator", "--rest-secret", secret])
    assert result.exit_code == 0, result.output
    assert "Bitrix24 emulator on http://127.0.0.1:" in result.output
    assert secret not in result.output and secret[2:8] not in result.output
    assert "/rest/1/s3******/" in result.output
