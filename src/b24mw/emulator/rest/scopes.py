"""Scopes: which permission a method needs, and the refusal without it.

A webhook (or an installed application) is granted scopes; a method of a
scope it lacks is refused before it runs with 403 ``insufficient_scope``
(`_includes/system-errors.md`).  Methods outside these families (``batch``,
``event.*``, and the ``basic`` ones every caller has: ``scope``,
``user.admin``, ``app.info``...) need none here.
"""

from __future__ import annotations

from b24mw.emulator.wire.errors import B24Error

# Method name prefix -> scope (`api-reference/scopes/permissions.md`: `task`
# for tasks and their comments, `user`, `im` for chats).
_PREFIXES = (
    ("tasks.", "task"),
    ("task.", "task"),
    ("user.", "user"),
    ("im.", "im"),
    ("imopenlines.", "imopenlines"),
    ("crm.", "crm"),
)
# Scope `basic`: granted to every webhook and application (`common/system/scope.md`,
# `common/users/user-admin.md`).
_BASIC = frozenset({"scope", "user.admin", "user.access", "app.info", "server.time", "methods"})
# What ``scope?full=true`` lists (`api-reference/scopes/permissions.md`, abridged).
KNOWN = frozenset(
    {
        "bizproc",
        "calendar",
        "catalog",
        "crm",
        "department",
        "disk",
        "entity",
        "im",
        "imbot",
        "imconnector",
        "imopenlines",
        "lists",
        "log",
        "placement",
        "sonet_group",
        "task",
        "telephony",
        "user",
        "user_basic",
        "user_brief",
    }
)


def parse(scope: str) -> frozenset[str]:
    return frozenset(part.strip().lower() for part in scope.split(",") if part.strip())


def needed(method: str) -> str | None:
    if method in _BASIC:
        return None
    for prefix, scope in _PREFIXES:
        if method.startswith(prefix):
            return scope
    return None


def insufficient_scope() -> B24Error:
    return B24Error(
        "insufficient_scope",
        "The request requires higher privileges than provided by the webhook token",
        403,
    )


def refusal(method: str, granted: str) -> B24Error | None:
    scope = needed(method)
    if scope is None or scope in parse(granted):
        return None
    return insufficient_scope()
