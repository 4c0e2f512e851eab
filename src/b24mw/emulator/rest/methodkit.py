"""What a REST method handler receives and returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timezone
from typing import TYPE_CHECKING, Any

from b24mw.emulator.rest.crm.service import CrmService
from b24mw.emulator.rest.tasks.access import Actor
from b24mw.emulator.rest.tasks.service import TaskService
from b24mw.emulator.rest.tasks.views import TaskView
from b24mw.emulator.state.store import Store

if TYPE_CHECKING:
    from b24mw.emulator.state.settings import RuntimeSettings

Args = dict[str, Any] | list[Any]
PAGE_SIZE = 50


@dataclass
class MethodContext:
    service: TaskService
    view: TaskView
    store: Store
    tz: timezone
    actor: int
    crm: CrmService
    # The scopes the caller (webhook or application) was granted, comma-separated.
    granted_scope: Callable[[], str] = lambda: ""
    # Portal-wide switches the methods read (``RuntimeSettings``).
    options: RuntimeSettings | None = field(default=None)

    @property
    def who(self) -> Actor:
        """The caller as the access rules see it (``access.Actor``)."""
        return self.service.actor(self.actor)


@dataclass
class MethodResult:
    result: Any
    total: int | None = None
    next: int | None = None


Handler = Callable[[MethodContext, Args], MethodResult]


def named(args: Args) -> dict[str, Any]:
    """Named parameters, matched without regard to case as the REST router does."""
    if not isinstance(args, dict):
        return {}
    return {str(k).lower(): v for k, v in args.items()}


def page(items: list[Any], start: int) -> tuple[list[Any], int | None]:
    start = max(start, 0)
    end = start + PAGE_SIZE
    return items[start:end], end if end < len(items) else None
