"""The steps of looking for a comment whose answer was lost: the task (which
card?), its chat page by page (the new card), then its comments."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from b24mw.outbox.verify import CHAT_PAGE, CommentByMarker, Continue, Lookup

CREATED = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
MARKER = "[b24mw:0123456789ab]"


@dataclass
class FakeJob:
    payload: dict[str, Any] = field(
        default_factory=lambda: {
            "method": "task.commentitem.add",
            "params": {"TASKID": 5, "FIELDS": {"POST_MESSAGE": f"hi\n{MARKER}"}},
            "marker": MARKER,
        }
    )
    created_at: datetime = CREATED

    def at(self, step: dict[str, Any]) -> FakeJob:
        self.payload = {**self.payload, "lookup": step}
        return self


def page(first_id: int, count: int, *, when: datetime = CREATED, text: str = "x") -> dict[str, Any]:
    """``count`` messages from ``first_id`` down, newest first, as the method answers."""
    return {
        "chat_id": 77,
        "messages": [
            {"id": first_id - n, "author_id": 9, "date": when.isoformat(), "text": text}
            for n in range(count)
        ],
    }


check = CommentByMarker()


def test_the_task_comes_first_and_its_chat_id_decides_the_card() -> None:
    job = FakeJob()
    assert check.lookup(job) == Lookup("tasks.task.get", {"taskId": 5, "select": ["ID", "CHAT_ID"]})
    assert check.found(job, {"task": {"id": "5", "chatId": 77}}) == Continue(
        {"step": "chat", "chat_id": 77, "last_id": 0}
    )
    assert check.found(job, {"task": {"id": "5"}}) == Continue({"step": "comments"})
    assert check.found(job, {"task": {"id": "5", "chatId": 0}}) == Continue({"step": "comments"})
    assert check.found(job, []) is None  # the task is gone: sending again says so


def test_the_chat_is_read_from_the_newest_message_back() -> None:
    job = FakeJob().at({"step": "chat", "chat_id": 77, "last_id": 0})
    assert check.lookup(job) == Lookup(
        "im.dialog.messages.get", {"DIALOG_ID": "chat77", "LAST_ID": 0, "LIMIT": CHAT_PAGE}
    )
    full = page(900, CHAT_PAGE, when=CREATED + timedelta(minutes=5))
    assert check.found(job, full) == Continue({"step": "chat", "chat_id": 77, "last_id": 851})
    found = page(900, 3)
    found["messages"][1]["text"] = f"Заказ 1 создан\n{MARKER}"
    assert check.found(job, found) == 899


def test_the_chat_search_stops_at_its_start_or_before_the_job() -> None:
    job = FakeJob().at({"step": "chat", "chat_id": 77, "last_id": 0})
    assert check.found(job, page(900, CHAT_PAGE - 1)) == Continue({"step": "comments"})
    older = page(900, CHAT_PAGE, when=CREATED - timedelta(hours=2))
    assert check.found(job, older) == Continue({"step": "comments"})
    assert check.found(job, {"chat_id": 77, "messages": []}) == Continue({"step": "comments"})
    # Within the clock-skew hour before the job: still searched.
    recent = page(900, CHAT_PAGE, when=CREATED - timedelta(minutes=30))
    assert isinstance(check.found(job, recent), Continue)
    assert check.found(job, recent) != Continue({"step": "comments"})


def test_a_page_that_does_not_go_back_ends_the_search() -> None:
    job = FakeJob().at({"step": "chat", "chat_id": 77, "last_id": 851})
    same = page(900, CHAT_PAGE, when=CREATED + timedelta(minutes=5))
    assert check.found(job, same) == Continue({"step": "comments"})


def test_the_comments_come_last() -> None:
    job = FakeJob().at({"step": "comments"})
    assert check.lookup(job) == Lookup(
        "task.commentitem.getlist", {"TASKID": 5, "ORDER": {"ID": "desc"}}
    )
    assert check.found(job, [{"ID": "12", "POST_MESSAGE": f"a\n{MARKER}"}]) == 12
    assert check.found(job, []) is None
