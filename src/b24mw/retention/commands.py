"""``b24mw archive run|list|verify|restore``.

Reports are JSON on stdout; progress bars and log lines go to stderr.  Exit
codes: 0 done, 1 a part failed verification or another run holds the lease,
2 bad arguments or settings.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any, NoReturn, TypeVar

import structlog
import typer

from b24mw.kit.db import Database
from b24mw.kit.logging import configure_logging
from b24mw.models.base import utcnow
from b24mw.retention.cpu import lower_priority
from b24mw.retention.flows import ARCHIVED_TABLES, boundary_for, dry_run
from b24mw.retention.lease import RunLease
from b24mw.retention.progress import ConsoleProgress
from b24mw.retention.repository import RetentionRepository
from b24mw.retention.restore import RetentionBusy, restore, verify
from b24mw.retention.runner import RunOptions, run_retention
from b24mw.retention.storage import ArchiveStorage, ArchiveUrlError, open_storage
from b24mw.settings import Settings, SettingsError, get_settings

T = TypeVar("T")
TABLES = ", ".join(ARCHIVED_TABLES)

archive_app = typer.Typer(
    help="Task-history archive (docs/retention.md): run, list, verify, restore.",
    no_args_is_help=True,
)

TableOpt = Annotated[str | None, typer.Option("--table", help=f"one of: {TABLES}")]
FromOpt = Annotated[str | None, typer.Option("--from", help="first UTC day, YYYY-MM-DD")]
ToOpt = Annotated[str | None, typer.Option("--to", help="last UTC day, YYYY-MM-DD (inclusive)")]


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"b24mw: {message}", err=True)
    raise typer.Exit(code=code)


def _emit(doc: Any) -> None:
    typer.echo(json.dumps(doc, ensure_ascii=False, indent=2, default=str))


def _holder() -> str:
    return f"cli:{socket.gethostname()}:{os.getpid()}"


def parse_days(value: str) -> int:
    """``90d`` or ``90`` -> 90."""
    match = re.fullmatch(r"\s*(\d+)\s*d?\s*", value)
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"--older-than: {value!r} is not a number of days such as 90d")
    return int(match.group(1))


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"{option}: {value!r} is not a date (YYYY-MM-DD)")


def _table(value: str | None) -> str | None:
    if value is not None and value not in ARCHIVED_TABLES:
        _fail(f"--table: must be one of {TABLES}")
    return value


def _prepare() -> tuple[Settings, ArchiveStorage]:
    try:
        settings = get_settings()
        storage = open_storage(settings)
    except (SettingsError, ArchiveUrlError) as exc:
        _fail(str(exc))
    configure_logging(settings.log_level, settings.log_json)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    return settings, storage


def _run(settings: Settings, fn: Callable[[Database], Awaitable[T]]) -> T:
    async def main() -> T:
        db = Database(settings)
        try:
            return await fn(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


@archive_app.command("run")
def run_command(
    dry_run_: Annotated[
        bool, typer.Option("--dry-run", help="only count what would be archived")
    ] = False,
    older_than: Annotated[
        str | None, typer.Option(help="archive rows older than this, e.g. 90d")
    ] = None,
    table: TableOpt = None,
) -> None:
    """Archive history older than B24MW_RETENTION_DAYS (verified, then deleted)
    and purge expired rows; the same run the worker makes daily."""
    settings, storage = _prepare()
    try:
        days = parse_days(older_than) if older_than else settings.retention_days
    except ValueError as exc:
        _fail(str(exc))
    tables = [_table(table)] if table else list(ARCHIVED_TABLES)
    boundary = boundary_for(utcnow(), days)
    if dry_run_:
        plan = _run(settings, lambda db: dry_run(db, [t for t in tables if t], boundary))
        _emit({"dry_run": True, "archived_before": boundary.isoformat(), "days": plan})
        return
    # A batch job: the API and the worker on this machine go first.
    lower_priority(settings.archive_nice, whole_process=True)
    options = RunOptions(
        holder=_holder(), older_than_days=days, tables=[t for t in tables if t], purge=not table
    )
    report = _run(
        settings,
        lambda db: run_retention(
            settings, db, options, storage=storage, progress=ConsoleProgress()
        ),
    )
    if report is None:
        _fail("another archive run or restore holds the lease; try again later", code=1)
    _emit(report.as_dict())


@archive_app.command("list")
def list_command(table: TableOpt = None, from_: FromOpt = None, to: ToOpt = None) -> None:
    """Archive parts recorded in archive_manifest, and the last run's outcome."""
    settings, _ = _prepare()
    name, first, last = _table(table), _day(from_, "--from"), _day(to, "--to")

    async def fetch(db: Database) -> dict[str, Any]:
        async with db.reader() as session:
            repo = RetentionRepository(session)
            parts = await repo.manifests(table=name, first_day=first, last_day=last)
            job = await repo.job("retention")
        return {
            "parts": [
                {
                    "table": m.table_name,
                    "day": m.day.isoformat(),
                    "part": m.part,
                    "rows": m.row_count,
                    "ids": [m.first_id, m.last_id],
                    "bytes": m.size_bytes,
                    "status": m.status,
                    "object": f"{settings.archive_url}/{m.object_key}",
                    "verified_at": m.verified_at,
                }
                for m in parts
            ],
            "last_run": {
                "started_at": job.last_started_at if job else None,
                "success_at": job.last_success_at if job else None,
                "failure_at": job.last_failure_at if job else None,
                "error": job.last_error if job else None,
                "running": bool(job and job.holder),
            },
        }

    _emit(_run(settings, fetch))


@archive_app.command("verify")
def verify_command(table: TableOpt = None, from_: FromOpt = None, to: ToOpt = None) -> None:
    """Re-read archive parts and check them against their manifests (exit 1 on a failure)."""
    settings, storage = _prepare()
    name, first, last = _table(table), _day(from_, "--from"), _day(to, "--to")
    report = _run(
        settings,
        lambda db: verify(db, storage, table_name=name, first_day=first, last_day=last),
    )
    _emit(report.as_dict())
    if not report.ok:
        raise typer.Exit(code=1)


@archive_app.command("restore")
def restore_command(
    table: Annotated[str, typer.Option("--table", help=f"one of: {TABLES}")],
    from_: Annotated[str, typer.Option("--from", help="first UTC day, YYYY-MM-DD")],
    to: Annotated[str, typer.Option("--to", help="last UTC day, YYYY-MM-DD (inclusive)")],
) -> None:
    """Write archived rows of a day range back (ids already present are skipped)."""
    settings, storage = _prepare()
    name = _table(table)
    first, last = _day(from_, "--from"), _day(to, "--to")
    assert name is not None and first is not None and last is not None
    if last < first:
        _fail("--to is before --from")

    lower_priority(settings.archive_nice, whole_process=True)

    async def work(db: Database) -> dict[str, Any]:
        lease = RunLease(db, _holder(), settings.archive_lease_s)
        report = await restore(db, storage, lease, name, first, last, ConsoleProgress())
        return report.as_dict()

    try:
        doc = _run(settings, work)
    except RetentionBusy as exc:
        _fail(str(exc), code=1)
    _emit(doc)
    if doc["failed"]:
        raise typer.Exit(code=1)
