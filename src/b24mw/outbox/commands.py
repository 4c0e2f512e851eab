"""``b24mw worker`` and ``b24mw dlq ...``: the process and the operator's tools."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.kit.db import Database
from b24mw.kit.errors import AppError
from b24mw.kit.logging import configure_logging
from b24mw.kit.pagination import Count, page_request
from b24mw.models.ops import OutboxJob
from b24mw.outbox import dlq
from b24mw.outbox.dlq import DLQ_CURSOR
from b24mw.outbox.repository import DEAD_SUMMARY
from b24mw.settings import Settings, SettingsError, get_settings

T = TypeVar("T")

dlq_app = typer.Typer(help="Dead-letter queue: list, show, replay, discard.", no_args_is_help=True)


def _fail(message: str) -> None:
    typer.echo(f"b24mw: {message}", err=True)
    raise typer.Exit(code=2)


def _settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        _fail(str(exc))
        raise


async def run_worker(
    settings: Settings, *, worker_id: str | None, metrics_port: int | None, metrics_host: str
) -> None:
    from b24mw.outbox.worker import Worker

    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host)
    db = Database(settings)
    worker = Worker(settings, db, worker_id=worker_id)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await worker.run(stop)
    finally:
        await worker.aclose()
        await db.dispose()


def worker_command(
    worker_id: Annotated[
        str | None, typer.Option(help="lease owner name (default host:pid)")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="serve Prometheus metrics on this port")
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="interface for --metrics-port")] = "127.0.0.1",
) -> None:
    """Run the outbox dispatcher and the schedulers until SIGTERM/SIGINT."""
    settings = _settings()
    try:
        settings.require_bitrix24()
    except SettingsError as exc:
        _fail(str(exc))
    configure_logging(settings.log_level, settings.log_json)
    from b24mw.outbox.worker import UnhandledJobs

    try:
        asyncio.run(
            run_worker(
                settings, worker_id=worker_id, metrics_port=metrics_port, metrics_host=metrics_host
            )
        )
    except UnhandledJobs as exc:
        _fail(str(exc))


def _with_session(fn: Callable[[AsyncSession], Awaitable[T]], *, write: bool) -> T:
    settings = _settings()

    async def run() -> T:
        db = Database(settings)
        try:
            scope = db.unit_of_work() if write else db.reader()
            async with scope as session:
                return await fn(session)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except AppError as exc:
        _fail(exc.detail)
        raise


def _summary(job: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "id": job["id"],
        "kind": job["kind"],
        "ordering_key": job["ordering_key"],
        "attempts": job["attempts"],
        "finished_at": job["finished_at"].isoformat() if job["finished_at"] else None,
        "last_error": job["last_error"],
    }


def _full(job: OutboxJob) -> dict[str, Any]:
    out = _summary({name: getattr(job, name) for name in DEAD_SUMMARY})
    out.update(
        status=job.status,
        payload=job.payload,
        request_id=job.request_id,
        outcome_unknown=job.outcome_unknown,
        result=job.result,
        error_history=job.error_history,
        created_at=job.created_at.isoformat(),
    )
    return out


@dlq_app.command("list")
def dlq_list(
    kind: Annotated[str | None, typer.Option(help="b24.call, event.publish or onec.push")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Dead jobs, newest failure first (one JSON object a line)."""

    async def fetch(session: AsyncSession) -> tuple[list[dict[str, Any]], int | None]:
        request = page_request(DLQ_CURSOR, page_size=limit, count=Count.EXACT)
        page = await dlq.list_dead(session, request, kind=kind)
        return [_summary(job) for job in page.rows], page.total

    rows, total = _with_session(fetch, write=False)
    for row in rows:
        typer.echo(json.dumps(row, ensure_ascii=False))
    typer.echo(f"{len(rows)} of {total} dead job(s)", err=True)


@dlq_app.command("show")
def dlq_show(job_id: Annotated[int, typer.Argument(help="outbox job id")]) -> None:
    """One job with payload and error history (JSON)."""

    async def fetch(session: AsyncSession) -> dict[str, Any]:
        return _full(await dlq.get(session, job_id))

    typer.echo(json.dumps(_with_session(fetch, write=False), ensure_ascii=False, indent=2))


@dlq_app.command("replay")
def dlq_replay(
    job_ids: Annotated[list[int] | None, typer.Argument(help="job ids")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every dead job (of --kind)")] = False,
    kind: Annotated[str | None, typer.Option(help="with --all: only this kind")] = None,
    actor: Annotated[str, typer.Option(help="who replays, kept in the history")] = "cli",
) -> None:
    """Put dead jobs back in the queue as new attempts (history kept)."""
    if not job_ids and not all_:
        _fail("give job ids or --all")

    async def replay(session: AsyncSession) -> list[int]:
        if all_:
            return await dlq.replay_all(session, actor, kind=kind)
        for job_id in job_ids or []:
            await dlq.replay(session, job_id, actor)
        return list(job_ids or [])

    ids = _with_session(replay, write=True)
    typer.echo(f"replayed {len(ids)} job(s): {' '.join(map(str, ids))}")


@dlq_app.command("discard")
def dlq_discard(
    job_ids: Annotated[list[int], typer.Argument(help="job ids")],
    actor: Annotated[str, typer.Option(help="who discards, kept in the history")] = "cli",
) -> None:
    """Close dead jobs without delivery (kept on record)."""

    async def discard(session: AsyncSession) -> None:
        for job_id in job_ids:
            await dlq.discard(session, job_id, actor)

    _with_session(discard, write=True)
    typer.echo(f"discarded {len(job_ids)} job(s): {' '.join(map(str, job_ids))}")
