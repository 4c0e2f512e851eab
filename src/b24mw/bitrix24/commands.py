"""``b24mw check``: the portal check (``bitrix24.check``) as a command."""

from __future__ import annotations

import asyncio

import httpx
import typer
from rich.console import Console
from rich.table import Table

from b24mw.bitrix24.check import INFO, MISSING, OK, PortalCheck, Report
from b24mw.bitrix24.client import Bitrix24Client, PortalAuth, Target
from b24mw.kit.db import Database
from b24mw.settings import Settings, SettingsError, get_settings

STYLES = {OK: "green", INFO: "cyan", MISSING: "bold red"}


async def run_check(settings: Settings, http: httpx.AsyncClient | None = None) -> Report:
    """The check against the configured portal (the webhook, or the installed
    application's tokens from the database)."""
    own_http = http is None
    client_http = http or httpx.AsyncClient(follow_redirects=False)
    db: Database | None = None
    try:
        auth: PortalAuth
        if settings.b24_auth == "oauth":
            from b24mw.b24app.session import AppSession

            db = Database(settings)
            auth = AppSession(settings, db, client_http)
        else:
            target = Target.from_settings(settings)
            if target is None:
                raise SettingsError("B24MW_B24_URL: not set (the incoming webhook to check)")
            auth = target
        client = Bitrix24Client(settings, client_http, auth)
        return await PortalCheck(settings, client).run()
    finally:
        if db is not None:
            await db.dispose()
        if own_http:
            await client_http.aclose()


def render(report: Report, console: Console) -> None:
    table = Table(title="Bitrix24 portal check", show_lines=False)
    table.add_column("Check")
    table.add_column("Result")
    table.add_column("Detail", overflow="fold")
    for finding in report.findings:
        style = STYLES.get(finding.status, "")
        table.add_row(finding.check, f"[{style}]{finding.status}[/]", finding.detail)
    console.print(table)
    if report.ready:
        console.print("[green]The portal is ready for b24mw.[/]")
    else:
        missing = [f.check for f in report.findings if f.status == MISSING]
        console.print(f"[bold red]Not ready:[/] fix {', '.join(missing)}, then check again.")


def check_command() -> None:
    """Check the configured Bitrix24 portal before going live: the connection,
    scopes, administrator rights, quota, task card and tag reads; exits 1 when
    something is missing."""
    try:
        settings = get_settings()
        settings.require_bitrix24()  # a setup serve/worker would refuse is named first
        report = asyncio.run(run_check(settings))
    except SettingsError as exc:
        typer.echo(f"b24mw: {exc}", err=True)
        raise typer.Exit(code=2) from None
    render(report, Console())
    raise typer.Exit(code=0 if report.ready else 1)
