"""Settings for tests and the database backends the suite runs on."""

from __future__ import annotations

import os
from typing import Any

from b24mw.settings import Settings
from tests.support.auth import JWT_SECRET

# ``B24MW_TEST_BACKENDS=sqlite`` runs a quick first pass on SQLite only.
BACKENDS = [b for b in os.environ.get("B24MW_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "jwt_secret": JWT_SECRET,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)
