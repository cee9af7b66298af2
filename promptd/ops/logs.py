"""Logs are one JSON object per line on stderr.

Application logs go through `logging` with `JsonFormatter`. Access logs skip
`logging` (it costs more than the rest of a request): `AccessLog` keeps a
tuple per request and encodes each 50 ms batch with one msgspec call. Every line
goes through one `LogWriter`, whose thread does the writing. Neither ever
sees variable values, message contents, keys or Authorization headers:
callers pass only the fields listed in README.md.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

import msgspec
import orjson

LOG_LEVELS = ("debug", "info", "warning", "error")
_FLUSH_AFTER_S = 0.05
_FLUSH_ENTRIES = 512
_QUEUE_BYTES = 4 * 1024 * 1024  # log lines waiting for a slow sink; beyond this they are dropped
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
        return safe_line(entry).decode()


class LogWriter:
    """Where log lines go: a bounded queue that a thread writes to the sink
    (stderr). A slow or stuck sink (a pipe nobody reads) never blocks serving:
    when the queue is full, new lines are dropped and counted (`dropped`,
    exported as `promptd_log_lines_dropped_total`). Without `threaded`, lines
    are written at once (tests)."""

    def __init__(self, stream: IO[bytes] | None = None, *, threaded: bool = True, limit: int = _QUEUE_BYTES) -> None:
        self._stream = stream
        self._threaded = threaded
        self._limit = limit
        self._queue: collections.deque[bytes] = collections.deque()
        self._queued = 0
        self._ready = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.on_drop: Callable[[int], None] | None = None  # told how many lines were dropped

    def write_lines(self, lines: list[bytes]) -> None:
        """Whole lines, each without its newline."""
        self.write_data(b"\n".join(lines) + b"\n", len(lines))

    def write_data(self, data: bytes, lines: int) -> None:
        """`lines` whole lines, each ending with its newline, as one piece."""
        if not self._threaded:
            self._write(data)
            return
        with self._ready:
            if self._queued + len(data) > self._limit:
                self.dropped += lines
                if self.on_drop is not None:
                    self.on_drop(lines)
                return
            self._queue.append(data)
            self._queued += len(data)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="promptd-log-writer", daemon=True)
                self._thread.start()
            self._ready.notify()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                data = b"".join(self._queue)
                self._queue.clear()
            self._write(data)  # may block: only this thread waits
            with self._ready:
                self._queued -= len(data)
                self._ready.notify_all()

    def wait_written(self, timeout: float) -> bool:
        """Wait until everything queued is written (at exit, in tests)."""
        with self._ready:
            return self._ready.wait_for(lambda: self._queued == 0, timeout)

    def _write(self, data: bytes) -> None:
        stream = self._stream or sys.stderr.buffer
        try:
            stream.write(data)
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed stderr must not take requests down


_writer = LogWriter()


def log_writer() -> LogWriter:
    return _writer


class _JsonHandler(logging.Handler):
    def __init__(self, writer: LogWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record).encode("utf-8", "backslashreplace")
        except Exception:  # a record that cannot be formatted is escaped, not lost
            line = safe_line(
                {"ts": timestamp(record.created), "level": record.levelname.lower(), "msg": repr(record.msg)}
            )
        self.writer.write_lines([line])


def setup_logging(level: str = "info", stream: IO[bytes] | None = None) -> None:
    """JSON lines on stderr (or `stream`), written by the process's `LogWriter`."""
    global _writer
    if stream is not None:
        _writer = LogWriter(stream)
    handler = _JsonHandler(_writer)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    atexit.register(_writer.wait_written, 1.0)


def safe_line(entry: dict[str, Any]) -> bytes:
    """One JSON line, whatever the strings hold: text that orjson refuses (lone
    surrogates from undecodable client bytes) is escaped instead of losing the line."""
    try:
        return orjson.dumps(entry, default=str)
    except TypeError:
        return orjson.dumps(
            {
                key: value.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(value, str) else value
                for key, value in entry.items()
            },
            default=lambda value: str(value).encode("utf-8", "backslashreplace").decode("utf-8"),
        )


_PID = os.getpid()


class _AccessLine(msgspec.Struct):
    """One access log line, its fields in order; msgspec writes a batch of them in
    one call (`encode_lines`). A request records the fields from `request_id` to
    `rollout` (`AccessLog.record`); `ts` holds time.time() until the batch is written."""

    ts: str | float
    level: str
    logger: str
    request_id: str
    method: str
    path: str
    status: int
    endpoint: str
    prompt_id: str | None
    prompt_version: int | None
    environment: str | None
    upstream: str | None
    model: str | None
    duration_ms: float | None
    overhead_ms: float | None
    upstream_ttfb_ms: float | None
    bytes_out: int
    rollout: str | None
    pid: int


_encode_lines = msgspec.json.Encoder().encode_lines


class AccessLog:
    """Buffered JSON access log lines; `enabled` follows the `promptd.access` logger's level.

    A request only appends a tuple of its fields (`record`); turning the tuples
    into JSON lines and writing them happens in `flush`, once per 50 ms batch,
    off the request path, the whole batch encoded by one msgspec call."""

    def __init__(self, stream: IO[bytes] | None = None) -> None:
        self.enabled = logging.getLogger("promptd.access").isEnabledFor(logging.INFO)
        self._writer = LogWriter(stream, threaded=False) if stream is not None else None
        self._pending: list[tuple[Any, ...]] = []
        self._timer: asyncio.TimerHandle | None = None

    def record(self, *fields: Any) -> None:
        """`fields`: those of `_AccessLine` from `request_id` to `rollout`, as they are
        written (the path without its query, durations in ms); stamped with the time now."""
        self._pending.append(_AccessLine(time.time(), "info", "promptd.access", *fields, _PID))
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
        lines, self._pending = self._pending, []
        for line in lines:
            line.ts = timestamp(line.ts)  # type: ignore[arg-type]  # recorded as time.time()
        writer = self._writer or _writer
        try:
            writer.write_data(_encode_lines(lines), len(lines))
        except (TypeError, UnicodeEncodeError, msgspec.EncodeError):
            # A string msgspec refuses (a lone surrogate from undecodable client bytes): each
            # line on its own, escaped, so none is lost.
            writer.write_lines([safe_line(msgspec.structs.asdict(line)) for line in lines])
