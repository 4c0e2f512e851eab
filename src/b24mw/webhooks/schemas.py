from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class IngestOutcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"


class WebhookAck(BaseModel):
    """The answer Bitrix24 (or the signing proxy) gets: the event is stored."""

    status: IngestOutcome
