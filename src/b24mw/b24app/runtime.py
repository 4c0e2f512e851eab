"""The API process's side of the local application: one HTTP client for the
OAuth server and the installer, built on first use and closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from b24mw.b24app.install import Installer


@dataclass
class AppRuntime:
    http: httpx.AsyncClient
    installer: Installer

    async def aclose(self) -> None:
        await self.http.aclose()


def install_runtime(app: Any, runtime: AppRuntime) -> None:
    """Replace the runtime (tests route the OAuth server to the emulator this way)."""
    app.state.b24app = runtime


async def close_runtime(app: Any) -> None:
    runtime: AppRuntime | None = getattr(app.state, "b24app", None)
    if runtime is not None:
        await runtime.aclose()
