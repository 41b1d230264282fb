"""The Athena named queries. Portable SQL (Trino and DuckDB) with one parameter, the run date.

``{table}`` is replaced by the qualified table name. A test runs each query in DuckDB over real
output of the processor, so the column names and types they use are checked.
"""

from __future__ import annotations

NAMED_QUERIES: dict[str, tuple[str, str]] = {
    "storage-by-class": (
        "Objects and bytes by storage class for one run date (parameter: run date, YYYY-MM-DD)",
        """SELECT source_bucket, storage_class, count(*) AS objects, sum(size) AS bytes
FROM {table}
WHERE run_date = ? AND NOT coalesce(is_delete_marker, false)
GROUP BY source_bucket, storage_class
ORDER BY bytes DESC""",
    ),
    "largest-prefixes": (
        "The 20 top-level prefixes holding the most bytes (parameter: run date)",
        """SELECT source_bucket, split_part(key, '/', 1) AS prefix, count(*) AS objects, sum(size) AS bytes
FROM {table}
WHERE run_date = ? AND NOT coalesce(is_delete_marker, false)
GROUP BY source_bucket, split_part(key, '/', 1)
ORDER BY bytes DESC
LIMIT 20""",
    ),
    "not-modified-for-a-year": (
        "Current objects not modified for a year, by storage class (parameter: run date)",
        """SELECT source_bucket, storage_class, count(*) AS objects, sum(size) AS bytes
FROM {table}
WHERE run_date = ?
  AND coalesce(is_latest, true) AND NOT coalesce(is_delete_marker, false)
  AND last_modified_date < current_timestamp - INTERVAL '1' YEAR
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
}
