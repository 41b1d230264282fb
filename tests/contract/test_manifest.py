"""The manifest contract: every documented field validated, one clear error per problem."""

import copy
import hashlib
import json
from pathlib import Path

import pytest

from inventory_contract.errors import ManifestError, UnsupportedFormatError
from inventory_contract.manifest import DataFile, parse_manifest, verify_checksum

SAMPLE = Path(__file__).parent.parent / "events" / "manifest.json"


@pytest.fixture
def doc() -> dict:
    return json.loads(SAMPLE.read_bytes())


def _parse(doc: dict):
    return parse_manifest(json.dumps(doc).encode(), source="s3://dest/m/manifest.json")


def test_parses_every_documented_field(doc):
    m = _parse(doc)
    assert m.source_bucket == "example-source"
    assert m.destination_bucket_arn == "arn:aws:s3:::example-inventory-dest"
    assert m.destination_bucket == "example-inventory-dest"
    assert m.version == "2016-11-30"
    assert m.creation_timestamp_ms == 1732406400000
    assert m.created_at.isoformat() == "2024-11-24T00:00:00+00:00"
    assert m.file_format == "CSV"
    assert m.file_schema[:3] == ("Bucket", "Key", "VersionId")
    assert len(m.file_schema) == 21
    assert m.files[1] == DataFile(
        key="inventory/example-source/daily-all-fields/data/1f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a5b.csv.gz",
        size=1893,
        md5="0123456789abcdef0123456789abcdef",  # normalised to lower case
    )
    assert m.total_size == 2147 + 1893


@pytest.mark.parametrize("fmt", ["ORC", "Parquet"])
def test_orc_and_parquet_are_rejected_naming_format_and_what_is_supported(doc, fmt):
    doc["fileFormat"] = fmt
    with pytest.raises(UnsupportedFormatError) as err:
        _parse(doc)
    assert f"fileFormat {fmt!r}" in str(err.value)
    assert "converts CSV inventories" in str(err.value)
    assert "s3://dest/m/manifest.json" in str(err.value)


def test_unknown_format_is_rejected_as_unknown(doc):
    doc["fileFormat"] = "JSON"
    with pytest.raises(UnsupportedFormatError, match="an unknown S3 Inventory format"):
        _parse(doc)


def test_not_json():
    with pytest.raises(ManifestError, match=r"manifest.json: not valid JSON"):
        parse_manifest(b"{not json", source="manifest.json")


def test_not_an_object():
    with pytest.raises(ManifestError, match="expected a JSON object, got list"):
        parse_manifest(b"[]")


@pytest.mark.parametrize(
    "field",
    [
        "sourceBucket",
        "destinationBucket",
        "version",
        "creationTimestamp",
        "fileFormat",
        "fileSchema",
        "files",
    ],
)
def test_each_missing_top_level_field_is_named(doc, field):
    del doc[field]
    with pytest.raises(ManifestError, match=f"required field {field} is missing"):
        _parse(doc)


@pytest.mark.parametrize("partition", ["aws", "aws-cn", "aws-us-gov"])
def test_destination_buckets_of_every_partition_are_accepted(doc, partition):
    doc["destinationBucket"] = f"arn:{partition}:s3:::inventory-dest"
    assert _parse(doc).destination_bucket == "inventory-dest"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("sourceBucket", 7, "sourceBucket must be a string, got int"),
        ("files", {"key": "x"}, "files must be a list, got dict"),
        ("creationTimestamp", 1732406400000, "creationTimestamp must be a string, got int"),
        ("creationTimestamp", "2024-11-24", "creationTimestamp must be epoch milliseconds"),
        ("creationTimestamp", "99999999999999999", "creationTimestamp must be epoch milliseconds"),
        ("destinationBucket", "example-inventory-dest", "destinationBucket must be a bucket ARN"),
        ("destinationBucket", "arn:aws:s3:::", "destinationBucket must be a bucket ARN"),
        ("destinationBucket", "arn:aws:s3:::b/key", "destinationBucket must be a bucket ARN"),
        ("sourceBucket", "", "sourceBucket is empty"),
        ("fileSchema", "Bucket, , Key", "fileSchema has an empty field name"),
        ("fileSchema", "Bucket, Key, Size, Size", "fileSchema names Size more than once"),
        ("fileSchema", "Bucket, Size", "fileSchema lacks the required field 'Key'"),
    ],
)
def test_wrong_types_and_values_are_named(doc, field, value, expected):
    doc[field] = value
    with pytest.raises(ManifestError, match=expected):
        _parse(doc)


def test_empty_files(doc):
    doc["files"] = []
    with pytest.raises(ManifestError, match="files is empty"):
        _parse(doc)


@pytest.mark.parametrize("field", ["key", "size", "MD5checksum"])
def test_missing_file_field_names_the_file_entry(doc, field):
    del doc["files"][1][field]
    with pytest.raises(ManifestError, match=rf"required field files\[1\]\.{field} is missing"):
        _parse(doc)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("size", "2147", r"files\[0\]\.size must be an integer, got str"),
        ("size", -1, r"files\[0\]\.size must be positive \(a gzip data file is never empty\), got -1"),
        ("size", 0, r"files\[0\]\.size must be positive \(a gzip data file is never empty\), got 0"),
        ("size", True, r"files\[0\]\.size must be an integer, got bool"),
        ("MD5checksum", "abc", r"files\[0\]\.MD5checksum must be 32 hex digits, got 'abc'"),
        ("key", "", r"files\[0\]\.key is empty"),
    ],
)
def test_bad_file_entries(doc, field, value, expected):
    doc["files"][0][field] = value
    with pytest.raises(ManifestError, match=expected):
        _parse(doc)


def test_a_data_file_listed_twice_is_refused(doc):
    doc["files"].append(dict(doc["files"][0]))
    last = len(doc["files"]) - 1
    with pytest.raises(ManifestError, match=rf"files\[{last}\]\.key '.+' is listed already, as files\[0\]"):
        _parse(doc)


def test_file_entry_not_an_object(doc):
    doc["files"][0] = "inventory/x.csv.gz"
    with pytest.raises(ManifestError, match=r"files\[0\] must be an object, got str"):
        _parse(doc)


def test_checksum_matches():
    raw = SAMPLE.read_bytes()
    digest = hashlib.md5(raw).hexdigest()
    assert parse_manifest(raw, checksum=f"{digest}\n").source_bucket == "example-source"
    assert parse_manifest(raw, checksum=digest.upper().encode()).files


def test_checksum_mismatch_names_both_digests():
    raw = SAMPLE.read_bytes()
    actual = hashlib.md5(raw).hexdigest()
    with pytest.raises(ManifestError) as err:
        parse_manifest(raw, source="s3://d/manifest.json", checksum="0" * 32)
    assert str(err.value) == f"s3://d/manifest.json: MD5 is {actual} but manifest.checksum says {'0' * 32}"


def test_checksum_file_that_is_not_a_digest():
    with pytest.raises(ManifestError, match="does not hold an MD5 hex digest"):
        verify_checksum(b"{}", "<html>error</html>")


def test_extra_fields_are_tolerated(doc):
    future = copy.deepcopy(doc)
    future["someNewField"] = {"x": 1}
    future["files"][0]["newFileField"] = 1
    assert _parse(future) == _parse(doc)


def _raw(doc: dict) -> str:
    return json.dumps(doc)


# Each malformed shape, as bytes, and what the refusal says. Built from the sample document.
MALFORMED = {
    "deep nesting": (lambda doc: "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "deep nesting in a field": (
        lambda doc: _raw(doc).replace('"files": [', '"files": [' + "[" * 50_000, 1) + "]" * 50_000,
        "not valid JSON",
    ),
    "a number of 5000 digits": (
        lambda doc: _raw(doc).replace('"size": 2147', '"size": ' + "9" * 5000),
        "a number of more than 4,300 digits",
    ),
    "a size past S3's 5 TiB": (
        lambda doc: _raw(doc).replace('"size": 2147', f'"size": {10**30}'),
        "files[0].size 1000000000000000000000000000000 is larger than an S3 object can be",
    ),
    "a float size": (lambda doc: _raw(doc).replace('"size": 2147', '"size": 2147.0'), "must be an integer"),
    "NaN": (lambda doc: _raw(doc).replace('"size": 2147', '"size": NaN'), "NaN is not a JSON number"),
    "Infinity": (
        lambda doc: _raw(doc).replace('"size": 2147', '"size": Infinity'),
        "Infinity is not a JSON number",
    ),
    "a string size": (lambda doc: _raw(doc).replace('"size": 2147', '"size": "2147"'), "must be an integer"),
    "files as an object": (
        lambda doc: _raw({**doc, "files": {"key": "x"}}),
        "files must be a list, got dict",
    ),
    "a duplicate top-level key": (
        lambda doc: _raw(doc)[:-1] + ', "sourceBucket": "another-bucket"}',
        "the key 'sourceBucket' appears more than once",
    ),
    "a duplicate key in a file entry": (
        lambda doc: _raw(doc).replace('"size": 2147', '"size": 2147, "size": 1', 1),
        "the key 'size' appears more than once",
    ),
    "a superscript-digit timestamp": (
        lambda doc: _raw({**doc, "creationTimestamp": "17324064²"}),
        "creationTimestamp must be epoch milliseconds",
    ),
    "a timestamp of 5000 digits": (
        lambda doc: _raw({**doc, "creationTimestamp": "1" * 5000}),
        "creationTimestamp must be epoch milliseconds",
    ),
    "not an object": (lambda doc: "[1, 2]", "expected a JSON object, got list"),
    "not UTF-8": (lambda doc: b"\xff\xfe{}", "not valid JSON"),
}


@pytest.mark.parametrize("shape", sorted(MALFORMED))
def test_every_malformed_manifest_is_a_manifest_error_naming_the_problem(doc, shape):
    build, said = MALFORMED[shape]
    raw = build(copy.deepcopy(doc))
    with pytest.raises(ManifestError) as err:
        parse_manifest(raw.encode() if isinstance(raw, str) else raw, source="s3://dest/m/manifest.json")
    assert said in str(err.value)
    assert str(err.value).startswith("s3://dest/m/manifest.json: ")


def test_a_manifest_with_very_many_keys_is_checked_in_one_pass(doc):
    # 200,000 extra keys and fileSchema names (about 3 MB): a check that counts each key against all
    # the others would take hours (quadratic); a Lambda would time out and retry instead of rejecting
    extra = {f"k{i}": i for i in range(200_000)}
    raw = json.dumps({**doc, **extra}).encode()
    assert parse_manifest(raw).source_bucket == "example-source"
    repeated = raw[:-1] + b', "k199999": 1}'
    with pytest.raises(ManifestError, match="the key 'k199999' appears more than once"):
        parse_manifest(repeated)
    names = ", ".join([*doc["fileSchema"].split(", "), *(f"Field{i}" for i in range(200_000)), "Field7"])
    with pytest.raises(ManifestError, match="fileSchema names Field7 more than once"):
        parse_manifest(json.dumps({**doc, "fileSchema": names}).encode())
