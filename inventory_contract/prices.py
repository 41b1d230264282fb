"""S3 storage prices per Region, for the storage report's monthly cost estimate.

USD per GB-month (GB = 2^30 bytes, as AWS bills), the first tier of each class (S3 Standard's first
50 TB a month; larger buckets pay a few percent less), storage only: no requests, retrievals,
minimum sizes or durations, Intelligent-Tiering's monitoring fee (per object over 128 KB), or
the 40 KB of metadata S3 adds to each Glacier Flexible Retrieval and Deep Archive object.

Source: the Amazon S3 pricing page, https://aws.amazon.com/s3/pricing/, as this project recorded
it (``AS_OF``); it could not be read again where the project is built (no network). Prices change:
``--prices FILE`` replaces the table (``load_prices``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

SOURCE = "https://aws.amazon.com/s3/pricing/"
AS_OF = "2025-06"
"""When the project recorded the prices below from ``SOURCE``."""
GIB = 1024**3
INTELLIGENT_TIERING = "INTELLIGENT_TIERING"

_US = {
    "STANDARD": 0.023,
    "INTELLIGENT_TIERING": 0.023,  # its Frequent Access tier: the tier an object without one is in
    "STANDARD_IA": 0.0125,
    "ONEZONE_IA": 0.01,
    "GLACIER_IR": 0.004,
    "GLACIER": 0.0036,
    "DEEP_ARCHIVE": 0.00099,
    "REDUCED_REDUNDANCY": 0.024,
    "EXPRESS_ONEZONE": 0.11,
}
ACCESS_TIERS = ("FREQUENT", "INFREQUENT", "ARCHIVE_INSTANT_ACCESS", "ARCHIVE", "DEEP_ARCHIVE")
"""Intelligent-Tiering's access tiers, as the inventory's IntelligentTieringAccessTier names them."""
_US_TIERING = {  # Intelligent-Tiering's access tiers, as the inventory names them
    "FREQUENT": 0.023,
    "INFREQUENT": 0.0125,
    "ARCHIVE_INSTANT_ACCESS": 0.004,
    "ARCHIVE": 0.0036,
    "DEEP_ARCHIVE": 0.00099,
}
PRICE_TABLE: dict[str, tuple[dict[str, float], dict[str, float]]] = {
    "us-east-1": (_US, _US_TIERING),
    "us-east-2": (_US, _US_TIERING),
    "us-west-2": (_US, _US_TIERING),
}
"""Region -> (USD per GB-month by storage class, by Intelligent-Tiering access tier)."""


class PricesError(ValueError):
    """A Region without prices here, or a prices file that is not as ``load_prices`` reads it."""


@dataclass(frozen=True)
class Prices:
    region: str
    per_gb_month: dict[str, float]
    tiering: dict[str, float] = field(default_factory=dict)
    source: str = SOURCE
    as_of: str = AS_OF

    def monthly(self, storage_class: str | None, size: int) -> float | None:
        """USD a month for ``size`` bytes in ``storage_class``; None for a class without a price."""
        price = self.per_gb_month.get(storage_class or "")
        return None if price is None else size / GIB * price

    def tier_price(self, tier: str | None) -> float | None:
        """USD per GB-month of an Intelligent-Tiering access tier; a version without a tier (the
        inventory does not deliver the field) at the class's price, its Frequent Access tier's."""
        price = self.tiering.get(tier) if tier else None
        return price if price is not None else self.per_gb_month.get(INTELLIGENT_TIERING)


def default_region() -> str:
    """The Region the environment names (as the AWS SDKs read it), else us-east-1."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def prices_for(region: str) -> Prices:
    if region not in PRICE_TABLE:
        msg = (
            f"no S3 prices for Region {region!r} here (only {', '.join(sorted(PRICE_TABLE))}); give "
            "--prices FILE with that Region's prices"
        )
        raise PricesError(msg)
    classes, tiers = PRICE_TABLE[region]
    return Prices(region, dict(classes), dict(tiers))


def load_prices(path: Path) -> Prices:
    """A prices file: ``{"region": ..., "source": ..., "as_of": ..., "per_gb_month": {CLASS: USD},
    "tiering": {TIER: USD}}`` (``tiering`` optional), USD per GB-month."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        msg = f"--prices {path}: cannot read it as JSON ({err})"
        raise PricesError(msg) from err
    if not isinstance(doc, dict) or not isinstance(doc.get("per_gb_month"), dict):
        msg = f'--prices {path}: expected {{"region", "source", "as_of", "per_gb_month": {{CLASS: USD}}}}'
        raise PricesError(msg)
    tables = {"per_gb_month": doc["per_gb_month"], "tiering": doc.get("tiering", {})}
    for name, table in tables.items():
        if not isinstance(table, dict):
            msg = f"--prices {path}: {name} must map names to USD per GB-month, got {table!r}"
            raise PricesError(msg)
        bad = {k: v for k, v in table.items() if not _price(v)}
        if bad:
            msg = f"--prices {path}: {name} must map names to USD per GB-month (finite numbers of at least 0), got {bad}"
            raise PricesError(msg)
    unknown = sorted(set(tables["tiering"]) - set(ACCESS_TIERS))
    if unknown:
        msg = f"--prices {path}: tiering names {unknown} are not access tiers the inventory reports ({', '.join(ACCESS_TIERS)})"
        raise PricesError(msg)
    return Prices(
        str(doc.get("region", "custom")),
        {str(k): float(v) for k, v in tables["per_gb_month"].items()},
        {str(k): float(v) for k, v in tables["tiering"].items()},
        source=str(doc.get("source", str(path))),
        as_of=str(doc.get("as_of", "unknown")),
    )


def _price(value: object) -> bool:
    """A price: a finite number of at least 0 (JSON's NaN and Infinity are not)."""
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    )
