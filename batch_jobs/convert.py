"""The typed transform of one chunk, as Polars lazy frames: read -> transform -> sink.

Every column is read as a string with an explicit schema (no inference), then typed by the
contract: ``""`` becomes null, ``Size`` Int64, dates Datetime(ms, UTC), ``Is*`` booleans, and
``Key`` is decoded as S3 encodes it (``+`` is a space, ``%XX`` are UTF-8 bytes). Decoding is
vectorised except for keys that contain ``%``, which go through ``urllib.parse.unquote``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote

import polars as pl

from pipeline.contract.schema import FALSE, TIMESTAMP_FORMAT, TRUE, Column, ColumnType

POLARS_TYPES: dict[ColumnType, pl.DataType] = {
    ColumnType.STRING: pl.String(),
    ColumnType.INT64: pl.Int64(),
    ColumnType.BOOLEAN: pl.Boolean(),
    ColumnType.TIMESTAMP_MS_UTC: pl.Datetime("ms", "UTC"),
}
MISSING_FIELDS = "__missing_fields"


def output_schema(columns: Sequence[Column]) -> pl.Schema:
    return pl.Schema({c.name: POLARS_TYPES[c.type] for c in columns})


def scan_chunk(path: Path, columns: Sequence[Column]) -> pl.LazyFrame:
    """The chunk as raw strings: no header, every field a String, quotes removed."""
    return pl.scan_csv(
        path,
        has_header=False,
        schema={c.name: pl.String for c in columns},
        quote_char='"',
        raise_if_empty=False,
        encoding="utf8",
    )


def typed(raw: pl.LazyFrame, columns: Sequence[Column]) -> pl.LazyFrame:
    """Raw strings -> the contract's types, in the manifest's field order."""
    return raw.select(_typed_column(c) for c in columns)


def missing_field_rows(columns: Sequence[Column]) -> pl.Expr:
    """Rows that ended early: Polars fills their missing trailing fields with null, while a field
    that is present but empty reads as "" (quoted). An unquoted empty last field also reads as null,
    so a non-zero count only sends the chunk to the exact check in ``diagnose``."""
    return pl.col(columns[-1].name).is_null().sum().alias(MISSING_FIELDS)


def _typed_column(column: Column) -> pl.Expr:
    raw = pl.col(column.name)
    value: pl.Expr = pl.when(raw.str.len_bytes() > 0).then(raw)  # "" -> null
    match column.type:
        case ColumnType.INT64:
            value = value.cast(pl.Int64, strict=True)
        case ColumnType.BOOLEAN:
            value = value.replace_strict([TRUE, FALSE], [True, False], return_dtype=pl.Boolean)
        case ColumnType.TIMESTAMP_MS_UTC:
            value = value.str.to_datetime(TIMESTAMP_FORMAT, time_unit="ms", time_zone="UTC", strict=True)
        case ColumnType.STRING if column.field == "Key":
            value = value.str.replace_all("+", " ", literal=True).map_batches(
                _percent_decode, return_dtype=pl.String, is_elementwise=True
            )
    return value.alias(column.name)


def decode_key(raw: str) -> str:
    """One key as S3 Inventory encodes it: ``+`` -> space, then ``%XX`` -> UTF-8 bytes."""
    return unquote(raw.replace("+", " "), errors="strict")


def _percent_decode(keys: pl.Series) -> pl.Series:
    has_escape = keys.str.contains("%", literal=True).fill_null(False)
    if not has_escape.any():
        return keys
    where = has_escape.arg_true()
    decoded = [unquote(k, errors="strict") for k in keys.gather(where).to_list()]
    return keys.scatter(where, pl.Series(decoded, dtype=pl.String))
