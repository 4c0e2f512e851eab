"""``b24mw demo``: the parts of ``b24mw run`` on a fresh SQLite database under
``./var/demo``, the integration's flows played and checked step by step, then
(unless ``--no-serve``) the service left running for a person to go on trying.

Exit codes: 0 every step held (and, serving, Ctrl-C stopped it); 1 a step's
expectation failed or a part died; 2 the demo could not start (a port in use,
a directory it will not wipe); 130 interrupted during the flows.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
from dataclasses import dataclass
from typing import IO, Annotated

import httpx
import typer

from b24mw.demo.flows import MANAGER
from b24mw.demo.narrator import Narrator
from b24mw.demo.play import play
from b24mw.demo.stage import CannotStart, DemoError, Stage, prepare
from b24mw.demo.world import TOKEN_TTL_S, World
from b24mw.supervisor import Output, Part, Supervisor, plan_run, port_is_free

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Options:
    port: int
    emulator_port: int
    serve: bool
    timeout: float
    locale: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


async def _migrate(stage: Stage) -> None:
    from b24mw.kit.db import Database
    from b24mw.migrations import upgrade

    db = Database(stage.settings())
    try:
        await upgrade(db.engine)
    finally:
        await db.dispose()


def _supervisor(stage: Stage, options: Options, log: IO[str]) -> Supervisor:
    """``b24mw run``'s parts (emulator, API, one worker) plus the 1C stand-in,
    their lines written to the demo's log rather than over the story."""
    onec_port = _free_port()
    env = stage.environ(onec_url=f"http://{HOST}:{onec_port}/1c")
    plan = plan_run(
        stage.settings(),
        host=HOST,
        port=options.port,
        api_workers=1,
        workers=1,
        emulator_port=options.emulator_port,
        metrics_port=None,
        readable=False,
        environ=env,
        emulator_state=str(stage.emulator_state),
        cwd=str(stage.root),
    )
    onec = [sys.executable, "-m", "b24mw.demo.onec", "--port", str(onec_port)]
    onec += ["--record", str(stage.onec_file)]
    # First, so that it answers before the worker has anything to hand it.
    plan.parts.insert(0, Part("1c", onec, env, f"http://{HOST}:{onec_port}/health"))

    def write(line: str) -> None:
        log.write(line + "\n")
        log.flush()

    return Supervisor(plan, Output(readable=False, write=write))


def _serving(say: Narrator, world: World) -> None:
    api, portal = world.api_url, world.portal_url
    token = world.token("admin", MANAGER.sub)
    say.title("b24mw keeps running: go on trying (Ctrl-C stops everything)")
    say.say(f"API docs   {api}/docs   metrics {api}/metrics")
    say.say(f"portal     {portal}/_emulator/tasks   (docs/emulator.md: act as a person)")
    say.say(f"files      {world.stage.root}: events.jsonl, onec.jsonl, parts.log, b24mw.db")
    say.say(f"a token    (admin, {TOKEN_TTL_S // 3600} h)", wrap=False)
    say.say(f"export TOKEN={token}", wrap=False)
    say.say(f'curl -s {api}/api/v1/ww/orders -H "Authorization: Bearer $TOKEN"', wrap=False)
    say.say(
        f"curl -s -X POST {portal}/_emulator/person/tasks -H 'Content-Type: application/json' "
        """-d '{"title": "Ещё заказ", "responsible_id": 17, "tags": ["instant_order"], """
        """"description": "- SKU-9 | Кабель | 1 | 390\\ncustomer: Пётр"}'""",
        wrap=False,
    )


async def run_demo(options: Options, say: Narrator) -> int:
    for flag, number in (("--port", options.port), ("--emulator-port", options.emulator_port)):
        if not port_is_free(HOST, number):
            raise CannotStart(f"port {number} is in use: choose another with {flag}")
    stage = prepare(locale=options.locale)
    say.title("b24mw demo")
    say.say(
        f"a fresh SQLite database in {stage.root}, the built-in Bitrix24 emulator as the portal"
    )
    started = time.monotonic()
    await _migrate(stage)
    with stage.parts_log.open("a", encoding="utf-8") as log:
        supervisor = _supervisor(stage, options, log)
        running = asyncio.create_task(supervisor.run())
        ready = asyncio.create_task(supervisor.ready.wait())
        await asyncio.wait({running, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not supervisor.ready.is_set():
            ready.cancel()
            await running
            if supervisor.fatal is None:
                return 130
            raise DemoError(f"{supervisor.fatal} (the parts' log: {stage.parts_log})")
        say.ok(
            f"emulator, API, worker and a 1C stand-in up in {time.monotonic() - started:.1f} s "
            f"(their logs: {stage.parts_log})"
        )
        async with httpx.AsyncClient(timeout=10) as http:
            world = World(
                stage,
                api_url=f"http://{HOST}:{options.port}",
                portal_url=f"http://{HOST}:{options.emulator_port}",
                http=http,
                timeout=options.timeout,
            )
            story = asyncio.create_task(play(world, say, options.locale))
            await asyncio.wait({story, running}, return_when=asyncio.FIRST_COMPLETED)
            if not story.done():
                # The supervisor ended first: Ctrl-C, or a part that kept dying.
                story.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await story
                if supervisor.fatal is not None:
                    raise DemoError(f"{supervisor.fatal} (the parts' log: {stage.parts_log})")
                say.note("interrupted")
                return 130
            try:
                story.result()
            except BaseException:
                supervisor.stopping.set()
                await running
                raise
            say.console.print()
            say.ok(
                f"every step held ({say.steps} steps, {time.monotonic() - started:.0f} s); "
                f"the parts' log: {stage.parts_log}"
            )
            if not options.serve:
                supervisor.stopping.set()
                await running
                return 0
            _serving(say, world)
            code = await running
            if supervisor.fatal is not None:
                raise DemoError(f"{supervisor.fatal} (the parts' log: {stage.parts_log})")
            say.note("stopped")
            return code


def demo_command(
    serve: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve",
            help="keep the service running after the flows (Ctrl-C stops); --no-serve exits",
        ),
    ] = True,
    port: Annotated[int, typer.Option(help="TCP port of the API")] = 8000,
    emulator_port: Annotated[int, typer.Option(help="TCP port of the built-in emulator")] = 8090,
    timeout: Annotated[
        float, typer.Option(min=0, help="seconds each step may take before the demo fails")
    ] = 60.0,
    locale: Annotated[
        str, typer.Option(help="language b24mw writes into Bitrix24: ru or en")
    ] = "ru",
) -> None:
    """Play the integration's flows on a fresh SQLite database under ./var/demo
    (wiped at start), narrated and checked step by step; then keep the service
    running with its URLs printed (--no-serve: stop after the flows)."""
    if locale not in ("ru", "en"):
        typer.echo("b24mw: --locale must be ru or en", err=True)
        raise typer.Exit(code=2)
    say = Narrator()
    options = Options(port, emulator_port, serve, timeout, locale)
    try:
        code = asyncio.run(run_demo(options, say))
    except KeyboardInterrupt:  # before the parts were started (or after they stopped)
        say.note("interrupted")
        raise typer.Exit(code=130) from None
    except DemoError as exc:
        say.failed(str(exc))
        # Could not start at all is 2, like the other commands' refusals.
        raise typer.Exit(code=2 if isinstance(exc, CannotStart) else 1) from None
    raise typer.Exit(code=code)
