"""The API process's side of the local application: one HTTP client for the
OAuth server and the installer, built on first use and closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from b24mw.b24app.install import Installer
from b24mw.b24app.oauth_server import TokenServer
from b24mw.kit.db import Database


@dataclass
class AppRuntime:
    http: httpx.AsyncClient
    installer: Installer

    async def aclose(self) -> None:
        await self.http.aclose()


def runtime_of(app: Any, db: Database) -> AppRuntime:
    runtime: AppRuntime | None = getattr(app.state, "b24app", None)
    if runtime is None:
        settings = app.state.settings
        http = httpx.AsyncClient(follow_redirects=False)
        runtime = AppRuntime(http, Installer(settings, db, TokenServer(settings, http)))
        app.state.b24app = runtime
    return runtime


def install_runtime(app: Any, runtime: AppRuntime) -> None:
    """Replace the runtime (tests route the OAuth server to the emulator this way)."""
    app.state.b24app = runtime


async def close_runtime(app: Any) -> None:
    runtime: AppRuntime | None = getattr(app.state, "b24app", None)
    if runtime is not None:
        await runtime.aclose()
