"""How a long run shows where it is: a rich progress bar (rows, rows/s, ETA)
on the operator's console, nothing in the worker (its log has one line per
table instead)."""

from __future__ import annotations

from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class RunProgress(Protocol):
    def start(self, label: str, total: int) -> None: ...

    def advance(self, rows: int) -> None: ...

    def stop(self) -> None: ...


class Silent:
    def start(self, label: str, total: int) -> None:
        return None

    def advance(self, rows: int) -> None:
        return None

    def stop(self) -> None:
        return None


class ConsoleProgress:
    """One bar per table on stderr: stdout stays the command's report."""

    def __init__(self, console: Console | None = None) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} rows/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self.task: TaskID | None = None
        self.started = False

    def start(self, label: str, total: int) -> None:
        if not self.started:
            self.progress.start()
            self.started = True
        self.task = self.progress.add_task(label, total=total, rate="-")

    def advance(self, rows: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, rows)
            speed = self.progress.tasks[self.task].speed
            self.progress.update(self.task, rate=f"{speed:,.0f}" if speed else "-")

    def stop(self) -> None:
        if self.started:
            self.progress.stop()
            self.started = False
