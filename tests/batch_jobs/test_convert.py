"""The vectorised key decoding against the contract's reference rule, on many random keys."""

from __future__ import annotations

import random
from pathlib import Path
from urllib.parse import quote_plus

import polars as pl

from batch_jobs.convert import convert_chunk
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
    chunk = tmp_path / "chunk.csv"
    chunk.write_text("".join(f'"b","{e}"\n' for e in encoded))
    convert_chunk(chunk, tmp_path / "part.parquet", columns_for(["Bucket", "Key"]), chunk_uri="test")
    decoded = pl.read_parquet(tmp_path / "part.parquet")["key"].to_list()
    assert decoded == [decode_key(e) for e in encoded]
    assert decoded[: len(keys)] == keys  # and the round trip is exact
