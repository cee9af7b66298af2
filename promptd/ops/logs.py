"""Logs are one JSON object per line on stderr.

Application logs go through `logging` with `JsonFormatter`. Access logs skip
`logging` (it costs more than the rest of a request): `AccessLog` encodes a
dict with orjson and writes buffered lines, flushed every 50 ms. Neither ever
sees variable values, message contents, keys or Authorization headers:
callers pass only the fields listed in README.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import IO, Any

import orjson

LOG_LEVELS = ("debug", "info", "warning", "error")
_FLUSH_AFTER_S = 0.05
_FLUSH_ENTRIES = 512
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

_second = -1
_second_text = ""


def timestamp(now: float) -> str:
    """ISO 8601 UTC with milliseconds; the seconds part is formatted once per second."""
    global _second, _second_text
    whole = int(now)
    if whole != _second:
        _second, _second_text = whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{_second_text}.{int((now - whole) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def setup_logging(level: str = "info", stream: IO[str] | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").disabled = True


ACCESS_FIELDS = (
    "request_id",
    "method",
    "path",
    "status",
    "endpoint",
    "prompt_id",
    "prompt_version",
    "environment",
    "upstream",
    "model",
    "duration_ms",
    "overhead_ms",
    "upstream_ttfb_ms",
    "bytes_out",
)
_PID = os.getpid()


class AccessLog:
    """Buffered JSON access log lines; `enabled` follows the `promptd.access` logger's level.

    A request only appends a tuple of its fields (`record`); turning the tuples
    into JSON lines and writing them happens in `flush`, once per 50 ms batch,
    off the request path."""

    def __init__(self, stream: IO[bytes] | None = None) -> None:
        self.enabled = logging.getLogger("promptd.access").isEnabledFor(logging.INFO)
        self._stream = stream
        self._pending: list[tuple[Any, ...]] = []
        self._timer: asyncio.TimerHandle | None = None

    def record(self, entry: tuple[Any, ...]) -> None:
        """`entry`: time.time(), then the values of ACCESS_FIELDS in order (durations in seconds)."""
        self._pending.append(entry)
        if len(self._pending) >= _FLUSH_ENTRIES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(_FLUSH_AFTER_S, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        lines = []
        for now, *values in pending:
            entry = {"ts": timestamp(now), "level": "info", "logger": "promptd.access"}
            entry.update(zip(ACCESS_FIELDS, values, strict=True))
            for key in ("duration_ms", "overhead_ms", "upstream_ttfb_ms"):
                if entry[key] is not None:
                    entry[key] = round(entry[key] * 1000, 3)
            entry["path"] = entry["path"].partition("?")[0]  # query strings can carry secrets
            entry["pid"] = _PID
            lines.append(orjson.dumps(entry))
        lines.append(b"")
        stream = self._stream or sys.stderr.buffer
        try:
            stream.write(b"\n".join(lines))
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed or full stderr must not take requests down
