"""The rollups as text: one line per row whatever the keys hold, only the version kinds present."""

from __future__ import annotations

from pipeline.rollups_view import bytes_by_class, render_rollups

ROLLUPS = {
    "storage_class": [
        {"storage_class": "STANDARD", "version_kind": "current", "objects": 3, "bytes": 3072},
        {"storage_class": "GLACIER", "version_kind": "current", "objects": 1, "bytes": 5 * 1024**3},
    ],
    "age": [{"age_band": "1-2y", "storage_class": "STANDARD", "version_kind": "current", "objects": 4, "bytes": 9}],
    "encryption": [{"encryption_status": "SSE-S3", "objects": 4, "bytes": 9}],
    "prefix_depth": 2,
    "largest_prefixes": [
        {
            "depth": 1,
            "prefix": "new\nline/",
            "objects": 2,
            "bytes": 2048,
            "oldest_last_modified": "2025-01-01T00:00:00.000Z",
            "newest_last_modified": "2026-11-01T00:00:00.000Z",
        },
        {"depth": 1, "prefix": "", "objects": 2, "bytes": 1024, "oldest_last_modified": None, "newest_last_modified": None},
    ],
}  # fmt: skip


def test_each_row_is_one_line_with_control_characters_escaped():
    text = render_rollups(ROLLUPS)
    assert "  new\\nline/" in text and "new\nline" not in text
    assert "  (top level)" in text and "last modified - .. -" in text
    assert "noncurrent" not in text and "delete_marker" not in text  # kinds the run does not have
    assert len(text.splitlines()) == 1 + 1 + 2 + 1 + 2 + 1 + 1 + 1 + 1


def test_bytes_by_class_are_largest_first():
    assert list(bytes_by_class(ROLLUPS).items()) == [("GLACIER", 5 * 1024**3), ("STANDARD", 3072)]


def test_a_run_without_rollups_says_so():
    assert render_rollups({}) == "rollups:          none (the run did not reconcile)"


def test_a_class_split_by_access_tier_is_one_line_of_its_sums():
    tiers = {
        **ROLLUPS,
        "storage_class": [
            {"storage_class": "INTELLIGENT_TIERING", "version_kind": "current", "intelligent_tiering_access_tier": tier,
             "objects": objects, "bytes": size}
            for tier, objects, size in (("FREQUENT", 2, 2048), ("ARCHIVE", 3, 1024**3), (None, 1, 0))
        ],
    }  # fmt: skip
    [line] = [line for line in render_rollups(tiers).splitlines() if "INTELLIGENT_TIERING" in line]
    assert line.split() == ["INTELLIGENT_TIERING", "6", "/", "1.0", "GiB"]
    assert bytes_by_class(tiers) == {"INTELLIGENT_TIERING": 1024**3 + 2048}
