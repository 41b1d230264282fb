import pytest

from inventory_contract.layout import RunLayout, parse_s3_uri
from inventory_contract.schema import KNOWN_FIELDS, Column, ColumnType, columns_for, snake_case

# The names S3 Inventory's own Parquet output uses (S3_INVENTORY_FACTS.md), in S3's field order.
S3_PARQUET_NAMES = [
    "bucket",
    "key",
    "version_id",
    "is_latest",
    "is_delete_marker",
    "size",
    "last_modified_date",
    "e_tag",
    "storage_class",
    "is_multipart_uploaded",
    "replication_status",
    "encryption_status",
    "object_lock_retain_until_date",
    "object_lock_mode",
    "object_lock_legal_hold_status",
    "intelligent_tiering_access_tier",
    "bucket_key_status",
    "checksum_algorithm",
    "object_access_control_list",
    "object_owner",
    "lifecycle_expiration_date",
]


def test_known_fields_map_to_s3_parquet_names():
    assert [c.name for c in columns_for(KNOWN_FIELDS)] == S3_PARQUET_NAMES


def test_types():
    types = {c.name: c.type for c in columns_for(KNOWN_FIELDS)}
    assert types["size"] is ColumnType.INT64
    assert {n for n, t in types.items() if t is ColumnType.BOOLEAN} == {
        "is_latest",
        "is_delete_marker",
        "is_multipart_uploaded",
    }
    assert {n for n, t in types.items() if t is ColumnType.TIMESTAMP_MS_UTC} == {
        "last_modified_date",
        "object_lock_retain_until_date",
        "lifecycle_expiration_date",
    }
    assert sum(t is ColumnType.STRING for t in types.values()) == 21 - 1 - 3 - 3


def test_manifest_order_is_kept_and_unknown_fields_become_strings():
    cols = columns_for(["Key", "SomeFutureField", "Bucket", "Size"])
    assert cols == (
        Column("Key", "key", ColumnType.STRING),
        Column("SomeFutureField", "some_future_field", ColumnType.STRING),
        Column("Bucket", "bucket", ColumnType.STRING),
        Column("Size", "size", ColumnType.INT64),
    )


@pytest.mark.parametrize(
    ("field", "name"),
    [
        ("ETag", "e_tag"),
        ("SSEKMSKeyId", "ssekms_key_id"),
        ("Sha256Checksum", "sha256_checksum"),
        ("Key", "key"),
    ],
)
def test_snake_case(field, name):
    assert snake_case(field) == name


def test_run_layout_keys():
    run = RunLayout(source_bucket="src.b", run_date="2024-11-24")
    assert run.part_key(12) == "processed/source_bucket=src.b/run_date=2024-11-24/part-000012.parquet"
    assert run.plan_key == "run-state/source_bucket=src.b/run_date=2024-11-24/plan.json"
    state = [run.claim_key, run.plan_key, run.part_stats_key(0), run.identity_partial_key(0)]
    assert all(k.startswith("run-state/source_bucket=src.b/run_date=2024-11-24/") for k in state)
    reports = [run.run_report_key, run.complete_marker_key]
    assert reports == [
        "run-reports/source_bucket=src.b/run_date=2024-11-24/run-report.json",
        "run-reports/source_bucket=src.b/run_date=2024-11-24/_COMPLETE",
    ]
    assert not any(k.startswith("processed/") for k in state + reports)
    with pytest.raises(ValueError, match="chunk index -1 is outside"):
        run.part_key(-1)


def test_parse_s3_uri():
    assert parse_s3_uri("s3://b/a/b c/manifest.json") == ("b", "a/b c/manifest.json")
    for bad in ("b/key", "s3://b", "s3://b/", "s3:///k"):
        with pytest.raises(ValueError, match="is not an S3 object URI"):
            parse_s3_uri(bad)


@pytest.mark.parametrize(
    ("encoded", "key"),
    [
        ("photos/summer+2024/beach+day.jpg", "photos/summer 2024/beach day.jpg"),
        ("math/a%2Bb%3Dc.txt", "math/a+b=c.txt"),
        ("reports/100%25/x", "reports/100%/x"),
        ("caf%C3%A9/%F0%9F%98%80", "café/😀"),
        ("a%2Fb", "a/b"),
        ("new%0Aline%09tab%22quote%2Ccomma", 'new\nline\ttab"quote,comma'),
    ],
)
def test_decode_key_is_form_url_decoding(encoded, key):
    from inventory_contract.schema import decode_key

    assert decode_key(encoded) == key


def test_decode_key_rejects_invalid_utf8():
    from inventory_contract.schema import decode_key

    with pytest.raises(UnicodeDecodeError):
        decode_key("bad%FF%FE")
