"""Bearer JWT: 401 for who-are-you problems, 403 for may-not."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from b24mw.app import create_app
from b24mw.kit.db import Database
from tests.support.auth import JWT_SECRET, make_token
from tests.support.config import make_settings
from tests.support.problems import assert_problem

URL = "/api/v1/ww/couriers"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic YWxhZGRpbjpvcGVu"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-jwt"},
    ],
)
async def test_missing_or_malformed_token_is_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get(URL, headers=headers)
    assert_problem(response, 401, "auth.invalid_token")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_wrong_signature_is_401(client: httpx.AsyncClient) -> None:
    token = jwt.encode(
        {"sub": "a", "role": "admin", "exp": int(time.time()) + 60}, "x" * 40, "HS256"
    )
    assert_problem(await client.get(URL, headers=bearer(token)), 401)


async def test_token_without_exp_is_401(client: httpx.AsyncClient) -> None:
    token = jwt.encode({"sub": "a", "role": "admin"}, JWT_SECRET, "HS256")
    assert_problem(await client.get(URL, headers=bearer(token)), 401)


async def test_expired_token_is_401_but_30s_skew_is_tolerated(client: httpx.AsyncClient) -> None:
    expired = make_token("admin", "a", ttl=-60)
    assert_problem(await client.get(URL, headers=bearer(expired)), 401)
    within_skew = make_token("admin", "a", ttl=-10)
    assert (await client.get(URL, headers=bearer(within_skew))).status_code == 200


async def test_alg_none_is_refused(client: httpx.AsyncClient) -> None:
    token = jwt.encode({"sub": "a", "role": "admin", "exp": int(time.time()) + 60}, "", "none")
    assert_problem(await client.get(URL, headers=bearer(token)), 401)


async def test_unknown_role_is_403(client: httpx.AsyncClient) -> None:
    token = make_token("janitor", "a")
    assert_problem(await client.get(URL, headers=bearer(token)), 403, "auth.forbidden")


async def test_roles_list_claim_is_accepted(client: httpx.AsyncClient) -> None:
    token = make_token(["courier", "admin"], "a")
    assert (await client.get(f"{URL}/nobody", headers=bearer(token))).status_code == 404


async def test_issuer_and_audience_checked_when_configured(db: Database) -> None:
    settings = make_settings(db.url, jwt_issuer="https://idp", jwt_audience="b24mw")
    app = create_app(settings, database=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        good = make_token("admin", "a", iss="https://idp", aud="b24mw")
        assert (await c.get(URL, headers=bearer(good))).status_code == 200
        for bad in (
            make_token("admin", "a", iss="https://evil", aud="b24mw"),
            make_token("admin", "a", iss="https://idp", aud="other"),
            make_token("admin", "a"),
        ):
            assert (await c.get(URL, headers=bearer(bad))).status_code == 401


async def test_rs256_public_key(db: Database) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings = make_settings(db.url, jwt_secret=None, jwt_public_key=public_pem.decode())
    app = create_app(settings, database=db)
    claims = {"sub": "a", "role": "admin", "exp": int(time.time()) + 60}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        good = jwt.encode(claims, private, "RS256")
        assert (await c.get(URL, headers=bearer(good))).status_code == 200
        # An HS256 token signed with the public key text must not pass (alg confusion).
        forged = jwt.encode(claims, JWT_SECRET, "HS256")
        assert (await c.get(URL, headers=bearer(forged))).status_code == 401


async def test_a_remembered_token_still_expires_and_waits_for_nbf(db: Database) -> None:
    # Verified tokens are remembered (the signature check is the dear part);
    # that must never stretch a token's validity window.
    settings = make_settings(db.url, jwt_leeway_s=0)
    app = create_app(settings, database=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        now = time.time()
        # Long enough for two requests on a busy machine, short enough to wait out.
        short = make_token("admin", "a", ttl=0, exp=now + 2.5)
        assert (await c.get(URL, headers=bearer(short))).status_code == 200
        assert (await c.get(URL, headers=bearer(short))).status_code == 200
        await asyncio.sleep(max(0.0, now + 2.6 - time.time()))
        expired = await c.get(URL, headers=bearer(short))
        assert_problem(expired, 401)
        assert "expired" in expired.json()["detail"]

        early = make_token("admin", "a", nbf=time.time() + 60)
        assert_problem(await c.get(URL, headers=bearer(early)), 401)


@pytest.mark.parametrize(
    "sub",
    ["", " ", "\t\n", " alice", "alice ", "a\x00b", "a\x7fb", "x" * 65, "\ud800"],
    ids=["empty", "space", "whitespace", "leading", "trailing", "nul", "del", "65", "surrogate"],
)
async def test_unusable_subject_is_401_everywhere(client: httpx.AsyncClient, sub: str) -> None:
    token = jwt.encode(
        {"sub": sub, "role": "admin", "exp": int(time.time()) + 600}, JWT_SECRET, "HS256"
    )
    read = await client.get(URL, headers=bearer(token))
    assert_problem(read, 401, "auth.invalid_token")
    write = await client.post(
        URL,
        headers=bearer(token) | {"Idempotency-Key": "k"},
        json={"id": "c-1", "display_name": "A"},
    )
    assert_problem(write, 401, "auth.invalid_token")
    listing = await client.get(URL, headers=bearer(make_token("admin", "alice")))
    assert listing.json()["total_items"] == 0


async def test_64_character_subject_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.get(URL, headers=bearer(make_token("admin", "é" * 64)))
    assert response.status_code == 200
