"""``b24mw run``: the whole product in one supervised command.

The API, the worker(s) and — when no portal is configured — the built-in
Bitrix24 emulator run as child processes of this one.  Their output comes out
here, one line at a time, prefixed with the part's name: readable text on a
terminal, JSON lines (with a ``part`` field) otherwise.  Ctrl-C (or SIGTERM)
stops the parts in reverse order of their start; a part that dies is
restarted after a short pause, and one that keeps dying stops the whole with
a message that says which and why.

The children live in sessions of their own, so the terminal's Ctrl-C reaches
only this process and the stop is orderly; on Linux they are also told to end
if this process is killed outright.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import secrets
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from b24mw.settings import Settings

# A part that dies this often inside the window is given up on.
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0
_COLORS = {"api": "36", "emulator": "35", "run": "1"}
_WORKER_COLOR = "33"


@dataclass(slots=True)
class Part:
    name: str
    argv: list[str]
    env: dict[str, str]
    ready_url: str | None = None
    proc: asyncio.subprocess.Process | None = None
    pump: asyncio.Task[None] | None = None
    deaths: deque[float] = field(default_factory=deque)


@dataclass(frozen=True, slots=True)
class Plan:
    """What to start and what to tell the operator about it."""

    parts: list[Part]
    banner: list[str]
    # Where the parts run (None: here).  The demo runs them in its own
    # directory so that no ``.env`` of the operator's reaches them.
    cwd: str | None = None


class Fatal(Exception):
    """The run cannot go on; the message says why."""


def _connect_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((_connect_host(host), port))
        except OSError:
            return False
    return True


def uses_builtin_emulator(settings: Settings) -> bool:
    """No portal configured (neither an incoming webhook nor an application)."""
    return settings.b24_url is None and settings.b24_auth != "oauth"


def _b24mw(*args: str) -> list[str]:
    return [sys.executable, "-m", "b24mw", *args]


def plan_run(
    settings: Settings,
    *,
    host: str,
    port: int,
    api_workers: int,
    workers: int,
    emulator_port: int,
    metrics_port: int | None,
    readable: bool,
    environ: dict[str, str] | None = None,
    emulator_state: str = "./var/emulator.json",
    cwd: str | None = None,
) -> Plan:
    """The parts of a run and the lines announcing them.

    ``environ`` replaces this process's environment for the parts and ``cwd``
    their working directory (and so which ``.env`` they read): ``b24mw demo``
    keeps its parts away from the operator's settings with both."""
    env = dict(os.environ if environ is None else environ)
    # Readable lines on a terminal, JSON for a log collector.
    env["B24MW_LOG_JSON"] = "false" if readable else "true"
    api = f"http://{_connect_host(host)}:{port}"
    parts: list[Part] = []
    banner = [
        f"b24mw is running on {'SQLite' if settings.is_sqlite else 'PostgreSQL'}"
        f" ({api_workers} API process(es), {workers} worker(s))",
        f"  API        {api}/api/v1   docs {api}/docs",
        f"  metrics    {api}/metrics"
        + (f"   worker queues http://127.0.0.1:{metrics_port}/metrics" if metrics_port else ""),
    ]
    if uses_builtin_emulator(settings):
        portal = f"http://127.0.0.1:{emulator_port}"
        rest_secret = secrets.token_urlsafe(12)
        emulator_args = [
            "emulator",
            "--port",
            str(emulator_port),
            "--rest-secret",
            rest_secret,
            "--handler-url",
            f"{api}/api/v1/webhooks/bitrix24",
            "--state",
            emulator_state,
        ]
        # The emulator posts its events the way the API is set to accept them.
        if settings.webhook_auth in ("hmac", "both"):
            sign = (settings.webhook_secret_list or [secrets.token_urlsafe(24)])[0]
            env["B24MW_WEBHOOK_SECRETS"] = ",".join(settings.webhook_secret_list or [sign])
            emulator_args += ["--sign-secret", sign]
        if settings.webhook_auth in ("token", "both"):
            token = (settings.webhook_app_token_list or [secrets.token_urlsafe(24)])[0]
            env["B24MW_WEBHOOK_APP_TOKENS"] = ",".join(settings.webhook_app_token_list or [token])
            emulator_args += ["--application-token", token]
        env["B24MW_B24_URL"] = f"{portal}/rest/1/{rest_secret}/"
        parts.append(Part("emulator", _b24mw(*emulator_args), env, f"{portal}/_emulator/health"))
        banner += [
            f"  portal     the built-in Bitrix24 emulator {portal}/_emulator/tasks",
            f"             act as a person: POST {portal}/_emulator/person/tasks"
            " (docs/emulator.md)",
        ]
    elif settings.b24_auth == "oauth":
        banner.append(f"  portal     {settings.b24_portal_url} (b24mw as its local application)")
    else:
        banner.append("  portal     B24MW_B24_URL (a real Bitrix24 portal)")
    serve = ["serve", "--host", host, "--port", str(port), "--workers", str(api_workers)]
    parts.append(Part("api", _b24mw(*serve), env, f"{api}/health"))
    for number in range(1, workers + 1):
        args = ["worker", "--worker-id", f"{socket.gethostname()}:run-{number}"]
        if number == 1 and metrics_port:
            args += ["--metrics-port", str(metrics_port)]
        parts.append(Part(f"worker-{number}", _b24mw(*args), env))
    banner += [
        "  a token    b24mw token --role admin --sub you",
        "Ctrl-C stops everything.",
    ]
    return Plan(parts, banner, cwd)


def _die_with_parent() -> None:
    """Child side, Linux: SIGTERM when the supervisor dies, however it dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Output:
    """Children's lines, prefixed, to our stdout."""

    def __init__(self, readable: bool, write: Callable[[str], None] | None = None) -> None:
        self.readable = readable
        self.write = write or (lambda line: print(line, flush=True))
        self.width = 9

    def line(self, part: str, text: str) -> None:
        if self.readable:
            color = _COLORS.get(part, _WORKER_COLOR)
            self.write(f"\x1b[{color}m{part:<{self.width}}│\x1b[0m {text}")
            return
        stripped = text.strip()
        if stripped.startswith("{") and stripped.endswith("}"):
            # A JSON log line of the part: add its name, keep everything else.
            self.write('{"part":' + json.dumps(part) + "," + stripped[1:])
        else:
            self.write(json.dumps({"part": part, "event": text}, ensure_ascii=False))

    def note(self, text: str) -> None:
        self.line("run", text)

    def banner(self, lines: list[str]) -> None:
        for text in lines:
            self.write(text) if self.readable else self.note(text)


class Supervisor:
    def __init__(self, plan: Plan, output: Output) -> None:
        self.plan = plan
        self.output = output
        self.stopping = asyncio.Event()
        # Set once every part has started and answered (the demo plays then).
        self.ready = asyncio.Event()
        self.fatal: str | None = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        watchers: list[asyncio.Task[None]] = []
        try:
            self.output.banner(self.plan.banner)
            for part in self.plan.parts:
                if self.stopping.is_set():
                    break
                await self._start(part)
                if part.ready_url:
                    await self._wait_ready(part)
                watchers.append(asyncio.create_task(self._watch(part)))
            if not self.stopping.is_set():
                self.output.note("all parts are up")
                self.ready.set()
            await self.stopping.wait()
        except Fatal as exc:
            self.fatal = str(exc)
        finally:
            for watcher in watchers:
                watcher.cancel()
            await self._stop_all()
        if self.fatal:
            self.output.note(f"stopped: {self.fatal}")
            return 1
        self.output.note("stopped")
        return 0

    async def _start(self, part: Part) -> None:
        part.proc = await asyncio.create_subprocess_exec(
            *part.argv,
            env=part.env,
            cwd=self.plan.cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        part.pump = asyncio.create_task(self._pump(part, part.proc))

    async def _pump(self, part: Part, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while raw := await proc.stdout.readline():
            self.output.line(part.name, raw.decode("utf-8", "replace").rstrip("\n"))

    async def _wait_ready(self, part: Part) -> None:
        assert part.proc is not None and part.ready_url is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with httpx.AsyncClient(timeout=1.0) as client:
            while not self.stopping.is_set():
                if part.proc.returncode is not None:
                    raise Fatal(f"{part.name} exited with code {part.proc.returncode} at start")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(part.ready_url)).status_code < 500:
                        return
                if time.monotonic() > deadline:
                    raise Fatal(f"{part.name} did not answer at {part.ready_url}")
                await asyncio.sleep(0.1)

    async def _watch(self, part: Part) -> None:
        while True:
            assert part.proc is not None
            code = await part.proc.wait()
            if part.pump is not None:
                await part.pump
            if self.stopping.is_set():
                return
            now = time.monotonic()
            part.deaths.append(now)
            while part.deaths and now - part.deaths[0] > RESTART_WINDOW_S:
                part.deaths.popleft()
            if len(part.deaths) > MAX_RESTARTS:
                self.fatal = (
                    f"{part.name} exited {len(part.deaths)} times within "
                    f"{RESTART_WINDOW_S:.0f} s (last exit code {code}); see its lines above"
                )
                self.stopping.set()
                return
            delay = min(10.0, 2.0 ** (len(part.deaths) - 1))
            self.output.note(f"{part.name} exited with code {code}; restarting in {delay:.0f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            if self.stopping.is_set():
                return
            await self._start(part)

    async def _stop_all(self) -> None:
        for part in reversed(self.plan.parts):
            proc = part.proc
            if proc is None or proc.returncode is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
            except TimeoutError:
                self.output.note(f"{part.name} did not stop in {STOP_GRACE_S:.0f} s: killed")
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            if part.pump is not None:
                with contextlib.suppress(Exception):
                    await part.pump
