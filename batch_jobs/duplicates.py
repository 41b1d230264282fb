"""Objects a run lists more than once: the same identity (key, version id) in two rows.

S3 does not document whether an inventory can list an object twice; a merged or hand-made delivery
certainly can. Each is found where it is cheapest to see, and the run report says how many, with
examples (``changes`` and the saved Athena queries count each identity once):

- Each processor child hashes the identity of every row of its part to 128 bits (two 64-bit
  Polars hashes with different seeds: two distinct identities share one with a chance of about
  n^2 / 2^129, 1e-21 at a billion objects), writes them sorted as a partial beside its part stats,
  and finds the identities its own part repeats, with their keys.
- Finalize merges every child's partial in buckets of hash ranges (bounded memory: one bucket of
  about ``BUCKET_ROWS`` rows at a time; the partials are sorted, so each range is read from each
  partial's matching row groups): it sorts the bucket's first hashes, and groups by both hashes only
  the rows whose first hash repeats. That also finds an identity listed by two chunks, and names
  the chunks (their data files are in the plan).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from inventory_contract.schema import IDENTITY

EXAMPLES = 10
BUCKET_ROWS = 25_000_000
"""First hashes one merge step holds and sorts (8 bytes each: about 0.4 GiB with the sort's copy)."""
_SEEDS = (0x5EED_0001, 0x5EED_0002)
_H1, _H2 = "h1", "h2"
_CHUNK = "chunk"


def identity_hashes() -> list[pl.Expr]:
    identity = pl.struct(*IDENTITY)
    return [identity.hash(_SEEDS[0]).alias(_H1), identity.hash(_SEEDS[1]).alias(_H2)]


@dataclass
class Repeats:
    """Identities listed more than once: how many, the rows beyond the first, and examples."""

    identities: int = 0
    extra_rows: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    across_chunks: list[dict[str, Any]] = field(default_factory=list)


def write_partial(part: Path, target: Path) -> Repeats:
    """Write the sorted identity hashes of ``part`` to ``target``; return what the part repeats."""
    hashes = pl.scan_parquet(part, glob=False).select(identity_hashes()).sort(_H1, _H2)
    hashes.sink_parquet(target, statistics=True, row_group_size=256 * 1024, engine="streaming")
    repeated = (
        pl.scan_parquet(target, glob=False)
        .group_by(_H1, _H2)
        .agg(pl.len().alias("listed"))
        .filter(pl.col("listed") > 1)
        .collect(engine="streaming")
    )
    if repeated.is_empty():
        return Repeats()
    examples = (
        pl.scan_parquet(part, glob=False)
        .select(*IDENTITY, *identity_hashes())
        .join(repeated.lazy().head(EXAMPLES), on=[_H1, _H2])
        .group_by(*IDENTITY)
        .agg(pl.len().alias("listed"))
        .sort(*IDENTITY, nulls_last=True)
        .collect()
    )
    return Repeats(
        identities=repeated.height,
        extra_rows=int(repeated["listed"].sum()) - repeated.height,
        examples=examples.to_dicts(),
    )


def _repeated_h1(h1: pl.Series) -> pl.Series:
    """The first hashes that occur more than once: sorted, a value equal to the one before it.
    (A sort of 64-bit integers is about 40 times faster than grouping by both hashes, and two
    distinct identities share a first hash with a chance of about n^2 / 2^65: at a billion objects
    a few per cent of runs have one such pair, which the exact group-by on both hashes then drops.)"""
    ordered = h1.sort()
    return ordered.filter(ordered == ordered.shift(1)).unique()


def merge(partials: Sequence[Path], chunk_of: Sequence[int], per_chunk: Sequence[Repeats]) -> Repeats:
    """Every identity listed more than once in the run, from the children's partials: counts for
    the whole run, the children's examples, and the pairs of chunks that list one identity."""
    rows = sum(pl.scan_parquet(p, glob=False).select(pl.len()).collect().item() for p in partials)
    buckets = max(-(-rows // BUCKET_ROWS), 1)
    width = 2**64 // buckets + 1
    scan = (
        pl.concat(
            [
                pl.scan_parquet(path, glob=False).with_columns(pl.lit(chunk, pl.UInt32).alias(_CHUNK))
                for path, chunk in zip(partials, chunk_of, strict=True)
            ]
        )
        if partials
        else None
    )
    result = Repeats()
    pairs: dict[tuple[int, ...], int] = {}
    for bucket in range(buckets if scan is not None else 0):
        low, high = bucket * width, min((bucket + 1) * width, 2**64)
        in_range = pl.col(_H1) >= low if high == 2**64 else (pl.col(_H1) >= low) & (pl.col(_H1) < high)
        candidates = _repeated_h1(scan.filter(in_range).select(_H1).collect(engine="streaming")[_H1])  # type: ignore[union-attr]
        if candidates.is_empty():
            continue
        repeated = (  # exact, on the few identities whose first hash repeats
            scan.filter(in_range & pl.col(_H1).is_in(candidates.implode()))  # type: ignore[union-attr]
            .group_by(_H1, _H2)
            .agg(pl.len().alias("listed"), pl.col(_CHUNK).unique().sort().alias("chunks"))
            .filter(pl.col("listed") > 1)
            .collect(engine="streaming")
        )
        result.identities += repeated.height
        result.extra_rows += int(repeated["listed"].sum() or 0) - repeated.height
        for chunks in repeated.filter(pl.col("chunks").list.len() > 1)["chunks"].to_list():
            pairs[tuple(chunks)] = pairs.get(tuple(chunks), 0) + 1
    result.examples = [e for r in per_chunk for e in r.examples][:EXAMPLES]
    result.across_chunks = [
        {"chunks": list(chunks), "identities": n} for chunks, n in sorted(pairs.items(), key=lambda i: -i[1])
    ][:EXAMPLES]
    return result
