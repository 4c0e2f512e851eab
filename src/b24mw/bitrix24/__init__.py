"""Bitrix24 REST: the thin client, the error table, the shared adaptive limiter."""

from b24mw.bitrix24.client import BatchReply, Bitrix24Client, CommandResult, Reply, Target
from b24mw.bitrix24.errors import (
    Bitrix24Error,
    Bitrix24Unavailable,
    CallError,
    Outcome,
    classify,
)
from b24mw.bitrix24.gateway import Bitrix24Gateway
from b24mw.bitrix24.query import command, php_query

__all__ = [
    "BatchReply",
    "Bitrix24Client",
    "Bitrix24Error",
    "Bitrix24Gateway",
    "Bitrix24Unavailable",
    "CallError",
    "CommandResult",
    "Outcome",
    "Reply",
    "Target",
    "classify",
    "command",
    "php_query",
]
