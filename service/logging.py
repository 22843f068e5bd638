"""structlog: JSON lines in production, readable lines on a terminal; context (application id) bound per call.

Every value of every log line, the rendered traceback included, passes through `mask_personal_data`:
an id-card or bank-account number that reached a log call by accident is masked before it is written.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from service.security import mask_personal_numbers


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_personal_numbers(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_masked(v) for v in value)
    return value


def mask_personal_data(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """A structlog processor: id-card and bank-account numbers masked in every value."""
    return {key: _masked(value) for key, value in event_dict.items()}


def configure(json_lines: bool, level: str = "INFO", stream: TextIO | None = None, cache: bool = True) -> None:
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = structlog.processors.JSONRenderer(ensure_ascii=False) if json_lines else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, mask_personal_data, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=cache,
    )
