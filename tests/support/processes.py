"""Run ``b24mw`` commands as real processes for multi-process and CLI tests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx

from b24mw.kit.db import Database
from tests.support.net import free_port


def b24mw_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("B24MW_")}
    env.update({f"B24MW_{k.upper()}": v for k, v in settings.items()})
    return env


def run_cli(
    *args: str, cwd: str | None = None, **settings: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "b24mw", *args],
        env=b24mw_env(**settings),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            output = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"process exited early: {output}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer in {timeout} s")
        time.sleep(0.1)


@contextmanager
def b24mw_process(
    *args: str, health: str, **settings: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``b24mw <args> --port P`` running until the block ends; yields (base URL, process)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "b24mw", *args, "--port", str(port)],
        env=b24mw_env(**settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + health, proc)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def api_server(**settings: str) -> Iterator[str]:
    """A ``b24mw serve`` process on a free port; yields its base URL."""
    with b24mw_process("serve", health="/health", **settings) as (base, _):
        yield base


@asynccontextmanager
async def emulator_process() -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """``b24mw emulator`` as its own process (no bucket: tests count what arrives);
    yields its base URL and a client for its control API."""
    with b24mw_process("emulator", "--rps", "0", health="/_emulator/health") as (base, _):
        async with httpx.AsyncClient(base_url=base, timeout=10) as control:
            yield base, control


@contextmanager
def worker_process(
    db: Database, base: str, log: Path, *, worker_id: str = "proc", **settings: str
) -> Iterator[Any]:
    env = b24mw_env(
        database_url=db.url,
        b24_url=f"{base}/rest/1/emulator/",
        # A worker refuses to start with Bitrix24 half configured (README §8).
        webhook_secrets="proc-webhook-secret",
        event_sinks=f"file://{log.parent}/events.jsonl",
        outbox_retry_delays="0.05,0.05,0.05,0.05",
        outbox_late_apply_s="0.05",
        outbox_poll_s="0.02",
        log_level="WARNING",
        # These tests count and time the outbox's own requests: no CRM scans.
        **{"crm_sync": "false", **settings},
    )
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "b24mw", "worker", "--worker-id", worker_id],
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


async def calls(control: httpx.AsyncClient, method: str | None = None) -> list[dict[str, Any]]:
    params = {"method": method} if method else {}
    calls: list[dict[str, Any]] = (await control.get("/_emulator/calls", params=params)).json()
    return calls


async def wait_for_call(control: httpx.AsyncClient, method: str, within_s: float = 20) -> None:
    deadline = time.monotonic() + within_s
    while not await calls(control, method):
        assert time.monotonic() < deadline, f"no {method} call reached the portal"
        await asyncio.sleep(0.05)
