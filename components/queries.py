"""The Athena named queries, in Athena's dialect (Trino), with ``?`` positional parameters.

``{table}`` is replaced by the qualified table name. The tests transpile each query to DuckDB with
sqlglot and run it over real output of the pipeline, asserting its results.

The day-over-day queries take two parameters, the previous run date then the current one, and
follow the rules of the local ``changes`` command (batch_jobs/changes.py): only current objects
count (delete markers and noncurrent versions are left out), objects are matched on key and
version id (a null version id equal to a null one), and a size or ETag change is ``modified``
even when the storage class moved too. An object listed more than once in one run counts once,
as its row with the latest last-modified date, then the largest size, ETag and class (the local
command's ``KEEP_ORDER``).
"""

from __future__ import annotations

from inventory_contract.schema import KEEP_ORDER

_CURRENT = "coalesce(is_latest, true) AND NOT coalesce(is_delete_marker, false)"
_SIZE = "CAST(size AS DECIMAL(38, 0))"
"""Sizes are summed as DECIMAL(38, 0): Trino's sum of a bigint is a bigint, which fails the query
past 2^63 bytes (a few million objects at S3's 5 TiB maximum)."""
_COMPARED = "source_bucket, key, version_id, size, e_tag, storage_class, last_modified_date"
_ONCE = (
    "row_number() OVER (PARTITION BY source_bucket, key, coalesce(version_id, '') ORDER BY "
    + ", ".join(f"{c} DESC NULLS LAST" for c in KEEP_ORDER)
    + ") AS copy"
)
CHANGES = f"""WITH previous AS (
  SELECT {_COMPARED} FROM (SELECT {_COMPARED}, {_ONCE} FROM {{table}} WHERE run_date = ? AND {_CURRENT})
  WHERE copy = 1
), latest AS (
  SELECT {_COMPARED} FROM (SELECT {_COMPARED}, {_ONCE} FROM {{table}} WHERE run_date = ? AND {_CURRENT})
  WHERE copy = 1
), compared AS (
  SELECT coalesce(l.source_bucket, p.source_bucket) AS source_bucket,
         CASE WHEN p.key IS NULL THEN 'added'
              WHEN l.key IS NULL THEN 'deleted'
              WHEN p.size IS DISTINCT FROM l.size OR p.e_tag IS DISTINCT FROM l.e_tag THEN 'modified'
              WHEN p.storage_class IS DISTINCT FROM l.storage_class THEN 'storage_class_changed'
         END AS change,
         coalesce(l.key, p.key) AS key, coalesce(l.version_id, p.version_id) AS version_id,
         p.size AS size_before, l.size AS size_after, p.e_tag AS e_tag_before, l.e_tag AS e_tag_after,
         p.storage_class AS storage_class_before, l.storage_class AS storage_class_after,
         p.last_modified_date AS last_modified_date_before, l.last_modified_date AS last_modified_date_after
  FROM previous p
  FULL OUTER JOIN latest l
    ON l.source_bucket = p.source_bucket AND l.key = p.key
   AND coalesce(l.version_id, '') = coalesce(p.version_id, '')
), changes AS (
  SELECT * FROM compared WHERE change IS NOT NULL
)
"""
"""Every changed current object between two run dates (parameters: previous, current), as the CTE
``changes`` (the benchmark runs it in DuckDB beside the ``changes`` command). Version ids are compared through coalesce: an equality Athena can hash-join on, where
``IS NOT DISTINCT FROM`` in a full outer join's condition is not."""

NAMED_QUERIES: dict[str, tuple[str, str]] = {
    "storage-by-class": (
        "Objects and bytes by storage class for one run date (parameter: run date, YYYY-MM-DD)",
        f"""SELECT source_bucket, storage_class, count(*) AS objects, sum({_SIZE}) AS bytes
FROM {{table}}
WHERE run_date = ? AND NOT coalesce(is_delete_marker, false)
GROUP BY source_bucket, storage_class
ORDER BY bytes DESC""",
    ),
    "largest-prefixes": (
        "The 20 top-level prefixes holding the most bytes (parameter: run date)",
        f"""SELECT source_bucket, split_part(key, '/', 1) AS prefix, count(*) AS objects, sum({_SIZE}) AS bytes
FROM {{table}}
WHERE run_date = ? AND NOT coalesce(is_delete_marker, false)
GROUP BY source_bucket, split_part(key, '/', 1)
ORDER BY bytes DESC
LIMIT 20""",
    ),
    "not-modified-for-a-year": (
        "Current objects not modified in the 365 days before the run date (the age rollup's bands from "
        "1-2y on), by storage class; the same answer whenever it is asked (parameter: run date)",
        f"""SELECT source_bucket, storage_class, count(*) AS objects, sum({_SIZE}) AS bytes
FROM {{table}}
WHERE run_date = ?
  AND coalesce(is_latest, true) AND NOT coalesce(is_delete_marker, false)
  AND last_modified_date <= from_iso8601_timestamp(run_date || 'T00:00:00Z') - INTERVAL '365' DAY
GROUP BY source_bucket, storage_class
ORDER BY bytes DESC""",
    ),
    "delete-markers": (
        "Delete markers by top-level prefix, and how many are the latest version (parameter: run date)",
        """SELECT source_bucket, split_part(key, '/', 1) AS prefix, count(*) AS delete_markers,
       count_if(is_latest) AS latest_delete_markers
FROM {table}
WHERE run_date = ? AND is_delete_marker
GROUP BY source_bucket, split_part(key, '/', 1)
ORDER BY delete_markers DESC""",
    ),
    "changes-by-kind": (
        "Objects and bytes added, deleted, modified and moved between storage classes since the previous "
        "run (parameters: previous run date, current run date)",
        CHANGES
        + """SELECT source_bucket, change, count(*) AS objects,
       coalesce(sum(CAST(size_before AS DECIMAL(38, 0))), 0) AS bytes_before,
       coalesce(sum(CAST(size_after AS DECIMAL(38, 0))), 0) AS bytes_after
FROM changes
GROUP BY source_bucket, change
ORDER BY source_bucket, change""",
    ),
    "changed-objects": (
        "Every object added, deleted, modified or moved between storage classes, with its size, ETag and "
        "class before and after (parameters: previous run date, current run date)",
        CHANGES + "SELECT * FROM changes\nORDER BY source_bucket, change, key, version_id",
    ),
    "largest-changes": (
        "The 100 largest changes since the previous run: bytes added, deleted, grown or shrunk, or moved "
        "to another class (parameters: previous run date, current run date)",
        CHANGES
        + """SELECT *, CASE WHEN change = 'modified' THEN abs(size_after - size_before)
                 ELSE coalesce(size_after, size_before) END AS bytes_changed
FROM changes
ORDER BY bytes_changed DESC, source_bucket, key, version_id
LIMIT 100""",
    ),
    "listed-more-than-once": (
        "Objects (key and version id) that one run lists more than once, which the day-over-day "
        "queries count once (parameter: run date)",
        """SELECT source_bucket, key, version_id, count(*) AS listed
FROM {table}
WHERE run_date = ?
GROUP BY source_bucket, key, version_id
HAVING count(*) > 1
ORDER BY listed DESC, source_bucket, key, version_id
LIMIT 1000""",
    ),
    "duplicate-candidates": (
        "Current objects that may be copies of each other: the same size and single-part ETag (no '-') "
        "under more than one key (a key listed twice counts once), most redundant bytes first "
        "(parameter: run date)",
        f"""SELECT source_bucket, size, e_tag, count(DISTINCT key) AS objects,
       (count(DISTINCT key) - 1) * {_SIZE} AS redundant_bytes,
       min(key) AS first_key, max(key) AS last_key
FROM {{table}}
WHERE run_date = ? AND {_CURRENT}
  AND size > 0 AND strpos(e_tag, '-') = 0
GROUP BY source_bucket, size, e_tag
HAVING count(DISTINCT key) > 1
ORDER BY redundant_bytes DESC, source_bucket, first_key
LIMIT 1000""",
    ),
}
