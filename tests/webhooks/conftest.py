"""Webhook fixtures: the endpoint with the secrets of a signing proxy (``hook``)
or with the application token only (``token_hook``); see tests/support/webhooks.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from b24mw.kit.db import Database
from tests.support.webhooks import Hook, open_hook


@pytest.fixture
async def hook(db: Database, tmp_path: Path) -> AsyncIterator[Hook]:
    h = await open_hook(db, tmp_path)
    try:
        yield h
    finally:
        await h.close()


@pytest.fixture
async def token_hook(db: Database, tmp_path: Path) -> AsyncIterator[Hook]:
    h = await open_hook(
        db, tmp_path, webhook_auth="token", webhook_member_id="d897063e1ce7c5eb9f04b9751eef5915"
    )
    try:
        yield h
    finally:
        await h.close()
