"""JWT bearer authentication and role checks (README "HTTP conventions").

401 means "we do not know who you are" (missing, malformed, expired or
wrongly signed token); 403 means "we know, and you may not".
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt
from fastapi import Request

from b24mw.kit.errors import Forbidden, Unauthorized
from b24mw.settings import Settings, SettingsError


class Role(StrEnum):
    ONEC = "1c"
    COURIER = "courier"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Actor:
    sub: str
    roles: frozenset[Role]

    def has(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def courier_scoped(self) -> bool:
        """A courier without a wider role sees and changes only their own records."""
        return Role.COURIER in self.roles and not self.has(Role.ADMIN, Role.ONEC)

    def owns(self, courier_id: str | None) -> bool:
        return not self.courier_scoped or courier_id == self.sub


VERIFIED_CACHE_SIZE = 10_000
# The longest actor id the tables record (``task_events.actor_id``); a
# courier's ``sub`` is their courier id, at most 64 characters too.
MAX_SUBJECT_LENGTH = 64


def subject_problem(sub: object) -> str | None:
    """Why ``sub`` cannot name an actor, or None.  Rows are attributed to it,
    so it must be visible text a column can hold: not blank, no surrounding
    whitespace, no control characters (NUL included), valid Unicode."""
    if not isinstance(sub, str) or not sub.strip():
        return "is blank"
    if sub != sub.strip():
        return "has surrounding whitespace"
    if len(sub) > MAX_SUBJECT_LENGTH:
        return f"is longer than {MAX_SUBJECT_LENGTH} characters"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in sub):
        return "contains control characters"
    try:
        sub.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode"
    return None


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        if settings.jwt_public_key is not None:
            self.key: str = settings.jwt_public_key.get_secret_value()
            self.algorithms = ["RS256"]
        elif settings.jwt_secret is not None:
            self.key = settings.jwt_secret.get_secret_value()
            self.algorithms = ["HS256"]
        else:
            raise SettingsError("B24MW_JWT_SECRET: missing")
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.leeway = settings.jwt_leeway_s
        # token -> (actor, not valid before, not valid after), for tokens that
        # verified: a client sends the same token with every request, and the
        # signature check is the dearest part of a small write.  Bounded, and
        # the time window is still checked on every use.
        self._verified: dict[str, tuple[Actor, float, float]] = {}

    def verify(self, token: str) -> Actor:
        known = self._verified.get(token)
        if known is not None:
            actor, not_before, not_after = known
            if not_before <= time.time() < not_after:
                return actor
            del self._verified[token]
        return self._verify_signed(token)

    def _verify_signed(self, token: str) -> Actor:
        options: dict[str, Any] = {"require": ["exp", "sub"]}
        if self.audience is None:
            options["verify_aud"] = False
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=self.algorithms,
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options=options,  # type: ignore[arg-type]
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The token has expired.") from None
        except jwt.PyJWTError:
            raise Unauthorized("The token is missing, malformed or not valid here.") from None
        if subject_problem(claims["sub"]) is not None:
            raise Unauthorized("The token's subject (sub) is not a usable actor id.")
        actor = Actor(sub=claims["sub"], roles=_roles_from(claims))
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        not_before = float(claims.get("nbf", 0)) - self.leeway
        self._verified[token] = (actor, not_before, float(claims["exp"]) + self.leeway)
        return actor

    def try_actor(self, authorization: str | None) -> Actor | None:
        """The verified actor or None; used where a bad token must not fail yet."""
        token = bearer_token(authorization)
        if token is None:
            return None
        try:
            return self.verify(token)
        except Unauthorized:
            return None


def _roles_from(claims: dict[str, Any]) -> frozenset[Role]:
    raw: list[Any] = []
    if isinstance(claims.get("role"), str):
        raw.append(claims["role"])
    if isinstance(claims.get("roles"), list):
        raw.extend(claims["roles"])
    roles = set()
    for value in raw:
        try:
            roles.add(Role(str(value)))
        except ValueError:
            continue
    return frozenset(roles)


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def mint_token(settings: Settings, *, role: str, sub: str, ttl_s: int) -> str:
    """A development/operations token signed with the HS256 secret."""
    if settings.jwt_secret is None:
        raise SettingsError("B24MW_JWT_SECRET: needed to mint tokens (RS256 keys are public only)")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "role": role, "iat": now, "exp": now + ttl_s}
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


def authenticate(request: Request) -> Actor:
    verifier: TokenVerifier = request.app.state.verifier
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized("A bearer token is required.")
    actor = verifier.verify(token)
    request.state.actor = actor
    return actor


def require(*roles: Role) -> Callable[[Request], Awaitable[Actor]]:
    """Dependency factory: an authenticated actor holding one of ``roles``."""
    allowed = frozenset(roles)

    # async although it never awaits: FastAPI runs a plain ``def`` dependency
    # in a worker thread, a hop that costs more than the check itself.
    async def dependency(request: Request) -> Actor:
        actor = authenticate(request)
        if not actor.roles.intersection(allowed):
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"This operation needs one of the roles: {names}.")
        return actor

    dependency.__name__ = "require_" + "_".join(sorted(r.value for r in allowed))
    return dependency


def parse_ttl(text: str) -> int:
    """``15m``, ``2h``, ``30s``, ``1d`` or plain seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    if text and text[-1] in units:
        value, unit = text[:-1], units[text[-1]]
    else:
        value, unit = text, 1
    if not value.isdigit() or int(value) <= 0:
        raise ValueError(f"bad TTL {text!r}: use e.g. 30s, 15m, 2h, 1d")
    return int(value) * unit


def roles_of(values: Iterable[str]) -> frozenset[Role]:
    return frozenset(Role(v) for v in values)
