"""Result hooks: domain code that runs when a Bitrix24 call succeeds.

A job may name a hook (``on_result``) and carry a ``context``; the worker
calls the hook in the same transaction that marks the job done, e.g. to store
the id of a task Bitrix24 just created on the delivery that asked for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

ResultHook = Callable[[AsyncSession, dict[str, Any], Any], Awaitable[None]]
_HOOKS: dict[str, ResultHook] = {}


def result_hook(name: str) -> Callable[[ResultHook], ResultHook]:
    def register(fn: ResultHook) -> ResultHook:
        _HOOKS[name] = fn
        return fn

    return register


def get_hook(name: str) -> ResultHook:
    try:
        return _HOOKS[name]
    except KeyError:
        raise LookupError(f"no result hook named {name!r}") from None


# A job may also name a failure hook (``on_dead``): called in the transaction
# that moves the job to the DLQ, with its context, the job id and the
# failure entry (Bitrix24's code and text), e.g. to tell a person in
# Bitrix24 what to fix before ``b24mw dlq replay``.
FailureHook = Callable[[AsyncSession, dict[str, Any], int, dict[str, Any]], Awaitable[None]]
_FAILURE_HOOKS: dict[str, FailureHook] = {}


def failure_hook(name: str) -> Callable[[FailureHook], FailureHook]:
    def register(fn: FailureHook) -> FailureHook:
        _FAILURE_HOOKS[name] = fn
        return fn

    return register


def get_failure_hook(name: str) -> FailureHook:
    try:
        return _FAILURE_HOOKS[name]
    except KeyError:
        raise LookupError(f"no failure hook named {name!r}") from None
