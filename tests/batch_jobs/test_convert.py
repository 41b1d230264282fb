"""The typed conversion of batches: key decoding against the contract's reference rule, on many
random keys; a malformed row named by its file and line; the part streamed from batches."""

from __future__ import annotations

import random
from pathlib import Path
from urllib.parse import quote_plus

import polars as pl
import pytest

from batch_jobs.convert import MalformedRowError, parse_batch, write_part
from batch_jobs.source import Batch
from inventory_contract.schema import columns_for, decode_key

ALPHABET = list("abcXYZ019 /+%=&?#,\"'\t\n;:@!$()[]{}~*^`|\\<>") + list("éüßñ日本語😀🎉\u00a0\u200b")


def _random_keys(n: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 30))) for _ in range(n)]


def _encodings(key: str, rng: random.Random) -> str:
    encoded = quote_plus(key, safe="/")
    if rng.random() < 0.3:  # lower-case hex and an encoded "/" are valid too
        encoded = encoded.replace("/", "%2F")
    if rng.random() < 0.3:
        encoded = "".join(c.lower() if i and encoded[i - 1] == "%" else c for i, c in enumerate(encoded))
    return encoded


def test_vectorised_decoding_equals_the_reference_on_random_keys(tmp_path: Path):
    rng = random.Random(11)
    keys = _random_keys(3000)
    encoded = [_encodings(k, rng) for k in keys] + ["%2541", "%252B", "a%ZZb", "100%", "%4"]
    columns = columns_for(["Bucket", "Key"])
    rows = [f'"b","{e}"\n'.encode() for e in encoded]
    batches = [
        Batch(b"".join(rows[i : i + 500]), i + 1, len(rows[i : i + 500])) for i in range(0, len(rows), 500)
    ]
    stats = write_part(
        (parse_batch(b, columns, uri="test") for b in batches), tmp_path / "part.parquet", columns
    )
    assert stats["rows"] == len(rows)
    decoded = pl.read_parquet(tmp_path / "part.parquet")["key"].to_list()
    assert decoded == [decode_key(e) for e in encoded]
    assert decoded[: len(keys)] == keys  # and the round trip is exact


def test_a_malformed_row_is_named_by_the_file_and_its_line(tmp_path: Path):
    columns = columns_for(["Bucket", "Key", "Size"])
    batch = Batch(b'"b","k1","1"\n"b","k2","-5"\n"b","k3","3"\n', first_line=1001, rows=3)
    with pytest.raises(MalformedRowError) as err:
        parse_batch(batch, columns, uri="s3://d/inv/data/x.csv.gz")
    assert str(err.value) == "s3://d/inv/data/x.csv.gz: line 1002: field Size (size) is negative: '-5'"


def test_an_unquoted_empty_last_field_is_valid(tmp_path: Path):
    columns = columns_for(["Bucket", "Key", "Size"])
    frame = parse_batch(Batch(b'"b","k1",\n"b","k2","7"\n', 1, 2), columns, uri="x")
    assert frame["size"].to_list() == [None, 7]


def test_a_failure_while_writing_leaves_no_part(tmp_path: Path):
    columns = columns_for(["Bucket", "Key"])

    def frames():  # type: ignore[no-untyped-def]
        yield parse_batch(Batch(b'"b","k"\n', 1, 1), columns, uri="x")
        raise MalformedRowError("x: line 2: bad")

    with pytest.raises(MalformedRowError, match="x: line 2: bad"):
        write_part(frames(), tmp_path / "part.parquet", columns)
    assert not (tmp_path / "part.parquet").exists()


def test_a_chunk_of_no_rows_is_a_part_of_zero_rows_with_the_tables_columns(tmp_path: Path):
    columns = columns_for(["Bucket", "Key", "Size"])
    stats = write_part(iter(()), tmp_path / "part.parquet", columns)
    part = pl.read_parquet(tmp_path / "part.parquet")
    assert (stats["rows"], part.height) == (0, 0)
    assert "key" in part.columns and "storage_class" in part.columns  # the stable table's columns
