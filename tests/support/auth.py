"""Bearer tokens for test requests, signed with the suite's one JWT secret."""

from __future__ import annotations

import time
import uuid

import jwt

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256!"


def make_token(role: str | list[str], sub: str, *, ttl: int = 600, **claims: object) -> str:
    now = int(time.time())
    payload: dict[str, object] = {"sub": sub, "iat": now, "exp": now + ttl}
    if isinstance(role, list):
        payload["roles"] = role
    else:
        payload["role"] = role
    payload.update(claims)
    return jwt.encode(payload, JWT_SECRET, algorithm="HS256")


def auth(role: str | list[str], sub: str = "tester", *, key: str | None = None) -> dict[str, str]:
    """Headers for a request as ``role``; ``key`` adds an Idempotency-Key."""
    headers = {"Authorization": f"Bearer {make_token(role, sub)}"}
    headers["Idempotency-Key"] = key or uuid.uuid4().hex
    return headers
