"""Who may post events (docs/webhooks.md "Authentication"): an HMAC-signing proxy, a portal's
``application_token``, or both.

The signature is checked over the raw bytes before anything parses them, and
every comparison of a secret is constant-time over all configured values (no
early exit reveals which secret, or how much of it, matched).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from b24mw.webhooks.events import EventRef, event_digest, read_event
from b24mw.webhooks.formdata import parse_body

MAX_SKEW_S = 300
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"sha256=[0-9a-fA-F]{64}")


class Reason(StrEnum):
    MISSING_HEADER = "missing_header"
    BAD_SIGNATURE = "bad_signature"
    STALE_TIMESTAMP = "stale_timestamp"
    REPLAYED = "replayed"
    BAD_TOKEN = "bad_token"
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"


class WebhookRejected(Exception):
    """Authentication failed.  The reason goes to the SIEM stream only; the
    caller always gets the same generic answer."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Verified:
    payload: dict[str, Any]
    ref: EventRef
    # ``rid:<X-Request-Id>`` for signed events (a repeat of one delivery has
    # it again); unsigned events have no delivery id, so each gets its own.
    dedupe_key: str
    # SHA-256 of what identifies the content: the signed material, or the
    # body without ``auth`` for unsigned events.
    digest: str


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, "<timestamp>.<body>")."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _matches_any(candidate: str, allowed: Sequence[str]) -> bool:
    given = candidate.encode()
    found = False
    for value in allowed:
        found |= hmac.compare_digest(given, value.encode())
    return found


class WebhookAuthenticator:
    def __init__(
        self,
        mode: str,
        *,
        secrets: Sequence[str] = (),
        app_tokens: Sequence[str] = (),
        member_id: str | None = None,
        domain: str | None = None,
        max_skew_s: int = MAX_SKEW_S,
        clock: Callable[[], float] = time.time,
        installed_tokens: Callable[[], Sequence[str]] = tuple,
    ) -> None:
        self.mode = mode
        self.secrets = list(secrets)
        self.app_tokens = list(app_tokens)
        # The installed local application's token (B24MW_B24_AUTH=oauth), read live.
        self.installed_tokens = installed_tokens
        self.member_id = member_id
        self.domain = domain
        self.max_skew_s = max_skew_s
        self.clock = clock

    @property
    def signed(self) -> bool:
        return self.mode in ("hmac", "both")

    def authenticate(
        self, headers: Mapping[str, str], body: bytes, content_type: str | None
    ) -> Verified:
        """Raise ``WebhookRejected`` or return the parsed event and its dedupe key.

        ``headers`` are the request's own (lower-case names): a generated
        request id does not count as the sender's ``X-Request-Id``.
        """
        signed_digest = None
        if self.signed:
            signed_digest = self._check_signature(headers, body)
        payload = parse_body(body, content_type)
        ref = read_event(payload) if payload is not None else None
        if payload is None or ref is None:
            raise WebhookRejected(Reason.MALFORMED)
        if self.mode in ("token", "both"):
            self._check_token(payload)
        if signed_digest is not None:
            dedupe_key = f"rid:{headers['x-request-id']}"
            return Verified(payload, ref, dedupe_key, signed_digest)
        dedupe_key = f"evt:{uuid.uuid4().hex}"
        return Verified(payload, ref, dedupe_key, event_digest(payload))

    def _check_signature(self, headers: Mapping[str, str], body: bytes) -> str:
        signature = headers.get("x-signature")
        timestamp = headers.get("x-request-timestamp")
        if not signature or not timestamp or not headers.get("x-request-id"):
            raise WebhookRejected(Reason.MISSING_HEADER)
        timestamp = timestamp.strip()
        if not _TIMESTAMP.fullmatch(timestamp):
            raise WebhookRejected(Reason.MALFORMED)
        signature = signature.strip()
        if not _SIGNATURE.fullmatch(signature):
            raise WebhookRejected(Reason.BAD_SIGNATURE)
        signature = signature.lower()
        expected = [sign(secret, timestamp, body) for secret in self.secrets]
        if not _matches_any(signature, expected):
            raise WebhookRejected(Reason.BAD_SIGNATURE)
        # Checked after the signature, so a forged request is reported as
        # forged and "stale" means a genuine request arriving too late.
        if abs(self.clock() - int(timestamp)) > self.max_skew_s:
            raise WebhookRejected(Reason.STALE_TIMESTAMP)
        return hashlib.sha256(timestamp.encode() + b"." + body).hexdigest()

    def _check_token(self, payload: dict[str, Any]) -> None:
        auth = payload.get("auth")
        if not isinstance(auth, dict):
            raise WebhookRejected(Reason.BAD_TOKEN)
        token = auth.get("application_token")
        allowed = [*self.app_tokens, *self.installed_tokens()]
        ok = isinstance(token, str) and _matches_any(token, allowed)
        for expected, key in ((self.member_id, "member_id"), (self.domain, "domain")):
            if expected is not None:
                given = auth.get(key)
                ok &= isinstance(given, str) and _matches_any(given, [expected])
        if not ok:
            raise WebhookRejected(Reason.BAD_TOKEN)
