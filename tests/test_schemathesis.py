"""schemathesis against the service's own OpenAPI, every operation, on both
databases (issue 11): a real ``b24mw serve`` on 127.0.0.1 answers generated
valid and invalid requests with valid tokens; no answer may be a 500 or off
the document (status code, content type, body schema, headers), and invalid
data must be refused.

Bounded: ``MAX_EXAMPLES`` generated cases per operation, plus the schema's
examples and boundary cases (coverage phase);
``B24MW_SCHEMATHESIS_EXAMPLES=200`` runs a deeper search locally."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

from tests.support.auth import JWT_SECRET, make_token
from tests.support.net import free_port
from tests.support.postgres import PostgresServer
from tests.support.processes import b24mw_env, run_cli, wait_until_up

MAX_EXAMPLES = int(os.environ.get("B24MW_SCHEMATHESIS_EXAMPLES", "12"))
ADMIN = f"Bearer {make_token('admin', 'schemathesis', ttl=3600)}"
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.negative_data_rejection,
]


def _seed(base: str) -> None:
    """Couriers for the generated orders and deliveries to name."""
    with httpx.Client(base_url=base, timeout=10) as client:
        for cid, user in (("c1", 101), ("c2", 102)):
            body = {"id": cid, "display_name": f"Courier {cid}", "b24_user_id": user}
            headers = {"Authorization": ADMIN, "Idempotency-Key": uuid.uuid4().hex}
            assert client.post("/api/v1/ww/couriers", json=body, headers=headers).is_success


@pytest.fixture(scope="module")
def api_base(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("schemathesis")
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{folder}/api.db"
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        name = "st_" + uuid.uuid4().hex[:8]
        server.createdb(name)
        url = server.url(name)
    assert run_cli("migrate", database_url=url).returncode == 0
    port = free_port()
    log = folder / "serve.log"
    env = b24mw_env(
        database_url=url,
        jwt_secret=JWT_SECRET,
        log_level="WARNING",
        siem_sink=f"file://{folder}/siem.jsonl",
        event_sinks=f"file://{folder}/events.jsonl",
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "b24mw", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/health", proc)
        _seed(base)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # What the server said is where a failure's traceback is.
        sys.stdout.write(log.read_text(errors="replace")[-20_000:])


def _document() -> dict[str, object]:
    """The OpenAPI document as the app generates it (the running server
    serves the same one, from the same code)."""
    from b24mw.app import create_app
    from tests.support.config import make_settings

    return create_app(make_settings("sqlite+aiosqlite:///:memory:")).openapi()


schema = schemathesis.openapi.from_dict(
    _document(),
    config=SchemathesisConfig.from_dict(
        {
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES},
            "phases": {"stateful": {"enabled": False}},
        }
    ),
)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_every_operation_answers_as_documented(case: schemathesis.Case, api_base: str) -> None:
    headers = {"Authorization": ADMIN}
    if case.meta is None or case.meta.generation.mode is GenerationMode.POSITIVE:
        # A fresh key per valid request, so each one reaches its handler;
        # invalid cases keep whatever key (or no key) was generated.
        if case.operation.method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
            headers["Idempotency-Key"] = uuid.uuid4().hex
    case.call_and_validate(base_url=api_base, headers=headers, checks=CHECKS, timeout=30)
