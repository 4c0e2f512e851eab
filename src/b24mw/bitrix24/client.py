"""A thin async Bitrix24 REST client (httpx).

It never raises for what Bitrix24 or the network does: every call returns a
``Reply`` whose ``error`` (a typed ``CallError``) says whether to retry, slow
down, wait for a method's operating time, or give up.  It does no throttling
and no retrying itself: the outbox worker and the gateway own those, because
the limit is shared by every process (docs/outbound.md "Throttle").
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import httpx

from b24mw.bitrix24.errors import CallError, Outcome, classify, error_code, transport_error
from b24mw.bitrix24.query import command
from b24mw.settings import Settings

MAX_BATCH = 50
MAX_REDIRECTS = 3
_SNIPPET = 500


@dataclass(frozen=True, slots=True)
class Credentials:
    """How one request authenticates: the REST base the method is appended to
    and, for an installed application, the access token sent as ``auth``."""

    base_url: str
    token: str | None = None
    # Which token this is: a rejected call asks for one newer than it used.
    version: int = 0


class PortalAuth(Protocol):
    """Where and how calls authenticate: the seam between the client and the
    incoming webhook (``Target``) or the installed application (``b24app``)."""

    @property
    def portal(self) -> str:
        """The rate-limit key: Bitrix24 limits per portal."""
        ...

    @property
    def user_id(self) -> int | None:
        """The Bitrix24 user the calls act as, when known."""
        ...

    async def credentials(self) -> Credentials | CallError:
        """What the next call carries, or why no call can be made now."""
        ...

    async def renewed(self, rejected: Credentials) -> Credentials | CallError | None:
        """After Bitrix24 refused ``rejected`` as expired or invalid: newer
        credentials for one retry, an error saying why there are none, or
        ``None`` when these credentials cannot expire (a webhook)."""
        ...

    async def ready(self) -> bool:
        """False while no call can be authorised (not installed, refused): work
        that needs Bitrix24 waits instead of spending attempts."""
        ...


_REST_USER = re.compile(r"/rest/([0-9]+)/")


@dataclass(frozen=True, slots=True)
class Target:
    """An incoming webhook: the URL itself is the credential."""

    base_url: str

    @property
    def portal(self) -> str:
        return urlsplit(self.base_url).netloc or self.base_url

    @property
    def user_id(self) -> int | None:
        match = _REST_USER.search(self.base_url)
        return int(match.group(1)) if match else None

    async def credentials(self) -> Credentials:
        return Credentials(self.base_url)

    async def renewed(self, rejected: Credentials) -> None:
        return None

    async def ready(self) -> bool:
        return True

    @classmethod
    def from_settings(cls, settings: Settings) -> Target | None:
        """The incoming webhook of ``B24MW_B24_URL`` (``None`` in oauth mode or unset)."""
        if settings.b24_auth != "webhook" or not settings.b24_url:
            return None
        base = settings.b24_url if settings.b24_url.endswith("/") else settings.b24_url + "/"
        return cls(base_url=base)


def rate_limit_key(settings: Settings) -> str | None:
    """The portal every process draws its quota under, or ``None`` when
    Bitrix24 is not configured."""
    if settings.b24_auth == "oauth":
        return urlsplit(settings.b24_portal_url).netloc if settings.b24_portal_url else None
    target = Target.from_settings(settings)
    return target.portal if target is not None else None


@dataclass(slots=True)
class Reply:
    method: str
    params: Any
    request_id: str
    http_status: int | None = None
    body: Any = None
    result: Any = None
    error: CallError | None = None
    time: dict[str, Any] | None = None
    total: int | None = None
    next: int | None = None
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(slots=True)
class CommandResult:
    key: str
    method: str
    result: Any = None
    error: CallError | None = None
    time: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(slots=True)
class BatchReply:
    reply: Reply
    commands: dict[str, CommandResult] = field(default_factory=dict)


def _as_map(value: Any) -> dict[str, Any]:
    # PHP encodes an empty associative array as [].
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# A token Bitrix24 refused as stale: renew it once and repeat the call.
RENEWABLE = frozenset({"expired_token", "invalid_token"})


class Bitrix24Client:
    def __init__(self, settings: Settings, http: httpx.AsyncClient, target: PortalAuth) -> None:
        self.http = http
        self.target = target
        self.timeout = httpx.Timeout(settings.b24_timeout_s, connect=settings.b24_connect_timeout_s)
        # ASGI transports (tests) ignore httpx timeouts: this bound holds everywhere.
        self.deadline_s = settings.b24_timeout_s + settings.b24_connect_timeout_s

    @property
    def portal(self) -> str:
        return self.target.portal

    async def call(
        self, method: str, params: Mapping[str, Any] | None = None, *, request_id: str | None = None
    ) -> Reply:
        body = dict(params or {})
        reply = Reply(method=method, params=body, request_id=request_id or str(uuid.uuid4()))
        await self._exchange(reply, body)
        return reply

    async def batch(
        self,
        commands: Mapping[str, tuple[str, Mapping[str, Any] | None]],
        *,
        request_id: str | None = None,
    ) -> BatchReply:
        """One ``batch`` request; ``commands`` maps keys to (method, params).

        Keys must not be bare integers: PHP would turn the result map into a list.
        """
        if not 0 < len(commands) <= MAX_BATCH:
            raise ValueError(f"a batch holds 1..{MAX_BATCH} commands, got {len(commands)}")
        cmd = {key: command(method, params) for key, (method, params) in commands.items()}
        body = {"halt": 0, "cmd": cmd}
        outcome = BatchReply(
            Reply(method="batch", params=body, request_id=request_id or str(uuid.uuid4()))
        )
        await self._exchange(outcome.reply, body)
        reply = outcome.reply
        results = _as_map(reply.result)
        values = _as_map(results.get("result"))
        errors = _as_map(results.get("result_error"))
        times = _as_map(results.get("result_time"))
        for key, (method, _) in commands.items():
            item = CommandResult(key=key, method=method, time=_as_map(times.get(key)) or None)
            if reply.error is not None:
                item.error = reply.error
            elif key in errors:
                err = _as_map(errors[key])
                described = str(err.get("error_description") or "")
                code = error_code(err.get("error"))
                if not code and not described:
                    code = "ERROR_UNEXPECTED_ANSWER"  # an entry that says nothing at all
                item.error = classify(code, described, body=err)
            elif key in values:
                item.result = values[key]
            else:
                item.error = transport_error(
                    "MISSING_RESULT", "batch answered without this command", may_have_run=True
                )
            outcome.commands[key] = item
        return outcome

    async def _exchange(self, reply: Reply, body: dict[str, Any]) -> None:
        """One call; an OAuth token refused as expired or invalid is renewed
        (or another process's newer one picked up) and the call repeated once,
        so the caller sees only the outcome of the call itself."""
        credentials = await self.target.credentials()
        if isinstance(credentials, CallError):
            reply.error = credentials
            return
        await self._send(reply, body, credentials)
        if reply.error is None or reply.error.code not in RENEWABLE or not credentials.token:
            return
        renewed = await self.target.renewed(credentials)
        if isinstance(renewed, CallError):
            reply.error = renewed
        elif renewed is not None:
            spent = reply.duration_s
            await self._send(reply, body, renewed)
            reply.duration_s += spent

    async def _send(self, reply: Reply, body: dict[str, Any], credentials: Credentials) -> None:
        reply.http_status = reply.result = reply.time = reply.total = reply.next = None
        reply.body = reply.error = None
        if credentials.token:
            # Added here only: what is logged (``reply.params``) never holds the token.
            body = {**body, "auth": credentials.token}
        headers = {"X-Request-Id": reply.request_id, "Accept": "application/json"}
        url = urljoin(credentials.base_url, reply.method)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.deadline_s):
                response = await self.http.post(
                    url, json=body, headers=headers, timeout=self.timeout
                )
                hops = 0
                # httpx does not follow redirects; a renamed portal answers 302 and the
                # POST must be repeated at Location by hand (BITRIX24.md §2).
                while response.status_code in (301, 302, 303, 307, 308):
                    location = response.headers.get("location")
                    hops += 1
                    if not location or hops > MAX_REDIRECTS:
                        reply.http_status = response.status_code
                        reply.error = CallError(
                            Outcome.PERMANENT,
                            "TOO_MANY_REDIRECTS",
                            f"redirect to {location!r}",
                            response.status_code,
                            may_have_run=False,
                        )
                        return
                    url = urljoin(url, location)
                    response = await self.http.post(
                        url, json=body, headers=headers, timeout=self.timeout
                    )
        except (TimeoutError, httpx.TimeoutException) as exc:
            unsent = isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            reply.error = transport_error(
                "HTTP_TIMEOUT", f"no answer ({type(exc).__name__})", may_have_run=not unsent
            )
            return
        except httpx.TransportError as exc:
            unsent = isinstance(exc, httpx.ConnectError)
            reply.error = transport_error(
                "NETWORK_ERROR", f"{type(exc).__name__}: {exc}", may_have_run=not unsent
            )
            return
        finally:
            reply.duration_s = time.perf_counter() - started
        self._parse(reply, response)

    @staticmethod
    def _parse(reply: Reply, response: httpx.Response) -> None:
        status = response.status_code
        reply.http_status = status
        try:
            data = response.json()
        except ValueError:
            snippet = response.text[:_SNIPPET]
            reply.body = {"text": snippet}
            if 400 <= status < 500 and status not in (408, 429):
                reply.error = CallError(Outcome.PERMANENT, f"HTTP_{status}", snippet, status)
            else:
                # A proxy's HTML page (502/504) or a portal error page: the command may
                # or may not have run.
                reply.error = CallError(
                    Outcome.RETRYABLE,
                    "HTML_RESPONSE",
                    f"HTTP {status}, not JSON: {snippet[:120]}",
                    status,
                )
            return
        reply.body = data
        if isinstance(data, dict) and "error" in data and ("result" not in data or data["error"]):
            # Also an envelope whose ``error`` is empty or falsy: classified by
            # its description and HTTP status, never as a mystery to retry.
            reply.error = classify(
                error_code(data["error"]),
                str(data.get("error_description") or ""),
                http_status=status,
                body=data,
            )
            return
        if not isinstance(data, dict) or "result" not in data or status >= 300:
            reply.error = CallError(
                Outcome.RETRYABLE, "BAD_RESPONSE", f"unexpected answer, HTTP {status}", status
            )
            return
        reply.result = data["result"]
        reply.time = _as_map(data.get("time")) or None
        reply.total = _int(data.get("total"))
        reply.next = _int(data.get("next"))
