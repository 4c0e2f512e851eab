"""The portal's CRM data: deals, leads, their timeline comments, and the
pipelines (deal categories) with their stages.

Stage ids follow the portal's rule (BITRIX24.md §6): the default pipeline's
stages are bare (``NEW``, ``WON``, ``LOSE``), another pipeline's carry its
prefix (``C1:NEW``, ``C1:WON``).  Semantics: ``P`` in process, ``S`` the
final success, ``F`` a failure (a pipeline may have several).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DEAL = 2
LEAD = 1
ENTITY_NAMES = {DEAL: "deal", LEAD: "lead"}

# (status id without prefix, name, semantics) of a new portal's pipeline.
DEFAULT_DEAL_STAGES: list[tuple[str, str, str]] = [
    ("NEW", "New", "P"),
    ("PREPARATION", "Document preparation", "P"),
    ("PREPAYMENT_INVOICE", "Prepayment invoice", "P"),
    ("EXECUTING", "In progress", "P"),
    ("FINAL_INVOICE", "Final invoice", "P"),
    ("WON", "Deal won", "S"),
    ("LOSE", "Deal lost", "F"),
    ("APOLOGY", "Analyze failure", "F"),
]
LEAD_STATUSES: list[tuple[str, str, str]] = [
    ("NEW", "Unassigned", "P"),
    ("IN_PROCESS", "In progress", "P"),
    ("PROCESSED", "Processed", "P"),
    ("CONVERTED", "Good lead", "S"),
    ("JUNK", "Junk lead", "F"),
]


@dataclass
class Stage:
    status_id: str  # full id, prefix included: "C1:WON"
    name: str
    semantics: str  # P | S | F
    sort: int


@dataclass
class Pipeline:
    id: int
    name: str
    sort: int
    stages: list[Stage]

    @property
    def prefix(self) -> str:
        return f"C{self.id}:" if self.id else ""

    @property
    def entity_id(self) -> str:
        """``crm.status.list``'s ``ENTITY_ID`` of its stages."""
        return f"DEAL_STAGE_{self.id}" if self.id else "DEAL_STAGE"

    def stage(self, status_id: str) -> Stage | None:
        return next((s for s in self.stages if s.status_id == status_id), None)

    def first(self, semantics: str) -> Stage:
        return next(s for s in self.stages if s.semantics == semantics)


def make_pipeline(
    category_id: int, name: str, stages: list[tuple[str, str, str]], sort: int = 100
) -> Pipeline:
    prefix = f"C{category_id}:" if category_id else ""
    return Pipeline(
        id=category_id,
        name=name,
        sort=sort,
        stages=[
            Stage(prefix + code, title, sem, (n + 1) * 10)
            for n, (code, title, sem) in enumerate(stages)
        ],
    )


def default_pipelines() -> list[Pipeline]:
    return [make_pipeline(0, "General", DEFAULT_DEAL_STAGES, sort=300)]


@dataclass
class CrmItem:
    """A deal (entity type 2) or a lead (1); ``stage_id`` is a lead's status."""

    id: int
    entity_type_id: int
    title: str
    stage_id: str
    category_id: int
    opportunity: float
    currency_id: str
    assigned_by_id: int
    created_by: int
    updated_by: int
    created_time: float
    updated_time: float
    moved_by: int
    moved_time: float
    contact_id: int = 0
    company_id: int = 0
    lead_id: int | None = None
    comments: str = ""
    # User fields and anything else the caller set, by original upper-case name.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TimelineComment:
    id: int
    entity_type_id: int
    entity_id: int
    author_id: int
    created: float
    comment: str


class CrmStore:
    def __init__(self) -> None:
        self.items: dict[int, dict[int, CrmItem]] = {DEAL: {}, LEAD: {}}
        self.timeline: dict[int, TimelineComment] = {}
        self.next_id: dict[int, int] = {DEAL: 1, LEAD: 1}
        self.next_comment_id = 1

    def new_id(self, entity_type_id: int) -> int:
        value = self.next_id[entity_type_id]
        self.next_id[entity_type_id] += 1
        return value

    def new_comment_id(self) -> int:
        value = self.next_comment_id
        self.next_comment_id += 1
        return value

    def comments_of(self, entity_type_id: int, entity_id: int) -> list[TimelineComment]:
        return [
            c
            for c in self.timeline.values()
            if c.entity_type_id == entity_type_id and c.entity_id == entity_id
        ]

    def clear(self) -> None:
        for items in self.items.values():
            items.clear()
        self.timeline.clear()

    def to_json(self) -> dict[str, Any]:
        return {
            "next_id": {str(k): v for k, v in self.next_id.items()},
            "next_comment_id": self.next_comment_id,
            "items": [asdict(i) for items in self.items.values() for i in items.values()],
            "timeline": [asdict(c) for c in self.timeline.values()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CrmStore:
        store = cls()
        for key, value in (data.get("next_id") or {}).items():
            store.next_id[int(key)] = int(value)
        store.next_comment_id = int(data.get("next_comment_id", 1))
        for raw in data.get("items", []):
            item = CrmItem(**raw)
            store.items[item.entity_type_id][item.id] = item
        for raw in data.get("timeline", []):
            comment = TimelineComment(**raw)
            store.timeline[comment.id] = comment
        return store
