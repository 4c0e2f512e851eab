"""Every log line is one JSON object, also from libraries that log through the
standard library (asyncpg, SQLAlchemy's pool, uvicorn) — issue 11."""

from __future__ import annotations

import json
import logging

import pytest

from b24mw.kit.logging import configure_logging


def test_stdlib_records_are_rendered_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json_output=True)
    capsys.readouterr()
    logging.getLogger("asyncpg.pool").warning("connection %s lost", "#3")
    try:
        raise ConnectionResetError("peer went away")
    except ConnectionResetError:
        logging.getLogger("sqlalchemy.pool.impl.AsyncAdaptedQueuePool").error(
            "Exception during reset or similar", exc_info=True
        )
    logging.getLogger("noisy.library").debug("not at INFO")
    out = capsys.readouterr()
    lines = [json.loads(line) for line in out.out.splitlines()]
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("asyncpg.pool", "warning"),
        ("sqlalchemy.pool.impl.AsyncAdaptedQueuePool", "error"),
    ]
    assert lines[0]["event"] == "connection #3 lost"
    assert "ConnectionResetError: peer went away" in lines[1]["exception"]
    assert out.err == ""


def test_configuring_twice_keeps_one_handler(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json_output=True)
    configure_logging("WARNING", json_output=True)
    capsys.readouterr()
    logging.getLogger("asyncpg").warning("once")
    logging.getLogger("asyncpg").info("filtered")
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_phones_in_library_records_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json_output=True)
    capsys.readouterr()
    logging.getLogger("uvicorn.error").warning("client +7 912 345-67-89 left")
    (line,) = capsys.readouterr().out.splitlines()
    assert "345-67" not in line and json.loads(line)["logger"] == "uvicorn.error"
