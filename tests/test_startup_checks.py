"""``serve`` and ``worker`` refuse a Bitrix24 configuration that cannot work,
with one line naming the setting and exit code 2 (through the real CLI)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.auth import JWT_SECRET
from tests.support.processes import api_server, b24mw_env, run_cli

HOOK = "https://portal.example.bitrix24.ru/rest/1/abcdef123456/"
OAUTH = {
    "b24_auth": "oauth",
    "b24_portal_url": "https://portal.example.bitrix24.ru",
    "b24_client_id": "local.6650a1b2c3d4e5.12345678",
    "b24_client_secret": "xY7pQ2rS9tU4vW1zA3bC5dE8fG0hJ6kL",
}

CASES = [
    pytest.param({"b24_url": HOOK}, "B24MW_WEBHOOK_SECRETS", id="hmac-without-secrets"),
    pytest.param(
        {"b24_url": HOOK, "webhook_auth": "both", "webhook_app_tokens": "t1"},
        "B24MW_WEBHOOK_SECRETS",
        id="both-without-secrets",
    ),
    pytest.param(
        {"b24_url": HOOK, "webhook_auth": "token"},
        "B24MW_WEBHOOK_APP_TOKENS",
        id="token-without-tokens",
    ),
    pytest.param(
        {"b24_url": HOOK, "webhook_auth": "both", "webhook_secrets": "s1"},
        "B24MW_WEBHOOK_APP_TOKENS",
        id="both-without-tokens",
    ),
    pytest.param(
        {"webhook_secrets": "s1", "webhook_auth": "token"},
        "B24MW_WEBHOOK_APP_TOKENS",
        id="webhooks-only-token-without-tokens",
    ),
    pytest.param(
        {"b24_url": "https://portal.example.bitrix24.ru/rest/1/", "webhook_secrets": "s"},
        "B24MW_B24_URL",
        id="url-without-secret",
    ),
    pytest.param(
        {"b24_url": "portal.example.bitrix24.ru/rest/1/abc/", "webhook_secrets": "s"},
        "B24MW_B24_URL",
        id="url-without-scheme",
    ),
    pytest.param(
        {"b24_url": f"{HOOK}tasks.task.add.json", "webhook_secrets": "s"},
        "B24MW_B24_URL",
        id="url-with-a-method",
    ),
    pytest.param(
        {**OAUTH, "b24_client_id": "", "webhook_auth": "token"},
        "B24MW_B24_CLIENT_ID",
        id="oauth-without-client-id",
    ),
    pytest.param(
        {**OAUTH, "b24_client_secret": " ", "webhook_auth": "token"},
        "B24MW_B24_CLIENT_SECRET",
        id="oauth-without-client-secret",
    ),
    pytest.param(
        {k: v for k, v in OAUTH.items() if k != "b24_portal_url"} | {"webhook_auth": "token"},
        "B24MW_B24_PORTAL_URL",
        id="oauth-without-portal",
    ),
    pytest.param(
        {**OAUTH, "b24_portal_url": "https://portal.example.bitrix24.ru/rest/"},
        "B24MW_B24_PORTAL_URL",
        id="oauth-portal-with-a-path",
    ),
    pytest.param(
        {**OAUTH, "b24_url": HOOK, "webhook_auth": "token"},
        "B24MW_B24_URL",
        id="oauth-with-a-webhook-url",
    ),
    pytest.param(
        {**OAUTH, "b24_oauth_server": "oauth.bitrix.info/oauth/token/"},
        "B24MW_B24_OAUTH_SERVER",
        id="oauth-server-not-a-url",
    ),
    pytest.param({**OAUTH}, "B24MW_WEBHOOK_SECRETS", id="oauth-hmac-without-secrets"),
]


# The worker runs the same checks: one case of each kind is enough there.
WORKER_CASES = [
    case
    for case in CASES
    if case.id
    in {
        "hmac-without-secrets",
        "token-without-tokens",
        "url-without-secret",
        "oauth-without-client-id",
    }
]


@pytest.mark.parametrize(("settings", "named"), CASES)
def test_serve_refuses_a_configuration_that_cannot_work(
    settings: dict[str, str], named: str, tmp_path: Path
) -> None:
    assert_refused("serve", settings, named, tmp_path)


@pytest.mark.parametrize(("settings", "named"), WORKER_CASES)
def test_worker_refuses_a_configuration_that_cannot_work(
    settings: dict[str, str], named: str, tmp_path: Path
) -> None:
    assert_refused("worker", settings, named, tmp_path)


def assert_refused(command: str, settings: dict[str, str], named: str, tmp_path: Path) -> None:
    result = run_cli(
        command,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db",
        jwt_secret=JWT_SECRET,
        **settings,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"b24mw: {named}: "), lines[0]


def test_oauth_in_token_mode_needs_no_static_tokens(tmp_path: Path) -> None:
    # The installed application brings its application_token.
    url = f"sqlite+aiosqlite:///{tmp_path}/ok.db"
    assert run_cli("migrate", database_url=url).returncode == 0
    with api_server(database_url=url, jwt_secret=JWT_SECRET, webhook_auth="token", **OAUTH) as base:
        assert httpx.get(f"{base}/health").status_code == 200


def test_a_worker_without_bitrix24_starts(tmp_path: Path) -> None:
    # Nothing of Bitrix24 is set (an API-only trial): nothing to refuse.
    url = f"sqlite+aiosqlite:///{tmp_path}/plain.db"
    assert run_cli("migrate", database_url=url).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "b24mw", "worker"],
        env=b24mw_env(database_url=url, log_level="INFO"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        # Up means "worker_started" (its signal handlers are set by then; a
        # fixed sleep let a slow, loaded machine SIGTERM it mid-import).
        assert proc.stdout is not None
        seen = []
        for raw in proc.stdout:
            seen.append(raw.decode(errors="replace"))
            if "worker_started" in seen[-1]:
                break
        assert proc.poll() is None, "".join(seen)
        time.sleep(1)  # and it stays up
        assert proc.poll() is None, "".join(seen)
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0
