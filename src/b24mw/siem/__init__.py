"""The SIEM stream: one JSON line per security event (docs/webhooks.md "The SIEM stream").

Separate from the application log on purpose: security tooling subscribes to
this stream alone, and its lines never carry a secret or a request body.
"""

from b24mw.siem.sinks import SinkSpecError, parse_sink
from b24mw.siem.stream import SecurityEvent, SiemStream, open_stream

__all__ = ["SecurityEvent", "SiemStream", "SinkSpecError", "open_stream", "parse_sink"]
