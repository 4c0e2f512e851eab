"""The ``b24mw`` command (Typer)."""

from __future__ import annotations

import asyncio
from typing import Annotated, NoReturn

import typer

from b24mw.bitrix24.commands import check_command
from b24mw.demo.command import demo_command
from b24mw.emulator.cli import emulator_command
from b24mw.outbox import commands as outbox_commands
from b24mw.retention.commands import archive_app
from b24mw.settings import Settings, SettingsError, get_settings

app = typer.Typer(
    help="b24mw: middleware between Bitrix24, 1C and Walking Warehouse couriers.",
    no_args_is_help=True,
    add_completion=False,
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"b24mw: {message}", err=True)
    raise typer.Exit(code=2)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Run the HTTP API (uvicorn)."""
    import uvicorn

    try:
        settings = get_settings()
        settings.require_jwt()
        settings.require_bitrix24()
    except SettingsError as exc:
        _fail(str(exc))
    uvicorn.run(
        "b24mw.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
        # uvicorn's own records propagate to the root logger, which the app
        # renders as JSON (kit.logging), instead of uvicorn's plain format.
        log_config=None,
    )


@app.command()
def run(
    host: Annotated[str, typer.Option(help="interface the API binds")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port of the API")] = 8000,
    api_workers: Annotated[int, typer.Option(min=1, help="API processes (uvicorn)")] = 1,
    workers: Annotated[int, typer.Option(min=1, help="worker processes")] = 1,
    emulator_port: Annotated[
        int, typer.Option(help="port of the built-in emulator (used when B24MW_B24_URL is unset)")
    ] = 8090,
    metrics_port: Annotated[
        int | None, typer.Option(help="serve the first worker's queue metrics on this port")
    ] = None,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="apply migrations before starting")
    ] = True,
) -> None:
    """Run the whole product: the API, the worker(s) and, without B24MW_B24_URL, a
    built-in Bitrix24 emulator wired to the API; Ctrl-C stops everything."""
    import sys

    from b24mw.supervisor import Output, Supervisor, plan_run, port_is_free, uses_builtin_emulator

    try:
        settings = get_settings()
        settings.require_jwt()
        settings.require_bitrix24()
    except SettingsError as exc:
        _fail(str(exc))
    wanted = [("--port", host, port)]
    if uses_builtin_emulator(settings):
        wanted.append(("--emulator-port", "127.0.0.1", emulator_port))
    if metrics_port:
        wanted.append(("--metrics-port", "127.0.0.1", metrics_port))
    for option, address, number in wanted:
        if not port_is_free(address, number):
            _fail(f"port {number} is in use: choose another with {option}")
    if migrate_first:
        _migrate(settings, "head", downgrade=False)
    readable = sys.stdout.isatty()
    plan = plan_run(
        settings,
        host=host,
        port=port,
        api_workers=api_workers,
        workers=workers,
        emulator_port=emulator_port,
        metrics_port=metrics_port,
        readable=readable,
    )
    code = asyncio.run(Supervisor(plan, Output(readable)).run())
    raise typer.Exit(code=code)


def _migrate(settings: Settings, revision: str, downgrade: bool) -> None:
    from b24mw.kit.db import Database
    from b24mw.migrations import downgrade as run_downgrade
    from b24mw.migrations import upgrade as run_upgrade

    async def apply() -> None:
        db = Database(settings)
        try:
            if downgrade:
                await run_downgrade(db.engine, revision)
            else:
                await run_upgrade(db.engine, revision)
        finally:
            await db.dispose()

    asyncio.run(apply())


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="target revision")] = "head",
    downgrade: Annotated[bool, typer.Option(help="downgrade to REVISION instead")] = False,
) -> None:
    """Apply the Alembic migrations (upgrade to head by default)."""
    try:
        settings = get_settings()
    except SettingsError as exc:
        _fail(str(exc))
    _migrate(settings, revision, downgrade)
    typer.echo(f"database at {revision} ({'downgraded' if downgrade else 'upgraded'})")


@app.command()
def token(
    role: Annotated[str, typer.Option(help="1c, courier or admin")],
    sub: Annotated[str, typer.Option(help="the actor id (a courier's id for couriers)")],
    ttl: Annotated[str, typer.Option(help="lifetime: 30s, 15m, 2h, 1d")] = "15m",
) -> None:
    """Mint a development JWT signed with B24MW_JWT_SECRET."""
    from b24mw.kit.auth import Role, mint_token, parse_ttl

    if role not in {r.value for r in Role}:
        _fail(f"--role must be one of: {', '.join(r.value for r in Role)}")
    try:
        ttl_s = parse_ttl(ttl)
        typer.echo(mint_token(get_settings(), role=role, sub=sub, ttl_s=ttl_s))
    except (SettingsError, ValueError) as exc:
        _fail(str(exc))


app.command(
    "emulator", help="Run a local Bitrix24 portal (REST, limits, events) for dev and tests."
)(emulator_command)


app.command("worker")(outbox_commands.worker_command)
app.command("check")(check_command)
app.add_typer(outbox_commands.dlq_app, name="dlq")
app.command("demo")(demo_command)
app.add_typer(archive_app, name="archive")
