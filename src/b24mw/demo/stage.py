"""Where ``b24mw demo`` runs: a directory of its own, wiped at every start,
and settings that point every part into it.

The demo never reads the operator's settings (``B24MW_*`` variables, ``.env``):
a production ``B24MW_DATABASE_URL``, ``B24MW_B24_URL`` or ``B24MW_ONEC_URL``
left in the shell must not receive demo orders.  Its parts run with a clean
environment and with the demo directory as their working directory, where
there is no ``.env``.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from b24mw.settings import Settings

DEMO_DIR = Path("var") / "demo"
# Written into the directory when the demo creates it: the demo wipes only a
# directory that carries it (or an empty one).
MARKER = ".b24mw-demo"


# The demo's pace: a customer's message reaches b24mw within a second or two
# rather than the production 20 s (one open session, so the quota is no
# concern); deals reach the mirror by their event, reconciliation is a
# safety net only.  CRM sync is on by default; said here so it stays on.
DEMO_PACE = {
    "B24MW_CRM_SYNC": "true",
    "B24MW_SUPPORT_POLL_INTERVAL_S": "1",
    "B24MW_SUPPORT_POLL_ROUND_S": "0.5",
}


class DemoError(Exception):
    """The demo cannot go on: a step's expectation failed or a part died.
    The message says which and why."""


class CannotStart(DemoError):
    """Nothing was run: a port is taken, or the directory is not the demo's."""


class _OwnSettings(Settings):
    """Settings from the values given here only: neither ``B24MW_*`` variables
    nor ``.env`` (a production URL left in the shell must not leak in)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


@dataclass(frozen=True, slots=True)
class Stage:
    root: Path
    jwt_secret: str
    webhook_secret: str
    locale: str

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.root / 'b24mw.db'}"

    @property
    def events_file(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def siem_file(self) -> Path:
        return self.root / "siem.jsonl"

    @property
    def onec_file(self) -> Path:
        return self.root / "onec.jsonl"

    @property
    def parts_log(self) -> Path:
        return self.root / "parts.log"

    @property
    def emulator_state(self) -> Path:
        return self.root / "emulator.json"

    def settings(self) -> Settings:
        """The settings the parts run with (this process's copy, without ``.env``)."""
        values: dict[str, Any] = {
            "database_url": self.database_url,
            "jwt_secret": self.jwt_secret,
            "webhook_auth": "hmac",
            "webhook_secrets": self.webhook_secret,
            "locale": self.locale,
        }
        return _OwnSettings(**values)

    def environ(self, onec_url: str) -> dict[str, str]:
        """This process's environment without any ``B24MW_*``, plus the demo's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("B24MW_")}
        env.update(
            {
                "B24MW_DATABASE_URL": self.database_url,
                "B24MW_JWT_SECRET": self.jwt_secret,
                "B24MW_WEBHOOK_AUTH": "hmac",
                "B24MW_WEBHOOK_SECRETS": self.webhook_secret,
                "B24MW_EVENT_SINKS": f"file://{self.events_file}",
                "B24MW_SIEM_SINK": f"file://{self.siem_file}",
                "B24MW_ARCHIVE_URL": f"file://{self.root / 'archive'}",
                "B24MW_ONEC_URL": onec_url,
                "B24MW_LOCALE": self.locale,
                "B24MW_LOG_LEVEL": "INFO",
                **DEMO_PACE,
            }
        )
        return env


def prepare(directory: Path = DEMO_DIR, *, locale: str = "ru") -> Stage:
    """Wipe and recreate the demo directory; refuse anything the demo did not make:
    a symbolic link (its target is not ours), a file, or a directory with
    files but without the demo's marker."""
    root = Path(os.path.abspath(directory))  # not resolve(): a link must stay visible
    for link in (root.parent, root):
        if link.is_symlink():
            raise CannotStart(f"{link} is a symbolic link: the demo wipes only its own directory")
    if root.exists():
        if not root.is_dir():
            raise CannotStart(f"{root} is not a directory: move it away, the demo needs the path")
        if any(root.iterdir()) and not (root / MARKER).is_file():
            raise CannotStart(
                f"{root} holds files the demo did not create (no {MARKER}): move them away; "
                "the demo wipes that directory at every start"
            )
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / MARKER).write_text("made by `b24mw demo`; wiped at its every start\n")
    return Stage(
        root=root,
        jwt_secret=secrets.token_urlsafe(48),
        webhook_secret=secrets.token_urlsafe(24),
        locale=locale,
    )
