"""Answers computed with DuckDB straight from the Parquet parts, sharing no code with the product."""

from __future__ import annotations

from pathlib import Path

import duckdb


def current_objects_sql(folder: Path) -> str:
    """The current versions that are not delete markers of one run partition, as a subquery."""
    return (
        f"(select key, coalesce(version_id, '') as v, size, e_tag, storage_class from "
        f"read_parquet('{folder}/*.parquet') where coalesce(is_latest, true) "
        "and not coalesce(is_delete_marker, false))"
    )


def changes_by_kind(before: Path, after: Path) -> dict[str, tuple[int, int, int]]:
    """(objects, bytes before, bytes after) per kind of change between two run partitions: objects
    matched on key and version id; size or ETag differ: modified; else class differs: moved."""
    rows = duckdb.sql(
        f"""
        select case
                 when a.key is null then 'added'
                 when b.key is null then 'deleted'
                 when a.size is distinct from b.size or a.e_tag is distinct from b.e_tag then 'modified'
                 when a.storage_class is distinct from b.storage_class then 'storage_class_changed'
               end as change, count(*), coalesce(sum(a.size::hugeint), 0), coalesce(sum(b.size::hugeint), 0)
        from {current_objects_sql(before)} a
        full outer join {current_objects_sql(after)} b on a.key = b.key and a.v = b.v
        group by all having change is not null
        """
    ).fetchall()
    return {kind: (int(n), int(b), int(a)) for kind, n, b, a in rows}


def reclaimable_bytes(folder: Path) -> int:
    """Bytes held by copies beyond the first of each (size, single-part ETag) under several keys."""
    [(total,)] = duckdb.sql(
        f"""
        select coalesce(sum((n - 1)::hugeint * size), 0) from (
          select size, e_tag, count(distinct key) as n from {current_objects_sql(folder)}
          where size > 0 and strpos(e_tag, '-') = 0 group by size, e_tag having count(distinct key) > 1)
        """
    ).fetchall()
    return int(total)
