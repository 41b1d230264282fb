"""Rows of CSV converted to a Parquet part as a processor child converts them (one batch)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from batch_jobs.convert import parse_batch, write_part
from batch_jobs.source import Batch
from inventory_contract.schema import Column


def convert_rows(rows: bytes, part: Path, columns: Sequence[Column]) -> dict[str, Any]:
    """``rows`` (whole CSV lines, as S3 writes them) -> the part at ``part``; returns its stats."""
    batch = Batch(rows, first_line=1, rows=rows.count(b"\n"))
    return write_part([parse_batch(batch, columns, uri=str(part))], part, columns)
