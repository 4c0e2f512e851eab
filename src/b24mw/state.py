"""The API application's state: everything a request may need that outlives
it, built once by ``create_app`` (never lazily by a dependency) and read
through ``b24mw.deps``."""

from __future__ import annotations

import httpx
from starlette.datastructures import State

from b24mw.b24app.install import Installer
from b24mw.b24app.oauth_server import TokenServer
from b24mw.b24app.runtime import AppRuntime
from b24mw.kit.auth import TokenVerifier
from b24mw.kit.db import Database
from b24mw.outbox import Outbox
from b24mw.returns.flows import ReturnChannels
from b24mw.settings import Settings
from b24mw.webhooks.runtime import WebhookRuntime, build_runtime


class AppState(State):
    """``app.state`` with its attributes typed (Starlette's ``State`` keeps
    them in a dict; these annotations are what mypy checks reads against)."""

    settings: Settings
    db: Database
    verifier: TokenVerifier
    outbox: Outbox
    # Inbound Bitrix24 events: authenticator, SIEM stream, PostgreSQL ingest pool.
    webhooks: WebhookRuntime
    # The local application: the OAuth server's HTTP client and the installer.
    b24app: AppRuntime
    # Returns' write path channels: it only reads settings, and every write uses it.
    return_channels: ReturnChannels


def build_state(settings: Settings, db: Database) -> AppState:
    state = AppState()
    state.settings = settings
    state.db = db
    state.verifier = TokenVerifier(settings)
    state.outbox = Outbox(settings)
    state.webhooks = build_runtime(settings)
    # No connection is opened before the first install or token refresh.
    http = httpx.AsyncClient(follow_redirects=False)
    state.b24app = AppRuntime(http, Installer(settings, db, TokenServer(settings, http)))
    state.return_channels = ReturnChannels.from_settings(settings, state.outbox)
    return state
