"""Structured JSON logs (structlog) with personal data masked (SPEC §9)."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import structlog

from b24mw.kit.masking import mask_personal


def _mask_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    return {key: mask_personal(value) for key, value in event_dict.items()}


def configure_logging(level: str = "INFO", json_output: bool = True) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_output
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _mask_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level)),
        # No file bound: lines go to whatever sys.stdout is when they are written.
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )
