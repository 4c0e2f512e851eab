"""One emulated portal: its data, limits, faults, call log and event queue, and the
path every REST call takes through them (credentials, bucket, faults, method, accounting).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from typing import Any

from b24mw.emulator.config import OAUTH_SERVER_ENDPOINT, EmulatorConfig
from b24mw.emulator.limits.bucket import LeakyBucket, OperatingTracker
from b24mw.emulator.limits.faults import Fault, FaultSet
from b24mw.emulator.outgoing.dispatch import EventDispatcher, EventSettings
from b24mw.emulator.rest import scopes
from b24mw.emulator.rest.batch import run_batch
from b24mw.emulator.rest.crm.service import CrmService
from b24mw.emulator.rest.im.chats import TaskChats
from b24mw.emulator.rest.methodkit import Args, MethodContext, MethodResult
from b24mw.emulator.rest.methods import METHODS
from b24mw.emulator.rest.oauth import CALLER, LocalApp
from b24mw.emulator.rest.openlines import OpenLines
from b24mw.emulator.rest.tasks.service import TaskService
from b24mw.emulator.rest.tasks.views import TaskView
from b24mw.emulator.state.calls import CallLog
from b24mw.emulator.state.settings import RuntimeSettings
from b24mw.emulator.state.store import Store
from b24mw.emulator.wire import errors
from b24mw.emulator.wire.dates import iso, portal_tz
from b24mw.emulator.wire.errors import B24Error
from b24mw.emulator.wire.replies import (
    BAD_GATEWAY_HTML,
    GATEWAY_TIMEOUT_HTML,
    AbortRequest,
    Outcome,
    Reply,
    error_reply,
)

log = logging.getLogger("b24mw.emulator")


class Portal:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = config.clock
        self.tz = portal_tz(config.utc_offset_minutes)
        self.settings = RuntimeSettings.from_config(config)
        self.store = Store.load(config.state_file) if config.state_file else Store()
        self.bucket = LeakyBucket(config.rps, config.burst)
        self.operating = OperatingTracker(config.operating_limit_s, config.operating_window_s)
        self.faults = FaultSet()
        self.calls = CallLog(config.max_calls)
        self.app = LocalApp(
            config.oauth_client_id,
            config.oauth_client_secret,
            config.access_token_lifetime_s,
            self.clock,
        )
        self.app_methods = self.app.methods()
        self.events = EventDispatcher(
            config, self._event_settings, self.clock, app_targets=self._app_targets
        )
        self.chats = TaskChats(
            self.store,
            self.events,
            self.clock,
            self.tz,
            card=lambda: self.settings.task_card,
            # The webhook user (and the application acting as it), when an administrator.
            admins=lambda: {config.rest_user} if self.settings.rest_user_admin else set(),
            site=config.client_endpoint.removesuffix("/rest/"),
        )
        self.service = TaskService(
            self.store, self.events, self.clock, self.tz, self.chats, is_admin=self.is_admin
        )
        # Operators answer as the first person of the person API.
        self.openlines = OpenLines(
            self.store, self.events, self.clock, self.tz, operator_id=config.rest_user + 1
        )
        self.view = TaskView(self.store, self.tz, chat_id=self.chats.chat_id)
        if self.chats.new_card:
            self.chats.open_all()
        self.crm = CrmService(self.store, self.events, self.clock, lambda: self.settings)
        self.ctx = MethodContext(
            self.service,
            self.view,
            self.store,
            self.tz,
            config.rest_user,
            self.crm,
            granted_scope=self.granted_scope,
            options=self.settings,
        )
        # Writes applied after their answer was lost (faults with apply_delay_s).
        self._late: set[asyncio.Task[None]] = set()

    def is_admin(self, user_id: int) -> bool:
        """Only the REST user may be a portal administrator here (a setting);
        the people of the person API are ordinary employees."""
        return user_id == self.config.rest_user and self.settings.rest_user_admin

    def granted_scope(self) -> str:
        """The scopes of whoever is calling: the application's, or the webhook's."""
        return self.app.scope if CALLER.get() == "app" else self.settings.webhook_scope

    def _event_settings(self) -> EventSettings:
        s = self.settings
        return EventSettings(s.handler_url, s.events_enabled, s.sign_secret, s.application_token)

    def _app_targets(self, event: str) -> list[tuple[str, dict[str, Any]]]:
        """The installed application's handlers for ``event``, with the auth block
        Bitrix24 sends an application (tokens of the acting user, not for uninstall)."""
        app = self.app
        if not app.installed:
            return []
        targets = []
        for url in app.targets(event):
            auth: dict[str, Any] = {
                "domain": self.config.portal_domain,
                "client_endpoint": self.config.client_endpoint,
                "server_endpoint": OAUTH_SERVER_ENDPOINT,
                "member_id": self.config.portal_member_id,
                "application_token": app.application_token,
            }
            if event != "ONAPPUNINSTALL":
                auth.update(
                    access_token=app.event_token(),
                    expires_in=str(int(app.access_token_lifetime_s)),
                    scope=app.scope,
                    status="L",
                )
            targets.append((url, auth))
        return targets

    def apply_settings(self, changes: dict[str, Any]) -> None:
        self.settings.update(changes)
        self.bucket.configure(self.settings.rps, self.settings.burst)
        self.operating.limit_s = self.settings.operating_limit_s
        if self.chats.new_card:
            self.chats.open_all()  # switched to the new card: every task has its chat
            self.persist()

    def persist(self) -> None:
        """Write the state file if something changed since the last write.

        A write that fails (disk full...) is logged and tried again after the
        next change; it never fails the request that made the change."""
        if self.config.state_file is None or not self.store.dirty:
            return
        try:
            self.store.save(self.config.state_file)
        except (OSError, ValueError):
            log.exception("emulator state not saved to %s", self.config.state_file)

    def reset(self) -> None:
        for task in self._late:
            task.cancel()  # a late write must not land in the fresh portal
        self.store.clear()
        self.calls.clear()
        self.events.clear()
        self.faults.clear()
        self.bucket.reset()
        self.operating.reset()
        self.persist()

    def credentials_ok(self, user: str, secret: str) -> bool:
        return user == str(self.config.rest_user) and hmac.compare_digest(
            secret.encode(), self.config.rest_secret.encode()
        )

    def time_block(self, method: str, start: float, processing: float) -> dict[str, Any]:
        finish = self.clock()
        return {
            "start": start,
            "finish": finish,
            "duration": max(0.0, finish - start),
            "processing": processing,
            "date_start": iso(start, self.tz),
            "date_finish": iso(finish, self.tz),
            "operating": self.operating.operating(method, finish),
            "operating_reset_at": int(self.operating.reset_at(method, finish)),
        }

    def execute(self, method: str, args: Args, start: float) -> Outcome:
        """Run one method (top level or inside a batch) and charge its operating time."""
        handler = METHODS.get(method) or self.app_methods.get(method)
        if handler is None:
            return Outcome(None, errors.method_not_found(), None)
        refused = scopes.refusal(method, self.granted_scope())
        if refused is not None:
            return Outcome(None, refused, None)
        if self.operating.blocked_until(method, start) is not None:
            # The documented 429 body: code and description only; the client
            # takes the reset from the last successful response (limits.md).
            return Outcome(None, errors.operation_time_limit(), None)
        began = time.perf_counter()
        result: MethodResult | None = None
        error: B24Error | None = None
        try:
            result = handler(self.ctx, args)
        except B24Error as exc:
            error = exc
        except Exception:
            log.exception("emulator method %s failed", method)
            error = errors.internal_server_error()
        processing = time.perf_counter() - began
        self.operating.add(method, start, processing + self.settings.cost_for(method))
        return Outcome(result, error, self.time_block(method, start, processing))

    def apply_late(self, method: str, args: Args, delay_s: float) -> None:
        """Run ``method`` ``delay_s`` from now, as the portal finishing a request
        whose answer the client never got (its changes and events happen then)."""

        async def run() -> None:
            await asyncio.sleep(delay_s)
            self.execute(method, args, self.clock())
            self.persist()

        task = asyncio.get_running_loop().create_task(run(), name=f"b24-late-{method}")
        self._late.add(task)
        task.add_done_callback(self._late.discard)

    @property
    def late_pending(self) -> int:
        return len(self._late)

    async def join_late(self) -> None:
        """Wait until every late write has been applied."""
        while self._late:
            await asyncio.gather(*list(self._late), return_exceptions=True)

    def fault_error(self, fault: Fault, now: float) -> B24Error | None:
        """The Bitrix24 error an injected fault stands for (None for latency and aborts)."""
        if fault.kind == "http_500":
            return errors.internal_server_error()
        if fault.kind == "query_limit":
            return errors.query_limit_exceeded()
        if fault.kind == "no_code":
            # As recorded from live portals: an error whose code is empty.
            return B24Error("", fault.description, 400)
        if fault.kind == "operation_limit":
            return errors.operation_time_limit()
        return None

    async def apply_fault(self, fault: Fault, now: float) -> Reply | None:
        if fault.kind == "latency":
            await asyncio.sleep(fault.latency_s)
            return None
        if fault.kind == "html_502":
            return Reply(502, html=BAD_GATEWAY_HTML)
        if fault.kind == "hang":
            await asyncio.sleep(fault.latency_s)
            return Reply(504, html=GATEWAY_TIMEOUT_HTML)
        error = self.fault_error(fault, now)
        return error_reply(error) if error is not None else None

    async def handle(
        self,
        method: str,
        credentials: tuple[str, str] | str | None,
        args: Args | None,
        headers: dict[str, str],
        parse_error: B24Error | None = None,
    ) -> Reply:
        """``credentials``: the webhook's (user, secret), an OAuth access token, or none."""
        start = self.clock()
        call = self.calls.open(method, args, start, headers)
        try:
            reply = await self._handle(call, method, credentials, args, parse_error, start)
        except Exception:
            log.exception("emulator call %s failed", method)
            reply = error_reply(errors.internal_server_error())
        call["status"] = reply.status
        call["error"] = reply.error
        self.persist()
        return reply

    async def _handle(
        self,
        call: dict[str, Any],
        method: str,
        credentials: tuple[str, str] | str | None,
        args: Args | None,
        parse_error: B24Error | None,
        start: float,
    ) -> Reply:
        if not credentials:
            return error_reply(errors.no_auth_found())
        if isinstance(credentials, str):
            refused = self.app.check(credentials)
            if refused is not None:
                return error_reply(refused)
            CALLER.set("app")
        elif not self.credentials_ok(*credentials):
            return error_reply(errors.invalid_credentials())
        else:
            CALLER.set("webhook")
        if parse_error is not None or args is None:
            return error_reply(parse_error or errors.invalid_request("Bad request"))
        # The bucket rejects before anything runs, so a 503 is always safe to retry.
        if not self.bucket.try_acquire(start):
            return error_reply(errors.query_limit_exceeded())
        fault = self.faults.take(method, start, top_level=True)
        if fault is not None and fault.phase == "before":
            replaced = await self.apply_fault(fault, start)
            if replaced is not None:
                return replaced
        if method == "batch":
            try:
                reply = await run_batch(self, call, args, start)
            except AbortRequest as abort:
                replaced = await self.apply_fault(abort.fault, start)
                return replaced or Reply(502, html=BAD_GATEWAY_HTML)
        elif fault is not None and fault.apply_delay_s is not None:
            self.apply_late(method, args, fault.apply_delay_s)
            return await self.apply_fault(fault, start) or Reply(502, html=BAD_GATEWAY_HTML)
        else:
            reply = self._single(method, args, start)
        if fault is not None and fault.phase == "after":
            replaced = await self.apply_fault(fault, start)
            if replaced is not None:
                return replaced
        return reply

    def _single(self, method: str, args: Args, start: float) -> Reply:
        outcome = self.execute(method, args, start)
        if outcome.error is not None or outcome.result is None:
            return error_reply(outcome.error or errors.internal_server_error())
        payload: dict[str, Any] = {"result": outcome.result.result}
        if outcome.result.next is not None:
            payload["next"] = outcome.result.next
        if outcome.result.total is not None:
            payload["total"] = outcome.result.total
        payload["time"] = outcome.time
        return Reply(200, payload)

    async def aclose(self) -> None:
        for task in list(self._late):
            task.cancel()
        await asyncio.gather(*list(self._late), return_exceptions=True)
        self.persist()
        await self.events.aclose()
