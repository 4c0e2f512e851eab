"""How ``b24mw demo`` tells its story: steps, what people do, what b24mw did,
and the Bitrix24 calls each step caused (from the emulator's call log)."""

from __future__ import annotations

import re
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

# The job marker b24mw puts on the last line of what it writes (outbox/enqueue.py).
MARKER_RE = re.compile(r"\[b24mw:[0-9a-f]{12}\]")
_TASK_KEYS = ("taskId", "TASKID", "taskid", "TASK_ID", "id", "ID")


def _lower_get(args: Any, *names: str) -> Any:
    if not isinstance(args, dict):
        return None
    for name in names:
        if name in args:
            return args[name]
    return None


def _first_line(text: Any, width: int = 90) -> str:
    """A comment as a person reads it: our marker line dropped, first line only."""
    if not isinstance(text, str):
        return ""
    lines = [line for line in text.splitlines() if line.strip() and not MARKER_RE.search(line)]
    first = lines[0] if lines else ""
    more = " …" if len(lines) > 1 else ""
    return (first[: width - 1] + "…" if len(first) > width else first) + more


# crm.item.* name their item by entity type (crm/data-types.md: 1 lead, 2 deal).
_CRM_TYPES = {1: "lead", 2: "deal"}


def _crm_target(args: dict[str, Any], fields: Any) -> str:
    """What a CRM or open-line call is about: a deal, an activity, a session."""
    if isinstance(fields, dict) and "ENTITY_TYPE" in fields:  # crm.timeline.comment.add
        text = _first_line(fields.get("COMMENT"))
        return f"{fields['ENTITY_TYPE']} {fields.get('ENTITY_ID')}: «{text}»"
    kind = _CRM_TYPES.get(_lower_get(args, "entityTypeId", "ENTITYTYPEID"), "item")
    item = _lower_get(args, "id", "ID")
    stage = fields.get("stageId") if isinstance(fields, dict) else None
    if item is not None:
        return f"{kind} {item}" + (f" → stage {stage}" if stage else "")
    session = _lower_get(args, "SESSION_ID", "session_id")
    chat = _lower_get(args, "CHAT_ID", "chat_id")
    return f"session {session}" if session is not None else f"chat {chat}" if chat else ""


def describe_command(method: str | None, args: Any) -> str:
    """One Bitrix24 call (or one command of a batch) in a few words."""
    method = method or "?"
    if not isinstance(args, dict):
        return method
    task = _lower_get(args, *_TASK_KEYS)
    fields = _lower_get(args, "fields", "FIELDS") or {}
    if method == "task.commentitem.add":
        text = _first_line(fields.get("POST_MESSAGE") if isinstance(fields, dict) else None)
        return f"{method} task {task}: «{text}»"
    if method == "tasks.task.add" and isinstance(fields, dict):
        parent = fields.get("PARENT_ID")
        under = f" under task {parent}" if parent else ""
        return f"{method} «{fields.get('TITLE')}» for user {fields.get('RESPONSIBLE_ID')}{under}"
    if method == "tasks.task.list":
        wanted = _lower_get(args, "filter", "FILTER")
        return f"{method} filter {wanted}" if wanted else method
    if method.startswith(("crm.", "imopenlines.")):
        return f"{method} {_crm_target(args, fields)}".rstrip()
    if method == "task.commentitem.get":
        return f"{method} task {task} comment {_lower_get(args, 'ITEMID', 'itemid')}"
    if task is not None:
        return f"{method} task {task}"
    return method


def purpose(call: dict[str, Any]) -> str:
    """Why b24mw made a call, where the call alone does not say it."""
    if call.get("method") == "batch":
        methods = {c.get("method") for c in call.get("commands") or []}
        if "task.commentitem.get" in methods or "im.dialog.messages.get" in methods:
            return "reading the comment of an event"
        if "tasks.task.get" in methods:
            return "reading the task of an event, with its tags"
        return ""
    wanted = _lower_get(call.get("args"), "filter", "FILTER")
    if call.get("method") == "tasks.task.list" and isinstance(wanted, dict) and "TAG" in wanted:
        return "reconciliation: tagged tasks changed lately"
    return ""


def describe_call(call: dict[str, Any]) -> str:
    if call.get("method") == "batch":
        commands = call.get("commands") or []
        inner = "; ".join(
            describe_command(c.get("method"), c.get("args"))
            + (f" → {c['error']}" if c.get("error") else "")
            for c in commands
        )
        return f"batch of {len(commands)}: {inner}"
    return describe_command(call.get("method"), call.get("args"))


class Narrator:
    def __init__(self, console: Console | None = None) -> None:
        # Not a terminal (CI, a file): wide enough that calls stay one line each.
        self.console = console or Console(
            highlight=False, width=None if sys.stdout.isatty() else 140
        )
        self.steps = 0

    def title(self, text: str) -> None:
        self.console.rule(f"[bold]{escape(text)}")

    def step(self, text: str) -> None:
        self.steps += 1
        self.console.print()
        self.console.print(f"[bold cyan]Step {self.steps}.[/] [bold]{escape(text)}[/]")

    def say(self, text: str, *, wrap: bool = True) -> None:
        # wrap=False: a line to copy (a token, a command) stays one line.
        self.console.print(f"  {escape(text)}", soft_wrap=not wrap)

    def person(self, who: str, text: str) -> None:
        self.console.print(f"  [magenta]{escape(who)}[/] {escape(text)}")

    def quote(self, text: str) -> None:
        for line in text.splitlines():
            self.console.print(f"      [dim]│[/] {escape(line)}")

    def ok(self, text: str) -> None:
        self.console.print(f"  [green]✓[/] {escape(text)}")

    def note(self, text: str) -> None:
        self.console.print(f"  [dim]{escape(text)}[/]")

    def calls(self, calls: list[dict[str, Any]], why: str = "Bitrix24 calls") -> None:
        if not calls:
            self.note(f"{why}: none")
            return
        self.console.print(f"  [yellow]{escape(why)}[/] (the emulator's call log):")
        for call in calls:
            status = call.get("status")
            error = f" {call['error']}" if call.get("error") else ""
            why = purpose(call)
            self.console.print(
                f"      #{call['seq']:<4} {escape(describe_call(call))} "
                f"[dim]→ HTTP {status}{escape(error)}{escape(f'  ({why})' if why else '')}[/]"
            )

    def table(self, title: str, columns: list[str], rows: list[list[str]]) -> None:
        table = Table(title=title, title_justify="left", show_lines=False)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(escape(cell) for cell in row))
        self.console.print(table)

    def failed(self, text: str) -> None:
        self.console.print()
        self.console.print(f"[bold red]✗ demo failed:[/] {escape(text)}")
