"""Status vocabularies shared by models, schemas and state machines."""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    NEW = "NEW"
    PICKING = "PICKING"
    READY = "READY"
    PICKED_UP = "PICKED_UP"
    ON_ROUTE = "ON_ROUTE"
    DELIVERED = "DELIVERED"
    CASH_RETURNED = "CASH_RETURNED"
    DONE = "DONE"
    REFUSED = "REFUSED"
    FAILED = "FAILED"


class OrderKind(StrEnum):
    """The two kinds of order the shared lifecycle drives (CloudEvent ``kind``)."""

    INSTANT = "instant"  # Walking Warehouse orders (instant_orders)
    DELIVERY = "delivery"  # 1C deliveries (orders)


class OrderOrigin(StrEnum):
    API = "api"
    B24_TASK = "b24_task"
    B24_COMMENT = "b24_comment"


class ReturnStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class ReturnSource(StrEnum):
    WIDGET = "widget"
    CALL_CENTER = "call_center"
    WAREHOUSE = "warehouse"


class ItemQuality(StrEnum):
    NEW = "new"
    DEFECT = "defect"
    UNKNOWN = "unknown"


class TaskEventType(StrEnum):
    STATUS = "status"
    PHOTO = "photo"
    GEO = "geo"
    COMMENT = "comment"
    # A customer chat (open-line session) linked to or unlinked from the target.
    CHAT = "chat"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DONE = "done"
    DEAD = "dead"


class JobKind(StrEnum):
    """What an outbox job does; it decides which worker lane sends the job."""

    B24_CALL = "b24.call"
    EVENT_PUBLISH = "event.publish"
    ONEC_PUSH = "onec.push"


class IdempotencyState(StrEnum):
    IN_FLIGHT = "in_flight"
    DONE = "done"


class InstallationState(StrEnum):
    """Whether the local application may call the portal (its installation's state)."""

    ACTIVE = "active"
    REFUSED = "refused"  # Bitrix24 refused its tokens: no calls until re-installed
    UNINSTALLED = "uninstalled"


class ManifestStatus(StrEnum):
    """An archive part (``archive_manifest.status``)."""

    VERIFIED = "verified"  # written, read back and checked; its rows are deleted
    RESTORED = "restored"  # its rows are back in the table


class LogDirection(StrEnum):
    """Which way an ``integration_log`` exchange went."""

    IN = "in"
    OUT = "out"
    INTERNAL = "internal"


class InboxStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    REJECTED = "rejected"
    FAILED = "failed"


class ChatStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class SenderKind(StrEnum):
    CLIENT = "client"
    OPERATOR = "operator"
    BOT = "bot"
    SYSTEM = "system"


class LinkTarget(StrEnum):
    RETURN = "return"
    INSTANT_ORDER = "instant_order"
    DELIVERY = "delivery"
    DEAL = "deal"


class LinkSource(StrEnum):
    MENTION = "mention"
    CRM_BINDING = "crm_binding"
    MANUAL = "manual"


def values(enum: type[StrEnum]) -> tuple[str, ...]:
    return tuple(member.value for member in enum)
