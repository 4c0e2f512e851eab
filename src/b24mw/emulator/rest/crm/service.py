"""Changes to deals and leads, shared by the REST methods and the person API.

What a portal does on a save (``crm.item.update``, api-reference/crm/universal):
rights and the fields the target stage requires are checked when the stage
changes, a save that changes nothing is not performed (no event), automation
rules run after the save and may move the deal again.  Every save fires
``ONCRMDEAL*``/``ONCRMLEAD*`` with ``data[FIELDS][ID]`` only, whoever made it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from b24mw.emulator.outgoing.dispatch import EventDispatcher
from b24mw.emulator.rest.tasks.service import as_int
from b24mw.emulator.state.crm import DEAL, LEAD, LEAD_STATUSES, CrmItem, Pipeline, make_pipeline
from b24mw.emulator.state.crm import TimelineComment as Comment
from b24mw.emulator.state.crm_settings import build_pipelines
from b24mw.emulator.wire.errors import B24Error

if TYPE_CHECKING:
    from b24mw.emulator.state.settings import RuntimeSettings
    from b24mw.emulator.state.store import Store

EVENT_PREFIX = {DEAL: "ONCRMDEAL", LEAD: "ONCRMLEAD"}
# Canonical (crm.deal.* style) field -> CrmItem attribute.  A lead's stage is
# its STATUS_ID.
_ATTRS = {
    "TITLE": "title",
    "STAGE_ID": "stage_id",
    "STATUS_ID": "stage_id",
    "CATEGORY_ID": "category_id",
    "OPPORTUNITY": "opportunity",
    "CURRENCY_ID": "currency_id",
    "ASSIGNED_BY_ID": "assigned_by_id",
    "CONTACT_ID": "contact_id",
    "COMPANY_ID": "company_id",
    "LEAD_ID": "lead_id",
    "COMMENTS": "comments",
}
_INT_ATTRS = frozenset({"category_id", "assigned_by_id", "contact_id", "company_id", "lead_id"})


def not_found(what: str = "Element not found") -> B24Error:
    return B24Error("NOT_FOUND", what, 400)


def required(field: str) -> B24Error:
    return B24Error("CRM_FIELD_ERROR_REQUIRED", f'The "{field}" field is required', 400)


def stage_denied() -> B24Error:
    return B24Error("ACCESS_DENIED", "Insufficient permissions to change the stage", 400)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


class CrmService:
    def __init__(
        self,
        store: Store,
        events: EventDispatcher,
        clock: Callable[[], float],
        settings: Callable[[], RuntimeSettings],
    ) -> None:
        self.store = store
        self.crm = store.crm
        self.events = events
        self.clock = clock
        self.settings = settings

    # -- pipelines -------------------------------------------------------

    def pipelines(self) -> dict[int, Pipeline]:
        return build_pipelines(self.settings().crm_pipelines)

    @staticmethod
    def lead_statuses() -> Pipeline:
        return make_pipeline(0, "Leads", LEAD_STATUSES)

    def pipeline_of(self, item: CrmItem) -> Pipeline:
        if item.entity_type_id == LEAD:
            return self.lead_statuses()
        pipelines = self.pipelines()
        return pipelines.get(item.category_id) or pipelines[0]

    def semantics(self, item: CrmItem) -> str:
        stage = self.pipeline_of(item).stage(item.stage_id)
        return stage.semantics if stage is not None else "P"

    @property
    def leads_enabled(self) -> bool:
        return self.settings().crm_mode == 1

    # -- reads -----------------------------------------------------------

    def get(self, entity_type_id: int, item_id: int) -> CrmItem | None:
        if entity_type_id == LEAD and not self.leads_enabled:
            return None
        return self.crm.items[entity_type_id].get(item_id)

    def all(self, entity_type_id: int) -> list[CrmItem]:
        if entity_type_id == LEAD and not self.leads_enabled:
            return []
        return sorted(self.crm.items[entity_type_id].values(), key=lambda i: i.id)

    # -- writes ----------------------------------------------------------

    def add(self, entity_type_id: int, fields: Mapping[str, Any], actor: int) -> CrmItem:
        """``fields`` by canonical upper-case name."""
        if entity_type_id == LEAD and not self.leads_enabled:
            raise B24Error("ACCESS_DENIED", "Leads are disabled (Simple CRM)", 400)
        now = self.clock()
        category_id = 0
        if entity_type_id == DEAL:
            category_id = as_int(fields.get("CATEGORY_ID")) or 0
            if category_id not in self.pipelines():
                raise B24Error(
                    "CRM_FIELD_ERROR_VALUE_NOT_VALID", 'Invalid value for field "categoryId"'
                )
        item = CrmItem(
            id=0,
            entity_type_id=entity_type_id,
            title="",
            stage_id="",
            category_id=category_id,
            opportunity=0.0,
            currency_id="RUB",
            assigned_by_id=actor,
            created_by=actor,
            updated_by=actor,
            created_time=now,
            updated_time=now,
            moved_by=actor,
            moved_time=now,
        )
        pipeline = self.pipeline_of(item)
        item.stage_id = pipeline.stages[0].status_id
        changes = self._changes(item, fields, creating=True)
        self._check_stage(item, changes, pipeline)
        self._apply(item, changes)
        item.id = self.crm.new_id(entity_type_id)
        if not item.title:
            item.title = f"{'Deal' if entity_type_id == DEAL else 'Lead'} #{item.id}"
        self.crm.items[entity_type_id][item.id] = item
        self.store.dirty = True
        self._emit(item, "ADD")
        return item

    def update(
        self, entity_type_id: int, item_id: int, fields: Mapping[str, Any], actor: int
    ) -> CrmItem:
        """The item as saved (a copy: automation may move it right after)."""
        item = self.get(entity_type_id, item_id)
        if item is None:
            raise not_found()
        changes = self._changes(item, fields, creating=False)
        changes = {k: v for k, v in changes.items() if getattr(item, k, None) != v or k == "extra"}
        if "extra" in changes:
            changes["extra"] = {
                k: v for k, v in changes["extra"].items() if item.extra.get(k) != v
            } or None
            if changes["extra"] is None:
                del changes["extra"]
        pipeline = self.pipeline_of(item)
        self._check_stage(item, changes, pipeline, actor=actor)
        if not changes:
            return copy.deepcopy(item)  # nothing changed: no save, no event
        moved = "stage_id" in changes
        self._apply(item, changes)
        self._touch(item, actor, moved=moved)
        saved = copy.deepcopy(item)
        self._emit(item, "UPDATE")
        if moved:
            self._automation(item)
        return saved

    def delete(self, entity_type_id: int, item_id: int) -> None:
        item = self.get(entity_type_id, item_id)
        if item is None:
            raise not_found()
        del self.crm.items[entity_type_id][item_id]
        self.store.dirty = True
        self._emit(item, "DELETE")

    def add_comment(self, entity_type_id: int, entity_id: int, text: str, actor: int) -> Comment:
        if self.get(entity_type_id, entity_id) is None:
            raise B24Error("OWNER_NOT_FOUND", "Owner of the item not found", 400)
        if not text.strip():
            raise B24Error("INVALID_ARG_VALUE", "Empty comment", 400)
        comment = Comment(
            id=self.crm.new_comment_id(),
            entity_type_id=entity_type_id,
            entity_id=entity_id,
            author_id=actor,
            created=self.clock(),
            comment=text,
        )
        self.crm.timeline[comment.id] = comment
        self.store.dirty = True
        return comment

    # -- internals -------------------------------------------------------

    def _changes(
        self, item: CrmItem, fields: Mapping[str, Any], *, creating: bool
    ) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        for name, value in fields.items():
            if name.startswith("UF_"):
                changes.setdefault("extra", {})[name] = value
                continue
            attr = _ATTRS.get(name)
            if attr is None:
                continue  # misspelled or read-only: silently ignored, as on a portal
            if (name == "STATUS_ID") != (item.entity_type_id == LEAD) and attr == "stage_id":
                continue
            if attr == "category_id":
                # Chosen at creation (read by ``add``); CATEGORY_ID cannot
                # change through an update (BITRIX24.md §6).
                continue
            if attr in _INT_ATTRS:
                number = as_int(value)
                changes[attr] = number if attr == "lead_id" else number or 0
            elif attr == "opportunity":
                try:
                    changes[attr] = float(value or 0)
                except (TypeError, ValueError):
                    raise B24Error(
                        "CRM_FIELD_ERROR_VALUE_NOT_VALID", 'Invalid value for field "opportunity"'
                    ) from None
            elif attr == "stage_id":
                changes[attr] = str(value or "").strip().upper()
            else:
                changes[attr] = "" if value is None else str(value)
        return changes

    def _check_stage(
        self,
        item: CrmItem,
        changes: dict[str, Any],
        pipeline: Pipeline,
        *,
        actor: int | None = None,
    ) -> None:
        stage_id = changes.get("stage_id")
        if stage_id is None:
            return
        if not stage_id:
            changes.pop("stage_id")
            return
        if pipeline.stage(stage_id) is None:
            field = "stageId"
            raise B24Error("CRM_FIELD_ERROR_VALUE_NOT_VALID", f'Invalid value for field "{field}"')
        settings = self.settings()
        if actor is not None and stage_id in settings.crm_stage_denied:
            raise stage_denied()
        for field in settings.crm_required_fields.get(stage_id, []):
            value = self._value_after(item, changes, field)
            if _empty(value):
                raise required(field)

    @staticmethod
    def _value_after(item: CrmItem, changes: dict[str, Any], field: str) -> Any:
        if field.startswith("UF_"):
            extra = changes.get("extra") or {}
            return extra[field] if field in extra else item.extra.get(field)
        attr = _ATTRS.get(field)
        if attr is None:
            return None
        return changes[attr] if attr in changes else getattr(item, attr, None)

    def _apply(self, item: CrmItem, changes: dict[str, Any]) -> None:
        for attr, value in changes.items():
            if attr == "extra":
                item.extra.update(value)
            else:
                setattr(item, attr, value)
        self.store.dirty = True

    def _touch(self, item: CrmItem, actor: int, *, moved: bool) -> None:
        now = self.clock()
        item.updated_time = now
        item.updated_by = actor
        if moved:
            item.moved_time = now
            item.moved_by = actor
        self.store.dirty = True

    def _automation(self, item: CrmItem) -> None:
        """A robot on the stage just entered moves the deal on (once: a rule
        whose target has a rule of its own does not chain here)."""
        if item.entity_type_id != DEAL:
            return
        target = self.settings().crm_automation.get(item.stage_id)
        if not target or target == item.stage_id or self.pipeline_of(item).stage(target) is None:
            return
        item.stage_id = target
        # Robots act as the deal's responsible person.
        self._touch(item, item.assigned_by_id, moved=True)
        self._emit(item, "UPDATE")

    def _emit(self, item: CrmItem, action: str) -> None:
        self.events.emit(EVENT_PREFIX[item.entity_type_id] + action, {"FIELDS": {"ID": item.id}})
