"""Result and failure hooks: domain code the worker runs when a Bitrix24 call ends.

A job may name a hook (``on_result``) and carry a ``context``; the worker
calls the hook in the same transaction that marks the job done, e.g. to store
the id of a task Bitrix24 just created on the delivery that asked for it.

Hooks are registered by name in one place, ``b24mw.registry``; this module
only keeps them and finds them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

ResultHook = Callable[[AsyncSession, dict[str, Any], Any], Awaitable[None]]
_HOOKS: dict[str, ResultHook] = {}

# A job may also name a failure hook (``on_dead``): called in the transaction
# that moves the job to the DLQ, with its context, the job id and the
# failure entry (Bitrix24's code and text), e.g. to tell a person in
# Bitrix24 what to fix before ``b24mw dlq replay``.
FailureHook = Callable[[AsyncSession, dict[str, Any], int, dict[str, Any]], Awaitable[None]]
_FAILURE_HOOKS: dict[str, FailureHook] = {}


def register_result_hook(name: str, fn: ResultHook) -> None:
    _HOOKS[name] = fn


def register_failure_hook(name: str, fn: FailureHook) -> None:
    _FAILURE_HOOKS[name] = fn


def get_hook(name: str) -> ResultHook:
    try:
        return _HOOKS[name]
    except KeyError:
        raise LookupError(f"no result hook named {name!r}") from None


def get_failure_hook(name: str) -> FailureHook:
    try:
        return _FAILURE_HOOKS[name]
    except KeyError:
        raise LookupError(f"no failure hook named {name!r}") from None


def result_hook_names() -> frozenset[str]:
    return frozenset(_HOOKS)


def failure_hook_names() -> frozenset[str]:
    return frozenset(_FAILURE_HOOKS)
