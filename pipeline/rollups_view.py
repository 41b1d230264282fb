"""The run report's rollups and repeated objects as text: what ``status RUN`` and the local summary
print."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from batch_jobs.units import human
from inventory_contract.rollups import AGE_BANDS, CURRENT, DELETE_MARKER, NONCURRENT


def bytes_by_class(rollups: dict[str, Any]) -> dict[str, int]:
    """Bytes per storage class over every version, largest first."""
    totals: dict[str, int] = defaultdict(int)
    for row in rollups.get("storage_class", []):
        if row["storage_class"] is not None and row["version_kind"] != DELETE_MARKER:
            totals[row["storage_class"]] += row["bytes"] or 0
    return dict(sorted(totals.items(), key=lambda item: (-item[1], item[0])))


def render_rollups(rollups: dict[str, Any]) -> str:
    """Storage classes by version kind, the largest prefixes, age bands and encryption."""
    if not rollups:
        return "rollups:          none (the run did not reconcile)"
    lines = ["storage classes (objects / bytes):"]
    present = {row["version_kind"] for row in rollups["storage_class"]}
    kinds = [k for k in (CURRENT, NONCURRENT, DELETE_MARKER) if k in present]
    per_class: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for row in rollups["storage_class"]:  # summed: a class has a row per access tier too
        objects, size = per_class[row["storage_class"] or "-"].get(row["version_kind"], (0, 0))
        per_class[row["storage_class"] or "-"][row["version_kind"]] = (
            objects + row["objects"],
            size + (row["bytes"] or 0),
        )
    lines.append(f"  {'class':<22} " + " ".join(f"{k:>28}" for k in kinds))
    for name, by_kind in sorted(per_class.items(), key=lambda item: -sum(b for _, b in item[1].values())):
        cells = [by_kind.get(k, (0, 0)) for k in kinds]
        lines.append(f"  {name:<22} " + " ".join(f"{o:>10,} / {human(b):>15}" for o, b in cells))
    lines.append(f"largest prefixes at depth 1 (rolled up to depth {rollups['prefix_depth']}):")
    lines += [
        f"  {_printable(p['prefix']) or '(top level)':<22} {human(p['bytes']):>12} {p['objects']:>12,} objects"
        f"  last modified {(p['oldest_last_modified'] or '-')[:10]} .. {(p['newest_last_modified'] or '-')[:10]}"
        for p in rollups["largest_prefixes"]
    ]
    lines.append("age of stored versions (last modified, on the run date):")
    order = {label: i for i, (_, label) in enumerate(AGE_BANDS)}
    by_band: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rollups["age"]:
        band = by_band[row["age_band"] or "unknown"]
        band[0] += row["objects"]
        band[1] += row["bytes"] or 0
    lines += [
        f"  {band:<22} {human(size):>12} {objects:>12,} objects"
        for band, (objects, size) in sorted(by_band.items(), key=lambda item: order.get(item[0], len(order)))
    ]
    lines.append("encryption of stored versions:")
    lines += [
        f"  {row['encryption_status'] or '-':<22} {human(row['bytes']):>12} {row['objects']:>12,} objects"
        for row in rollups["encryption"]
    ]
    return "\n".join(lines)


def _printable(text: str) -> str:
    """A key or prefix on one line: control characters (S3 keys may hold newlines) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def render_repeats(duplicates: dict[str, Any]) -> str | None:
    """A note on the objects the run lists more than once (None when it lists each once)."""
    if not duplicates or not duplicates.get("identities"):
        return None
    lines = [
        f"note: {duplicates['identities']:,} object(s) (key and version id) listed more than once, "
        f"{duplicates['extra_rows']:,} extra row(s); the rollups count rows as delivered, changes "
        "and the saved queries count each object once"
    ]
    for example in duplicates.get("examples", [])[:3]:
        version = f" version {example['version_id']}" if example.get("version_id") else ""
        key = example["key"].encode("unicode_escape").decode()
        lines.append(f"  {key}{version}: {example['listed']} times")
    for shared in duplicates.get("across_chunks", [])[:3]:
        files = ", ".join(shared.get("data_files", [])[:4])
        lines.append(f"  {shared['identities']:,} listed by chunks {shared['chunks']} ({files})")
    return "\n".join(lines)
