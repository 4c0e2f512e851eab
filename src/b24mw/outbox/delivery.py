"""Delivery of ``event.publish`` (CloudEvent sinks) and ``onec.push`` (1C) jobs.

Both are signed like our inbound webhooks (``X-Request-Timestamp``,
``X-Signature: sha256=HMAC(secret, "<ts>.<raw body>")``) and carry an
``Idempotency-Key`` so the receiver can drop the duplicates an at-least-once
queue must produce now and then.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from b24mw.integration_events.cloudevents import CONTENT_TYPE, idempotency_key
from b24mw.models.enums import JobKind
from b24mw.models.ops import OutboxJob
from b24mw.settings import Settings

try:  # POSIX: serialise appends of several worker processes to one file sink.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

_SNIPPET = 2000


@dataclass(slots=True)
class Delivery:
    system: str
    endpoint: str
    request: Any
    ok: bool = False
    retryable: bool = False
    code: str | None = None
    error: str | None = None
    http_status: int | None = None
    response: Any = None


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def _public_url(url: str) -> str:
    """The URL without credentials or query (sink URLs may carry tokens)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"text": response.text[:_SNIPPET]}


def _append_line(path: Path, line: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        # One write of the whole line with O_APPEND: lines never interleave.
        os.write(fd, line)
    finally:
        os.close(fd)


class Deliverer:
    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.http = http
        self.timeout = settings.outbound_timeout_s
        if settings.event_signing_secret is not None:
            self.secret: str | None = settings.event_signing_secret.get_secret_value()
        else:
            secrets = settings.webhook_secret_list
            self.secret = secrets[0] if secrets else None

    async def deliver(self, job: OutboxJob) -> Delivery:
        payload = job.payload if isinstance(job.payload, dict) else {}
        if job.kind == JobKind.EVENT_PUBLISH:
            return await self._publish(job, payload)
        return await self._onec(job, payload)

    def _headers(self, body: bytes, request_id: str | None, key: str) -> dict[str, str]:
        headers = {"Idempotency-Key": key}
        if request_id:
            headers["X-Request-Id"] = request_id
        if self.secret:
            timestamp = str(int(time.time()))
            headers["X-Request-Timestamp"] = timestamp
            headers["X-Signature"] = sign(self.secret, timestamp, body)
        return headers

    async def _publish(self, job: OutboxJob, payload: dict[str, Any]) -> Delivery:
        sink, event = payload.get("sink"), payload.get("event")
        if not isinstance(sink, str) or not isinstance(event, dict):
            return _poison("events", str(sink), payload, "payload needs 'sink' (URL) and 'event'")
        try:
            key = idempotency_key(event)
        except KeyError as exc:
            return _poison("events", sink, payload, f"event lacks the attribute {exc}")
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        request_id = job.request_id or event.get("requestid")
        if sink.startswith("file://"):
            delivery = Delivery("events", sink, event)
            try:
                await asyncio.to_thread(_append_line, Path(sink[len("file://") :]), body + b"\n")
            except OSError as exc:
                delivery.retryable = True
                delivery.code, delivery.error = "FILE_ERROR", f"{type(exc).__name__}: {exc}"
                return delivery
            delivery.ok = True
            return delivery
        if not sink.startswith(("http://", "https://")):
            return _poison("events", sink, payload, "sink must be http(s):// or file://")
        headers = self._headers(body, request_id, key)
        headers["Content-Type"] = CONTENT_TYPE
        return await self._post("events", sink, event, body, headers)

    async def _onec(self, job: OutboxJob, payload: dict[str, Any]) -> Delivery:
        url, body_obj, key = payload.get("url"), payload.get("body"), payload.get("idempotency_key")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return _poison("1c", str(url), payload, "payload needs an http(s) 'url'")
        if not isinstance(key, str) or not key:
            return _poison("1c", url, payload, "payload needs an 'idempotency_key'")
        body = json.dumps(body_obj, ensure_ascii=False, separators=(",", ":")).encode()
        headers = self._headers(body, job.request_id, key)
        headers["Content-Type"] = "application/json"
        return await self._post("1c", url, body_obj, body, headers)

    async def _post(
        self, system: str, url: str, request: Any, body: bytes, headers: dict[str, str]
    ) -> Delivery:
        delivery = Delivery(system, _public_url(url), request)
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.http.post(
                    url, content=body, headers=headers, timeout=self.timeout
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            delivery.retryable = True
            delivery.code, delivery.error = "HTTP_TIMEOUT", f"no answer ({type(exc).__name__})"
            return delivery
        except httpx.TransportError as exc:
            delivery.retryable = True
            delivery.code, delivery.error = "NETWORK_ERROR", f"{type(exc).__name__}: {exc}"
            return delivery
        status = response.status_code
        delivery.http_status = status
        delivery.response = _body_of(response)
        if 200 <= status < 300:
            delivery.ok = True
        else:
            # 4xx: the receiver refused this content; sending it again cannot help.
            # 408/429 are about timing, not content, and 5xx may pass later.
            delivery.retryable = status >= 500 or status in (408, 425, 429)
            delivery.code = f"HTTP_{status}"
            delivery.error = f"HTTP {status}: {json.dumps(delivery.response)[:300]}"
        return delivery


def _poison(system: str, endpoint: str, request: Any, why: str) -> Delivery:
    return Delivery(system, endpoint, request, code="INVALID_PAYLOAD", error=f"invalid job: {why}")
