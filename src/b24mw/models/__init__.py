"""All tables.  Importing this package registers every model on ``Base.metadata``
(Alembic's env and the tests rely on that)."""

from b24mw.models.b24app import AppInstallation
from b24mw.models.base import Base
from b24mw.models.couriers import Courier
from b24mw.models.crm import CrmDeal, CrmLead, CrmPipeline
from b24mw.models.history import HistoryEntry, IntegrationLog
from b24mw.models.ops import (
    ArchiveManifest,
    IdempotencyKey,
    JobLease,
    OutboxJob,
    RateLimitState,
    WebhookInbox,
)
from b24mw.models.orders import (
    ChangeCounter,
    Delivery,
    DeliveryLine,
    InstantOrder,
    InstantOrderLine,
)
from b24mw.models.returns import Return, ReturnLine
from b24mw.models.support import ChatLink, ChatMessage, ChatSession

__all__ = [
    "AppInstallation",
    "ArchiveManifest",
    "Base",
    "ChangeCounter",
    "ChatLink",
    "ChatMessage",
    "ChatSession",
    "Courier",
    "CrmDeal",
    "CrmLead",
    "CrmPipeline",
    "Delivery",
    "DeliveryLine",
    "HistoryEntry",
    "IdempotencyKey",
    "InstantOrder",
    "InstantOrderLine",
    "IntegrationLog",
    "JobLease",
    "OutboxJob",
    "RateLimitState",
    "Return",
    "ReturnLine",
    "WebhookInbox",
]
