from __future__ import annotations

import pytest

from b24mw.kit.db import Database
from tests.support.orders import add_couriers


@pytest.fixture
async def couriers(db: Database) -> dict[str, int | None]:
    return await add_couriers(db)
