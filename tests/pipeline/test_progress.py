"""The console's progress lines, from what the jobs log."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.local.executor import _progress_line, _rows_written


def test_the_splitters_progress_is_relayed_with_its_rate() -> None:
    line = json.dumps(
        {
            "level": "INFO",
            "message": "split progress",
            "uncompressed_bytes": 3_200_000_000,
            "rows": 5_300_000,
            "compressed_bytes_done": 400,
            "compressed_bytes_total": 1600,
            "mb_per_s": 312.4,
        }
    )
    assert _progress_line(line) == "3,200 MB of CSV, 5,300,000 rows, 25% of the delivery, 312 MB/s"
    assert _progress_line(json.dumps({"message": "split done"})) is None
    assert _progress_line("Traceback (most recent call last):") is None


def test_a_childs_rows_come_from_its_last_part_written_line(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    log.write_text(
        json.dumps({"message": "chunk fetched", "bytes": 10})
        + "\nnot json\n"
        + json.dumps({"message": "part written", "rows": 1234})
        + "\n"
    )
    assert _rows_written(log) == 1234
    log.write_text("error: bad input\n")
    assert _rows_written(log) is None
