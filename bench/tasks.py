"""The measured tasks, each run in its own process by the harness: ``python -m bench.tasks TASK ...``."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from inventory_contract.schema import KNOWN_FIELDS, ColumnType, columns_for

COLUMNS = columns_for(KNOWN_FIELDS)


def split(root: str, bucket: str, manifest_key: str, chunks: str, write_root: str) -> None:
    from batch_jobs.run import load_run
    from batch_jobs.split import split as run_split
    from batch_jobs.storage import LocalStorage
    from inventory_contract.delivery import parse_delivery_key
    from inventory_contract.jsonlog import JsonLogger

    store = LocalStorage(bucket, out=Path(write_root) / bucket, inputs=Path(root) / bucket)
    d = parse_delivery_key(manifest_key)
    run = load_run(store, f"s3://{bucket}/{manifest_key}", d.source_bucket, d.run_date)
    run_split(store, run, int(chunks), log=JsonLogger(io.StringIO()))


def process(chunk: str, out: str) -> None:
    from batch_jobs.convert import convert_chunk

    convert_chunk(Path(chunk), Path(out), COLUMNS, chunk_uri=chunk)


def process_rollups(chunk: str, out: str) -> None:
    """The processor child's whole work on its chunk: the conversion, then its partial rollups."""
    from batch_jobs.convert import convert_chunk
    from batch_jobs.rollups import partials
    from inventory_contract.rollups import DEFAULT_PREFIX_DEPTH

    convert_chunk(Path(chunk), Path(out), COLUMNS, chunk_uri=chunk)
    partials(Path(out), "2026-11-24", DEFAULT_PREFIX_DEPTH)


def duckdb_sql(source: str, out: str) -> str:
    """The processor's typed transform, key decoding included, as one DuckDB COPY."""
    casts = []
    for i, c in enumerate(COLUMNS):
        raw = f"nullif(column{i:02d}, '')"
        if c.type is ColumnType.INT64:
            casts.append(f"CAST({raw} AS BIGINT) AS {c.name}")
        elif c.type is ColumnType.BOOLEAN:
            casts.append(f"CAST({raw} AS BOOLEAN) AS {c.name}")
        elif c.type is ColumnType.TIMESTAMP_MS_UTC:
            casts.append(f"CAST(strptime({raw}, '%Y-%m-%dT%H:%M:%S.%gZ') AS TIMESTAMP_MS) AS {c.name}")
        elif c.field == "Key":
            casts.append(f"url_decode(replace({raw}, '+', ' ')) AS {c.name}")
        else:
            casts.append(f"{raw} AS {c.name}")
    columns = ", ".join(f"'column{i:02d}': 'VARCHAR'" for i in range(len(COLUMNS)))
    return (
        f"COPY (SELECT {', '.join(casts)} FROM read_csv({source}, header = false, quote = '\"', "
        f"columns = {{{columns}}})) TO '{out}' (FORMAT parquet, COMPRESSION zstd)"
    )


def duckdb(source: str, out: str) -> None:
    import duckdb as db

    files = [f"'{p}'" for p in source.split(",")]
    db.sql(duckdb_sql(f"[{', '.join(files)}]", out))


def pyarrow(chunk: str, out: str) -> None:
    import pyarrow as pa
    import pyarrow.csv as csv
    import pyarrow.parquet as pq

    types = {
        ColumnType.STRING: pa.string(),
        ColumnType.INT64: pa.int64(),
        ColumnType.BOOLEAN: pa.bool_(),
        ColumnType.TIMESTAMP_MS_UTC: pa.timestamp("ms", tz="UTC"),
    }
    reader = csv.open_csv(
        chunk,
        read_options=csv.ReadOptions(column_names=[c.name for c in COLUMNS], block_size=16 << 20),
        convert_options=csv.ConvertOptions(
            column_types={c.name: types[c.type] for c in COLUMNS},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )
    with pq.ParquetWriter(out, reader.schema, compression="zstd") as writer:
        for batch in reader:
            writer.write_batch(batch)


def generate(bucket_root: str, rows: str, files: str) -> None:
    import json

    from pipeline.synthetic import generate_delivery

    root = Path(bucket_root)
    gen = generate_delivery(
        root, objects=int(rows), files=int(files), destination_bucket=root.name, tricky_share=0.05
    )
    meta = {"manifest_key": gen.delivery.manifest_key, "data_keys": list(gen.data_keys)}
    (root.parent / "generated.json").write_text(json.dumps(meta))


def next_day(bucket_root: str, manifest_key: str, data_keys: str, rows: str) -> None:
    """Derive the next day of a generated inventory into its bucket folder, about 1% of rows changed;
    its manifest key goes to ``next-day.json`` beside the bucket folder."""
    import json

    from inventory_contract.delivery import parse_delivery_key
    from pipeline.synthetic import GeneratedDelivery, Truth
    from pipeline.synthetic_changes import Plan
    from pipeline.synthetic_changes import next_day as derive

    root = Path(bucket_root)
    keys = tuple(data_keys.split(","))
    day1 = GeneratedDelivery(root, parse_delivery_key(manifest_key), root.name, keys, Truth())
    share = max(int(rows) // 100, 1)
    plan = Plan(added=share, deleted=share, modified=share, moved=share, modified_and_moved=share // 2,
                delete_marked=share // 2, noncurrent_moved=share // 2, copies=share // 10)  # fmt: skip
    day2 = derive(day1, root, plan)
    (root.parent / "next-day.json").write_text(
        json.dumps({"manifest_key": day2.delivery.delivery.manifest_key})
    )


def duckdb_changes(out: str, source_bucket: str, before: str, after: str, target: str) -> None:
    """The saved Athena query's changes, transpiled to DuckDB, over the same two run partitions."""
    import duckdb as db
    import sqlglot

    from components.queries import CHANGES

    parts = f"{out}/processed/source_bucket={source_bucket}/run_date=*/*.parquet"
    db.sql(f"CREATE VIEW inventory AS SELECT * FROM read_parquet('{parts}', hive_partitioning = true)")
    trino = CHANGES.format(table="inventory") + "SELECT * FROM changes"
    sql = sqlglot.transpile(trino, read="trino", write="duckdb")[0]
    sql = sql.replace("?", f"'{before}'", 1).replace("?", f"'{after}'", 1)
    db.sql(f"COPY ({sql}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)")


if __name__ == "__main__":
    task, *args = sys.argv[1:]
    tasks = {
        "generate": generate,
        "split": split,
        "process": process,
        "process_rollups": process_rollups,
        "duckdb": duckdb,
        "pyarrow": pyarrow,
        "next-day": next_day,
        "duckdb-changes": duckdb_changes,
    }
    tasks[task](*args)
