"""One registry of job kinds, hooks and schedulers, and a worker that refuses
to start on jobs it could only dead-letter."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from b24mw import registry
from b24mw.crm import closing
from b24mw.deliveries.hooks import TASK_CREATED_HOOK
from b24mw.kit.db import Database
from b24mw.models.ops import OutboxJob
from b24mw.outbox.worker import UnhandledJobs, Worker
from b24mw.settings import Settings
from tests.support.auth import JWT_SECRET
from tests.support.jobs import job, raw_job
from tests.support.processes import b24mw_env, run_cli

CALL = {"method": "task.commentitem.add", "params": {"TASKID": 1, "FIELDS": {}}}


async def start(worker: Worker) -> None:
    """``Worker.run`` as the process runs it, stopped at once if it starts."""
    stop = asyncio.Event()
    stop.set()
    await worker.run(stop)


def test_every_hook_a_domain_names_is_registered() -> None:
    assert TASK_CREATED_HOOK in registry.RESULT_HOOKS
    assert {closing.CLOSED_HOOK, closing.REREAD_HOOK} <= set(registry.RESULT_HOOKS)
    assert closing.REFUSED_HOOK in registry.FAILURE_HOOKS


def test_a_worker_gets_its_work_without_importing_the_api() -> None:
    """Built in a fresh process, a worker knows every scheduler and hook, and
    the API app (whose import used to register them) is never loaded."""
    code = (
        "import sys\n"
        "from b24mw.kit.db import Database\n"
        "from b24mw.outbox.hooks import failure_hook_names, result_hook_names\n"
        "from b24mw.outbox.worker import Worker\n"
        "from b24mw.settings import Settings\n"
        "settings = Settings(database_url='sqlite+aiosqlite:///:memory:')\n"
        "worker = Worker(settings, Database(settings))\n"
        "print(json.dumps([\n"
        "    'b24mw.app' in sys.modules, sorted(worker.schedulers),\n"
        "    sorted(result_hook_names()), sorted(failure_hook_names()),\n"
        "]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", "import json\n" + code],
        env=b24mw_env(jwt_secret=JWT_SECRET, log_level="ERROR"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    # The last line: log lines (the missing Bitrix24 URL) may come first.
    last = done.stdout.strip().splitlines()[-1]
    app_loaded, schedulers, result_hooks, failure_hooks = json.loads(last)
    assert not app_loaded
    assert {s.name for s in registry.SCHEDULERS} < set(schedulers)
    assert result_hooks == sorted(registry.RESULT_HOOKS)
    assert failure_hooks == sorted(registry.FAILURE_HOOKS)
    assert set(registry.JOB_KINDS) == {"b24.call", "event.publish", "onec.push"}


async def test_a_new_worker_runs_every_registered_scheduler(
    worker: Worker,
) -> None:
    assert {s.name for s in registry.SCHEDULERS} <= set(worker.schedulers)


async def test_a_worker_refuses_to_start_on_a_job_naming_an_unknown_hook(
    worker: Worker, db: Database
) -> None:
    unknown = await raw_job(db, "b24.call", {**CALL, "on_result": "crm.gone"})
    await raw_job(db, "b24.call", {**CALL, "on_dead": "crm.gone_too"}, status="in_flight")
    with pytest.raises(UnhandledJobs) as refused:
        await start(worker)
    message = str(refused.value)
    assert "1 pending or in-flight job(s) naming the result hook 'crm.gone'" in message
    assert "1 pending or in-flight job(s) naming the failure hook 'crm.gone_too'" in message
    assert "b24mw/registry.py" in message
    untouched: OutboxJob = await job(db, unknown)
    assert (untouched.status, untouched.attempts) == ("pending", 0)


async def test_a_worker_refuses_to_start_on_a_kind_no_lane_claims(
    outbound_settings: Settings, db: Database
) -> None:
    await raw_job(db, "onec.push", {"url": "http://onec.test/1c", "body": {}})
    await raw_job(db, "onec.push", {"url": "http://onec.test/1c", "body": {}})
    older = Worker(outbound_settings, db, job_kinds={"b24.call": "B24Lane"})
    try:
        with pytest.raises(UnhandledJobs, match="2 pending or in-flight job\\(s\\) of kind"):
            await start(older)
    finally:
        await older.aclose()


async def test_finished_jobs_with_unknown_hooks_do_not_stop_a_worker(
    worker: Worker, db: Database
) -> None:
    await raw_job(db, "b24.call", {**CALL, "on_result": "crm.gone"}, status="dead")
    await raw_job(db, "b24.call", {**CALL, "on_result": "crm.gone"}, status="done")
    await raw_job(db, "b24.call", {**CALL, "on_result": TASK_CREATED_HOOK})
    await raw_job(db, "b24.call", ["not", "an", "object"])
    await start(worker)  # no UnhandledJobs


async def test_the_worker_command_exits_with_the_reason(db: Database) -> None:
    await raw_job(db, "b24.call", {**CALL, "on_result": "crm.gone"})
    done = await asyncio.to_thread(
        run_cli,
        "worker",
        database_url=db.url,
        b24_url="http://127.0.0.1:9/rest/1/never-called/",
        webhook_secrets="registry-test-secret",
        log_level="WARNING",
    )
    assert done.returncode == 2, done.stderr
    assert "naming the result hook 'crm.gone'" in done.stderr
    assert "Traceback" not in done.stderr
