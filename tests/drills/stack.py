"""Real processes for the drills: the emulator, ``b24mw serve`` and ``b24mw
worker`` on one database, each with its log in the test's directory, so a
drill can kill, restart and count them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.auth import JWT_SECRET
from tests.support.net import free_port
from tests.support.processes import b24mw_env

ROOT = Path(__file__).resolve().parents[2]
REST_SECRET = "drill"
HOOK_SECRET = "drill-hook-secret"
# Short enough for a drill, the same shape as production's 10 s → 30 s → 2 min → 10 min.
FAST = {
    "outbox_retry_delays": "0.2,0.4,0.8,1.6,3.2",
    "outbox_late_apply_s": "0.2",
    "outbox_poll_s": "0.02",
    "b24_pause_s": "0.2",
    "b24_timeout_s": "5",
    "log_level": "WARNING",
}


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    url: str | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye (a crash, an OOM kill, a lost machine)."""
        os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)


@dataclass
class Stack:
    """The processes of one drill; everything is stopped when the drill ends."""

    root: Path
    database_url: str
    settings: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    portal: str = ""

    @property
    def events_file(self) -> Path:
        return self.root / "events.jsonl"

    def env(self, **extra: str) -> dict[str, str]:
        values = {
            "database_url": self.database_url,
            "jwt_secret": JWT_SECRET,
            "webhook_secrets": HOOK_SECRET,
            "event_sinks": f"file://{self.events_file}",
            "siem_sink": f"file://{self.root / 'siem.jsonl'}",
            **FAST,
            **self.settings,
            **extra,
        }
        if self.portal:
            values.setdefault("b24_url", f"{self.portal}/rest/1/{REST_SECRET}/")
        return b24mw_env(**values)

    def spawn(self, name: str, argv: list[str], env: dict[str, str], url: str | None) -> Proc:
        log = (self.root / f"{name}.log").open("ab")
        popen = subprocess.Popen(argv, env=env, stdout=log, stderr=log, cwd=ROOT)
        proc = Proc(name, popen, url)
        self.procs.append(proc)
        return proc

    def wait_up(self, proc: Proc, health: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited: {self.log_of(proc.name)[-2000:]}")
            try:
                if httpx.get(f"{proc.url}{health}", timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{proc.name} did not answer in {timeout} s"
            time.sleep(0.05)

    def log_of(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def emulator(self, *args: str, handler: str | None = None) -> Proc:
        """The portal; with ``handler`` it POSTs its events there, signed."""
        port = free_port()
        argv = [sys.executable, "-m", "b24mw", "emulator", "--port", str(port)]
        argv += ["--rest-secret", REST_SECRET, *args]
        if handler:
            argv += ["--handler-url", handler, "--sign-secret", HOOK_SECRET]
        proc = self.spawn("emulator", argv, b24mw_env(), f"http://127.0.0.1:{port}")
        self.wait_up(proc, "/_emulator/health")
        self.portal = proc.url or ""
        return proc

    def api(self, name: str = "api", *, module: str | None = None, **extra: str) -> Proc:
        """``b24mw serve`` (or ``python -m <module> --port P``, a harness that
        wraps it) on a free port."""
        port = free_port()
        if module:
            argv = [sys.executable, "-m", module, "--port", str(port)]
        else:
            argv = [sys.executable, "-m", "b24mw", "serve", "--port", str(port)]
        proc = self.spawn(name, argv, self.env(**extra), f"http://127.0.0.1:{port}")
        self.wait_up(proc, "/health")
        return proc

    def worker(self, name: str = "worker", **extra: str) -> Proc:
        argv = [sys.executable, "-m", "b24mw", "worker", "--worker-id", name]
        return self.spawn(name, argv, self.env(**extra), None)

    def stop(self, proc: Proc, timeout: float = 20) -> int:
        """SIGTERM, as an operator stops a part; its exit code."""
        if proc.alive():
            proc.popen.terminate()
        try:
            return proc.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            return proc.popen.wait()

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            if proc.alive():
                self.stop(proc, timeout=10)


@contextmanager
def stack(root: Path, database_url: str, **settings: str) -> Iterator[Stack]:
    drill = Stack(root, database_url, dict(settings))
    try:
        yield drill
    finally:
        drill.stop_all()


@asynccontextmanager
async def control(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the emulator's control API."""
    async with httpx.AsyncClient(base_url=stack.portal, timeout=10) as client:
        yield client


async def settled(
    read: Any, *, within_s: float, every_s: float = 0.1, what: str = "the system to settle"
) -> Any:
    """Poll ``read()`` (an async callable) until it returns something truthy."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            value = await read()
        except Exception:  # a database restarting under us: look again
            value = None
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(every_s)
