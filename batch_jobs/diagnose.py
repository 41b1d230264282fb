"""The slow path: find the first malformed row of a batch, with its line number and value.

Runs only after the fast path failed or saw a short row, so it can afford Python per row. It
checks each row exactly as ``convert`` types it, and says what it found.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence

from inventory_contract.schema import (
    FALSE,
    KEY_FIELD,
    MAX_OBJECT_SIZE,
    SIZE_FIELD,
    TRUE,
    Column,
    ColumnType,
    decode_key,
)

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
_INT64 = re.compile(r"^[+-]?\d{1,19}$")


def first_malformed_row(rows: Iterable[bytes], columns: Sequence[Column]) -> tuple[int, str] | None:
    """``(line, problem)`` for the first malformed of ``rows`` (counted from 1), or None.

    A row is a line (keys are URL-encoded, so no field holds a newline), numbered as the reader
    counts them, so the line maps back to the delivered data file."""
    for line, raw in enumerate(rows, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            return (
                line,
                f"is not UTF-8 (byte {raw[err.start]:#04x} at column {err.start + 1}): {raw[:200]!r}",
            )
        row = next(csv.reader([text.rstrip("\r\n")]), [])
        if len(row) != len(columns):
            return line, f"{len(row)} fields, expected {len(columns)}: {_excerpt(row)}"
        for column, value in zip(columns, row, strict=True):
            problem = _field_problem(column, value)
            if problem:
                return line, f"field {column.field} ({column.name}) {problem}: {value[:200]!r}"
    return None


def _field_problem(column: Column, value: str) -> str | None:
    if value == "":
        return "is empty: S3 keys are 1 to 1,024 bytes" if column.field == KEY_FIELD else None
    match column.type:
        case ColumnType.INT64 if not _INT64.match(value):
            return "is not an integer"
        case ColumnType.INT64 if value.startswith("-") and int(value) < 0:
            return "is negative"
        case ColumnType.INT64 if column.field == SIZE_FIELD and int(value) > MAX_OBJECT_SIZE:
            return f"is larger than S3's largest object ({MAX_OBJECT_SIZE:,} bytes, 5 TiB)"
        case ColumnType.BOOLEAN if value not in (TRUE, FALSE):
            return f"is not {TRUE} or {FALSE}"
        case ColumnType.TIMESTAMP_MS_UTC if not _TIMESTAMP.match(value):
            return "is not a UTC timestamp like 2024-01-31T23:59:59.000Z"
        case ColumnType.STRING if column.field == KEY_FIELD:
            try:
                decode_key(value)
            except UnicodeDecodeError:
                return "does not URL-decode to UTF-8"
    return None


def _excerpt(row: list[str]) -> str:
    text = ",".join(row)
    return repr(text[:200] + ("..." if len(text) > 200 else ""))
