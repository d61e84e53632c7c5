"""Structured logging: JSON lines, a request id on every line, no personal ids.

Personal ids are a `PersonalId` type that redacts itself; as a second line of defence a
processor masks every run of 12 digits (personal ids) and of 9 digits (old id numbers)
in every string of every event, wherever it came from.
"""

from __future__ import annotations

import json as json_module
import logging
import re
import sys
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any

import orjson
import structlog

__all__ = ["configure_logging", "mask_identifiers", "redact"]

_IDS = re.compile(r"(?<!\d)(\d{12}|\d{9})(?!\d)")


def _stars(match: re.Match[str]) -> str:
    return "*" * len(match.group(0))


def redact(text: str) -> str:
    """`text` with every 12- or 9-digit run replaced by asterisks."""
    # The usual text holds no such run: looked for, and rewritten only if found (a
    # string of another type is rewritten all the same: the mask gives back a `str`).
    if type(text) is str and _IDS.search(text) is None:
        return text
    return _IDS.sub(_stars, text)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and _IDS.fullmatch(str(value)):
        return redact(str(value))
    return value


def _json_line(event: Any, **options: Any) -> str:
    """A log line's JSON: orjson, or the standard library for what orjson refuses (a lone
    surrogate, an integer beyond 64 bits), so that no line is lost."""
    try:
        return orjson.dumps(event, default=str).decode()
    except TypeError:
        return json_module.dumps(event, default=str)


def mask_identifiers(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask identifier-shaped digit runs in every value."""
    for key, value in event.items():  # (values replaced in place: the keys stay)
        event[key] = _clean(value)
    return event


class _StderrLogger:
    """structlog's output: a rendered line written to the standard error as it is then.

    The gateway's own lines go straight here; the standard library's machinery (a log
    record, the caller's frame, a formatter) would cost several times the line itself.
    """

    __slots__ = ("name",)
    _lock = threading.Lock()

    def __init__(self, name: str) -> None:
        self.name = name

    def msg(self, message: str) -> None:
        stream = sys.stderr
        with self._lock:
            stream.write(message + "\n")
            stream.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _stderr_logger(*args: Any) -> _StderrLogger:
    return _StderrLogger(str(args[0]) if args else "")


def configure_logging(*, level: str = "info", json: bool = True) -> None:
    """Route structlog and the standard library (uvicorn, SQLAlchemy) through one renderer.

    The gateway's own (structlog) lines are rendered by structlog and written directly;
    the libraries' (standard library) lines pass through a formatter with the same
    processors. The mask runs last, after exceptions are rendered to text, so
    tracebacks are masked too.
    """
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_line)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    last: list[Any] = [structlog.processors.format_exc_info, mask_identifiers, renderer]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *last],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries' own lines: httpx logs every URL it calls (paths hold ids), the others
    # are noise at debug level. Only their warnings and errors are kept.
    for name in ("httpx", "httpcore", "aiosqlite", "asyncio", "asyncpg", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # The access log carries query strings (GET /graphql?query=... holds ids): never on.
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False
    logging.getLogger("uvicorn.access").disabled = True
    structlog.configure(
        processors=[*shared, *last],
        logger_factory=_stderr_logger,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
