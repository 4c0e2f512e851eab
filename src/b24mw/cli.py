"""The ``b24mw`` command (Typer)."""

from __future__ import annotations

import asyncio
from typing import Annotated, NoReturn

import typer

from b24mw.emulator.cli import emulator_command
from b24mw.outbox import commands as outbox_commands
from b24mw.retention.commands import archive_app
from b24mw.settings import SettingsError, get_settings

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
        get_settings().require_jwt()
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
    )


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="target revision")] = "head",
    downgrade: Annotated[bool, typer.Option(help="downgrade to REVISION instead")] = False,
) -> None:
    """Apply the Alembic migrations (upgrade to head by default)."""
    from b24mw.kit.db import Database
    from b24mw.migrations import downgrade as run_downgrade
    from b24mw.migrations import upgrade as run_upgrade

    try:
        settings = get_settings()
    except SettingsError as exc:
        _fail(str(exc))

    async def run() -> None:
        db = Database(settings)
        try:
            if downgrade:
                await run_downgrade(db.engine, revision)
            else:
                await run_upgrade(db.engine, revision)
        finally:
            await db.dispose()

    asyncio.run(run())
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


def _placeholder(name: str, what: str, owner: str) -> None:
    def command() -> None:
        _fail(f"'{name}' is not built yet ({what}; {owner}).")

    command.__doc__ = f"NOT YET AVAILABLE: {what} ({owner})."
    app.command(name, help=command.__doc__)(command)


app.command("worker")(outbox_commands.worker_command)
app.add_typer(outbox_commands.dlq_app, name="dlq")
_placeholder("demo", "emulator + API + worker running the three flows", "no issue yet")
app.add_typer(archive_app, name="archive")
