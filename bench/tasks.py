"""The measured tasks, each run in its own process by the harness: ``python -m bench.tasks TASK ...``."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from inventory_contract.schema import KNOWN_FIELDS, ColumnType, columns_for

COLUMNS = columns_for(KNOWN_FIELDS)


def _source(path: Path, file: int = 0) -> tuple[object, object]:
    """A local data file as a whole-file source of the plan, on the local storage backend."""
    import hashlib

    from batch_jobs.source import Source
    from batch_jobs.storage import LocalStorage

    store = LocalStorage("bench", out=path.parent / ".bench-out", inputs=path.parent)
    data = path.read_bytes()
    return store, Source(file, path.name, len(data), hashlib.md5(data).hexdigest())


def process(gz: str, out: str) -> None:
    """The processor's conversion of one whole gzip data file: read, check, inflate, parse, type, sink."""
    from batch_jobs.convert import parse_batch, write_part
    from batch_jobs.source import SourceStats, read_source

    store, source = _source(Path(gz))
    stats = SourceStats(0, source.key, 0, 1)  # type: ignore[attr-defined]
    frames = (parse_batch(b, COLUMNS, uri=gz) for b in read_source(store, source, stats))  # type: ignore[arg-type]
    write_part(frames, Path(out), COLUMNS)


def process_whole(gz: str, out: str) -> None:
    """The processor child's whole work on one data file: the conversion, its partial rollups and
    its identity hashes."""
    from batch_jobs.duplicates import write_partial
    from batch_jobs.rollups import partials
    from inventory_contract.rollups import DEFAULT_PREFIX_DEPTH

    process(gz, out)
    partials(Path(out), "2026-11-24", DEFAULT_PREFIX_DEPTH)
    write_partial(Path(out), Path(out).with_suffix(".identities"))


def jobs(root: str, bucket: str, manifest_key: str, target: str, write_root: str, counts: str) -> None:
    """A whole run's jobs, in this process, on local storage wrapped to count what each would ask of
    S3: ``counts`` gets one JSON object per job, its storage calls and their bytes."""
    import json
    import os
    import time

    from batch_jobs.finalize import finalize
    from batch_jobs.process import process as run_child
    from batch_jobs.run import load_run
    from batch_jobs.split import split as run_split
    from batch_jobs.storage import LocalStorage
    from inventory_contract.delivery import parse_delivery_key
    from inventory_contract.jsonlog import JsonLogger

    inner = LocalStorage(bucket, out=Path(write_root) / bucket, inputs=Path(root) / bucket)
    store = CountingStorage(inner)
    d = parse_delivery_key(manifest_key)
    run = load_run(store, f"s3://{bucket}/{manifest_key}", d.source_bucket, d.run_date)  # type: ignore[arg-type]
    log = JsonLogger(io.StringIO())
    found = []

    def measured(job: str, work) -> None:  # type: ignore[no-untyped-def]
        """Run one job in a forked child (the imports are shared, as in a warm process), so that its
        CPU and peak memory are its own (wait4), as each job is a task of its own on AWS."""
        reader, writer = os.pipe()
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.close(reader)
            code = 0
            try:
                store.counts.clear()
                work()
                os.write(writer, json.dumps(store.requests()).encode())
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 1
            finally:
                os.close(writer)
                os._exit(code)
        os.close(writer)
        with os.fdopen(reader) as pipe:
            requests = pipe.read()
        _, status, usage = os.wait4(pid, 0)
        if status != 0:
            msg = f"bench jobs: the {job} job failed (status {status})"
            raise SystemExit(msg)
        found.append(
            {
                "job": job,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "wall_s": time.perf_counter() - started,
                "peak_rss": usage.ru_maxrss * 1024,
                **json.loads(requests),
            }
        )

    from inventory_contract.plan import plan_chunks

    chunks = plan_chunks([f.size for f in run.manifest.files], int(target)).count
    measured("split", lambda: run_split(store, run, chunks, target_chunk_bytes=int(target), log=log))  # type: ignore[arg-type]
    for index in range(chunks):
        measured("process", lambda i=index: run_child(store, run, i, log=log))  # type: ignore[arg-type]
    measured("finalize", lambda: finalize(store, run, chunks, log=log))  # type: ignore[arg-type]
    peak = max(j["peak_rss"] for j in found)  # the largest single job, as each is a task on AWS
    Path(counts).write_text(json.dumps({"chunks": chunks, "jobs": found, "peak_rss": peak}))


class CountingStorage:
    """The storage interface, counting each call as the S3 requests it makes on AWS (S3Storage)."""

    MULTIPART_PART = 64 * 2**20  # batch_jobs/s3io.py TRANSFER: parts of 64 MiB above 64 MiB

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.bucket = inner.bucket
        self.counts: dict[str, int] = {}

    def _count(self, kind: str, n: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n

    def requests(self) -> dict[str, int]:
        return dict(self.counts)

    def uri(self, key: str) -> str:
        return self.inner.uri(key)

    def read(self, key: str) -> bytes:
        self._count("GET")
        return self.inner.read(key)

    def open(self, key: str):  # type: ignore[no-untyped-def]
        self._count("GET")
        return self.inner.open(key)

    def tail(self, key: str, size: int) -> bytes:
        self._count("GET")
        return self.inner.tail(key, size)

    def size(self, key: str) -> int:
        self._count("HEAD")
        return self.inner.size(key)

    def write(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self._count("PUT")
        self.inner.write(key, data, content_type)

    def fetch(self, key: str, path: Path) -> None:
        size = self.inner.size(key)
        self._count("GET", max(1, -(-size // self.MULTIPART_PART)) if size > self.MULTIPART_PART else 1)
        self.inner.fetch(key, path)

    def store(self, path: Path, key: str) -> None:
        size = path.stat().st_size
        parts = -(-size // self.MULTIPART_PART)
        self._count("PUT", parts + 2 if size > self.MULTIPART_PART else 1)  # create, parts, complete
        self.inner.store(path, key)

    def list(self, prefix: str):  # type: ignore[no-untyped-def]
        found = list(self.inner.list(prefix))
        self._count("LIST", max(1, -(-len(found) // 1000)))
        return iter(found)

    def delete(self, key: str) -> None:
        self._count("DELETE")
        self.inner.delete(key)

    def version(self, key: str) -> str | None:
        self._count("HEAD")
        return self.inner.version(key)

    def scratch(self) -> Path | None:
        return self.inner.scratch()


def interpreter_seconds(runs: int = 3) -> float:
    """What a job's start costs here: a new interpreter importing the processor (median wall)."""
    import statistics
    import subprocess
    import time

    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import batch_jobs.process, batch_jobs.finalize"], check=True)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def inflate_seconds_per_gb(path: Path) -> float:
    """ISA-L inflate alone (what a later piece of a cut file spends on the head it skips), per GB of
    gzip, in this process."""
    import time

    from batch_jobs.source import GZIP_WBITS, zlib_impl

    data = path.read_bytes()
    started = time.perf_counter()
    inflate = zlib_impl.decompressobj(GZIP_WBITS)
    for at in range(0, len(data), 1 << 20):
        inflate.decompress(data[at : at + (1 << 20)])
    return (time.perf_counter() - started) / (len(data) / 1e9)


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


def pyarrow(gz: str, out: str) -> None:
    """pyarrow's streaming CSV reader on the same gzip file, typed without any key decoding."""
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
        gz,
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
        "process": process,
        "process_whole": process_whole,
        "jobs": jobs,
        "duckdb": duckdb,
        "pyarrow": pyarrow,
        "next-day": next_day,
        "duckdb-changes": duckdb_changes,
    }
    tasks[task](*args)
