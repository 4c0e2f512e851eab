"""Build CloudEvents with the official SDK, structured mode.

The event is built (and validated by the SDK) when the change happens and
stored in the outbox job as its structured JSON, so every retry delivers the
same ``id`` and ``time``.
"""

from __future__ import annotations

import json
from typing import Any

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from b24mw.kit.request_context import current_request_id
from b24mw.models.base import utcnow

CONTENT_TYPE = "application/cloudevents+json"
DATA_VERSION = "1"


def build_event(
    *,
    type: str,
    system: str,
    subject: str,
    data: dict[str, Any],
    dataschema: str | None = None,
) -> dict[str, Any]:
    """A structured-mode CloudEvent as a JSON-ready dict."""
    attributes: dict[str, Any] = {
        "type": type,
        "source": f"urn:b24mw:{system}",
        "subject": subject,
        "time": utcnow(),
        "datacontenttype": "application/json",
        "requestid": current_request_id() or "none",
        "dataversion": DATA_VERSION,
    }
    if dataschema:
        attributes["dataschema"] = dataschema
    event = CloudEvent(attributes, data)
    structured: dict[str, Any] = json.loads(JSONFormat().write(event))
    return structured


def idempotency_key(event: dict[str, Any]) -> str:
    """``<source>:<type>:<id>`` as docs/outbound.md "Events and 1C" fixes for sinks."""
    return f"{event['source']}:{event['type']}:{event['id']}"
