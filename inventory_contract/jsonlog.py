"""Structured logs: one JSON object per line, a constant ``message`` and fixed context keys.

Shared by the Lambda and the jobs so that CloudWatch Logs Insights queries work on both, e.g.
``filter run_id = "..." | fields @timestamp, message, rows``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Protocol


class Stream(Protocol):
    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class JsonLogger:
    """Writes ``{"level", "message", "time", **context, **fields}`` lines to a stream."""

    def __init__(self, stream: Stream | None = None, **context: Any) -> None:
        self._stream = stream
        self.context: dict[str, Any] = dict(context)

    def bind(self, **context: Any) -> JsonLogger:
        """A logger that adds ``context`` to every line (e.g. ``run_id``)."""
        return JsonLogger(self._stream, **{**self.context, **context})

    def info(self, message: str, **fields: Any) -> None:
        self._write("INFO", message, fields)

    def warning(self, message: str, **fields: Any) -> None:
        self._write("WARNING", message, fields)

    def error(self, message: str, **fields: Any) -> None:
        self._write("ERROR", message, fields)

    def _write(self, level: str, message: str, fields: dict[str, Any]) -> None:
        line = {"level": level, "message": message, "time": round(time.time(), 3), **self.context, **fields}
        stream: Stream = self._stream or sys.stderr
        stream.write(json.dumps(line, default=str, ensure_ascii=False) + "\n")
        stream.flush()
