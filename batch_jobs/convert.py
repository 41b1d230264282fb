"""The typed transform of a chunk's rows with Polars: parse each batch, type it, sink the part.

Rows arrive in batches of whole rows (``batch_jobs/source.py``); each is parsed with every column a
string (an explicit schema, no inference) and typed by the contract, and the typed batches stream
into one Parquet part through a Polars IO source (``register_io_source``) and ``sink_parquet``, so
memory holds a batch or two whatever the chunk's size. Typing: ``""`` becomes null, ``Size`` Int64, dates Datetime(ms, UTC), ``Is*`` booleans, and
``Key`` is decoded as S3 encodes it (``+`` is a space, ``%XX`` are UTF-8 bytes). Decoding is
vectorised (``+`` and every ASCII escape such as ``%3D`` in Hive-style keys, in one pass) except for
keys with an escaped non-ASCII byte, which go through ``inventory_contract.schema.decode_key``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

import polars as pl
from polars.io.plugins import register_io_source

from batch_jobs.diagnose import first_malformed_row
from batch_jobs.source import Batch
from inventory_contract.schema import (
    FALSE,
    KEY_FIELD,
    MAX_OBJECT_SIZE,
    SIZE_FIELD,
    TIMESTAMP_FORMAT,
    TRUE,
    Column,
    ColumnType,
    table_columns,
)

PARQUET_COMPRESSION: Final = "zstd"
PARQUET_COMPRESSION_LEVEL = 1  # measured on inventory data: faster than zstd's default 3, files no larger


class MalformedRowError(ValueError):
    """A row cannot be typed; the message names the data file, its line and the value."""


POLARS_TYPES: dict[ColumnType, pl.DataType] = {
    ColumnType.STRING: pl.String(),
    ColumnType.INT64: pl.Int64(),
    ColumnType.BOOLEAN: pl.Boolean(),
    ColumnType.TIMESTAMP_MS_UTC: pl.Datetime("ms", "UTC"),
    ColumnType.BYTE_TOTAL: pl.Decimal(38, 0),
}
INVALID_ROW = "invalid row: short, or a value S3 never writes"
_FLAGS = pl.Enum([FALSE, TRUE])  # physical 0 = false, 1 = true
_NON_ASCII_ESCAPE = r"%[89A-Fa-f][0-9A-Fa-f]"
_ASCII_ESCAPES = {
    f"%{hi}{lo}": chr(byte)
    for byte in range(0x80)
    for hi in {f"{byte:02X}"[0], f"{byte:02x}"[0]}
    for lo in {f"{byte:02X}"[1], f"{byte:02x}"[1]}
}
"""Every ASCII escape in either case; ``replace_many`` replaces in one pass, so ``%2541`` -> ``%41``."""


def output_schema(columns: Sequence[Column]) -> pl.Schema:
    """The schema of a part converted from a delivery with these columns: the stable table's."""
    return pl.Schema({c.name: POLARS_TYPES[c.type] for c in table_columns([c.field for c in columns])})


def as_table(frame: pl.LazyFrame, columns: Sequence[Column]) -> pl.LazyFrame:
    """The typed delivery columns in the table's order, a typed null for each field it lacks."""
    present = {c.name for c in columns}
    return frame.select(
        pl.col(name) if name in present else pl.lit(None, dtype).alias(name)
        for name, dtype in output_schema(columns).items()
    )


def raw_rows(data: bytes, columns: Sequence[Column]) -> pl.DataFrame:
    """Rows of CSV as raw strings: no header, every field a String, quotes removed."""
    return pl.read_csv(
        data,
        has_header=False,
        schema={c.name: pl.String for c in columns},
        quote_char='"',
        raise_if_empty=False,
        encoding="utf8",
    )


def typed(raw: pl.LazyFrame, columns: Sequence[Column], *, guard_short_rows: bool = True) -> pl.LazyFrame:
    """Raw strings -> the contract's types, in the manifest's field order.

    Values S3 never writes fail the query, so that the exact check in ``diagnose`` names the row:
    an empty key (S3 keys are 1 to 1,024 bytes), a negative size and one past S3's 5 TiB maximum. A row that ends early reads
    with null in its missing trailing fields, while a present field, even empty, reads as ""
    (quoted). ``guard_short_rows`` makes a null last field fail the query too. An unquoted empty last
    field also reads as null: when the exact check finds no bad row, the caller converts again
    without that guard.
    """
    exprs = [_typed_column(c) for c in columns]
    invalid = [_invalid(c) for c in columns]
    if guard_short_rows:
        invalid.append(pl.col(columns[-1].name).is_null())
    checks = [check for check in invalid if check is not None]
    if checks:
        guard = (
            pl.when(pl.any_horizontal(checks).fill_null(False))
            .then(pl.lit(INVALID_ROW))
            .otherwise(pl.lit(FALSE))
            .cast(_FLAGS, strict=True)
        )
        exprs[-1] = pl.when(guard.to_physical() == 0).then(exprs[-1]).alias(columns[-1].name)
    return raw.select(exprs)


def _invalid(column: Column) -> pl.Expr | None:
    """True for a raw value S3 never writes in this column (None: every value is checked by its cast)."""
    raw = pl.col(column.name)
    if column.field == KEY_FIELD:  # quoted "" or an unquoted empty field (null)
        return raw.is_null() | (raw == "")
    if column.type is ColumnType.INT64:
        negative = raw.str.starts_with("-") & (raw != "-0")
        if column.field == SIZE_FIELD:
            return negative | (raw.cast(pl.Int64, strict=False) > MAX_OBJECT_SIZE)
        return negative
    return None


def _typed_column(column: Column) -> pl.Expr:
    raw = pl.col(column.name)
    value: pl.Expr = pl.when(raw.str.len_bytes() > 0).then(raw)  # "" -> null
    match column.type:
        case ColumnType.INT64:
            value = value.cast(pl.Int64, strict=True)
        case ColumnType.BOOLEAN:  # a strict Enum cast streams (replace_strict does not) and rejects others
            value = value.cast(_FLAGS, strict=True).to_physical().cast(pl.Boolean)
        case ColumnType.TIMESTAMP_MS_UTC:
            value = value.str.to_datetime(TIMESTAMP_FORMAT, time_unit="ms", time_zone="UTC", strict=True)
        case ColumnType.STRING if column.field == KEY_FIELD:
            value = value.map_batches(_decode_keys, return_dtype=pl.String, is_elementwise=True)
    return value.alias(column.name)


def _decode_keys(keys: pl.Series) -> pl.Series:
    """``+`` for all keys; for keys with ``%``, ASCII escapes vectorised and Python only for those
    with an escaped non-ASCII byte."""
    spaced = keys.str.replace_all("+", " ", literal=True)
    escaped = spaced.str.contains("%", literal=True).fill_null(False)
    if not escaped.any():
        return spaced
    where = escaped.arg_true()
    subset = spaced.gather(where)
    decoded = subset.str.replace_many(_ASCII_ESCAPES)
    slow = subset.str.contains(_NON_ASCII_ESCAPE)
    if slow.any():
        at = slow.arg_true()
        try:
            exact = [unquote(k, errors="strict") for k in subset.gather(at).to_list()]
        except UnicodeDecodeError as err:  # the exact check (diagnose) finds the row and says which
            msg = f"a key does not URL-decode to UTF-8 ({err.reason})"
            raise pl.exceptions.ComputeError(msg) from err
        decoded = decoded.scatter(at, pl.Series(exact, dtype=pl.String))
    return spaced.scatter(where, decoded)


def parse_batch(batch: Batch, columns: Sequence[Column], *, uri: str) -> pl.DataFrame:
    """One batch of rows of the data file at ``uri`` -> the table's typed columns.

    A value S3 never writes fails the fast path; the exact check (``diagnose``) then names the row
    by the file's line. When it finds none, the fast path stopped at an unquoted empty last field,
    which is valid: the batch is typed again without that guard."""
    try:
        return _typed_frame(batch.data, columns, guard_short_rows=True)
    except pl.exceptions.PolarsError as err:
        found = first_malformed_row(io.BytesIO(batch.data), columns)
        if found:
            line, problem = found
            msg = f"{uri}: line {batch.first_line + line - 1}: {problem}"
            raise MalformedRowError(msg) from err
        try:
            return _typed_frame(batch.data, columns, guard_short_rows=False)
        except pl.exceptions.PolarsError as again:
            last = batch.first_line + batch.rows - 1
            msg = f"{uri}: lines {batch.first_line} to {last}: cannot convert: {again}"
            raise MalformedRowError(msg) from again


def _typed_frame(data: bytes, columns: Sequence[Column], *, guard_short_rows: bool) -> pl.DataFrame:
    raw = raw_rows(data, columns).lazy()
    return as_table(typed(raw, columns, guard_short_rows=guard_short_rows), columns).collect()


def write_part(frames: Iterable[pl.DataFrame], part: Path, columns: Sequence[Column]) -> dict[str, Any]:
    """Stream typed frames into the Parquet part at ``part``; returns its stats, read back from it.

    Polars pulls the frames through an IO source as it writes, so only a frame or two is held at
    once. An error while producing them (a malformed row, a data file that does not match its
    manifest) propagates unchanged, and no part is left behind."""
    schema = output_schema(columns)
    pending: Iterator[pl.DataFrame] = iter(frames)

    def source(
        with_columns: list[str] | None, predicate: Any, n_rows: int | None, batch_size: int | None
    ) -> Iterator[pl.DataFrame]:
        yield from pending

    try:
        register_io_source(source, schema=schema).sink_parquet(
            part,
            compression=PARQUET_COMPRESSION,
            compression_level=PARQUET_COMPRESSION_LEVEL,
            statistics=True,
            engine="streaming",
        )
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    written = pl.scan_parquet(part, glob=False).collect_schema()
    if written != schema:
        msg = f"{part}: wrote schema {written}, expected {schema}"
        raise AssertionError(msg)
    return part_stats(part, columns)


def byte_total(sizes: pl.Expr) -> pl.Expr:
    """The exact sum of sizes (``pl.Expr.sum`` of Int64 wraps past 2^63 without a word)."""
    return sizes.cast(pl.Int128).sum()


def part_stats(part: Path, columns: Sequence[Column]) -> dict[str, Any]:
    """Rows, sum of sizes and the range of last_modified_date, read back from the written part."""
    names = {c.name for c in columns}
    lmd = (
        pl.col("last_modified_date")
        if "last_modified_date" in names
        else pl.lit(None, pl.Datetime("ms", "UTC"))
    )
    size = byte_total(pl.col("size")) if "size" in names else pl.lit(None, pl.Int128)
    row = (
        pl.scan_parquet(part, glob=False)
        .select(
            pl.len().alias("rows"),
            size.alias("size_sum"),
            lmd.min().alias("min_lmd"),
            lmd.max().alias("max_lmd"),
        )
        .collect()
        .row(0, named=True)
    )
    return {
        "rows": row["rows"],
        "size_sum": row["size_sum"],
        "min_last_modified_date": _iso(row["min_lmd"]),
        "max_last_modified_date": _iso(row["max_lmd"]),
    }


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
