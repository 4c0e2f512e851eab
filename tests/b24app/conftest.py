from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from b24mw.kit.db import Database
from tests.support.local_app import LocalApp, open_local_app


@pytest.fixture
async def local_app(db: Database, tmp_path: Path) -> AsyncIterator[LocalApp]:
    app = await open_local_app(db, tmp_path)
    try:
        yield app
    finally:
        await app.close()
