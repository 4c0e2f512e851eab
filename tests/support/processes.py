"""Run ``b24mw`` commands as real processes for multi-process and CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

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
    *args: str, health: str, port: int | None = None, **settings: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``b24mw <args> --port P`` running until the block ends; yields (base URL, process)."""
    port = port or free_port()
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
