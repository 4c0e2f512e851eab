"""Fixtures for the returns tests: registered couriers (see helpers.py for the rest)."""

from __future__ import annotations

import pytest

from b24mw.kit.db import Database
from b24mw.models.couriers import Courier
from tests.returns.helpers import COURIERS


@pytest.fixture
async def couriers(db: Database) -> dict[str, int | None]:
    async with db.unit_of_work() as session:
        for cid, b24_user in COURIERS.items():
            session.add(Courier(id=cid, display_name=f"Courier {cid}", b24_user_id=b24_user))
    return COURIERS
