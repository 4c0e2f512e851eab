"""Read and write sessions are types mypy tells apart: handing a read session
to code that writes is refused before it runs (at run time such a write would
be lost with the read's rollback)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api

import b24mw
from b24mw.kit.db import ReadSession, WriteSession

# mypy cannot follow the editable install's import hook: point it at src/.
SRC = Path(b24mw.__file__).parent.parent

PROGRAM = """
from datetime import datetime
from b24mw.kit.db import Database, ReadSession, WriteSession
from b24mw.webhooks.auth import Verified
from b24mw.webhooks.service import ingest


async def through(db: Database, verified: Verified, now: datetime) -> None:
    async with db.{opener}() as session:
        await ingest(
            session, verified, pg_inbox=None, request_id="r", source_ip=None, now=now
        )
"""


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One cache for both runs: the second checks only its own program.
    return tmp_path_factory.mktemp("mypy_cache")


def _mypy(
    tmp_path: Path, opener: str, monkeypatch: pytest.MonkeyPatch, cache: Path
) -> tuple[str, int]:
    monkeypatch.setenv("MYPYPATH", str(SRC))
    program = tmp_path / f"through_{opener}.py"
    program.write_text(textwrap.dedent(PROGRAM.format(opener=opener)))
    out, _, status = api.run([str(program), "--no-error-summary", "--cache-dir", str(cache)])
    return out, status


def test_a_write_through_a_read_session_is_a_type_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_dir: Path
) -> None:
    out, status = _mypy(tmp_path, "reader", monkeypatch, cache_dir)
    assert status == 1
    assert '"ReadSession"' in out and '"WriteSession"' in out and "arg-type" in out


def test_a_unit_of_works_session_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_dir: Path
) -> None:
    out, status = _mypy(tmp_path, "unit_of_work", monkeypatch, cache_dir)
    assert status == 0, out


def test_the_sessions_are_distinct_at_run_time() -> None:
    assert issubclass(WriteSession, ReadSession)
    assert not issubclass(ReadSession, WriteSession)
