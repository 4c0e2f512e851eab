"""What the portal answers: JSON envelopes, proxy HTML pages, and per-method outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from b24mw.emulator.limits.faults import Fault
from b24mw.emulator.rest.methodkit import MethodResult
from b24mw.emulator.wire.errors import B24Error

BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
GATEWAY_TIMEOUT_HTML = BAD_GATEWAY_HTML.replace("502 Bad Gateway", "504 Gateway Time-out")


@dataclass
class Reply:
    status: int
    payload: Any = None
    html: str | None = None
    error: str | None = None


@dataclass
class Outcome:
    result: MethodResult | None
    error: B24Error | None
    time: dict[str, Any] | None


class AbortRequest(Exception):
    """A fault that kills the whole HTTP exchange (proxy error, hang) mid-batch."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(fault.kind)
        self.fault = fault


def error_reply(error: B24Error) -> Reply:
    return Reply(error.status, error.body(), error=error.code)
