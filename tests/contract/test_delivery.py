from datetime import UTC, datetime

import pytest

from inventory_contract.delivery import parse_delivery_key
from inventory_contract.errors import DeliveryKeyError


def test_parses_a_delivery_key():
    d = parse_delivery_key("inventory/my-bucket/daily-all/2024-11-24T01-00Z/manifest.json")
    assert d.prefix == "inventory"
    assert d.source_bucket == "my-bucket"
    assert d.config_id == "daily-all"
    assert d.timestamp == datetime(2024, 11, 24, 1, 0, tzinfo=UTC)
    assert d.run_date == "2024-11-24"
    assert d.manifest_key == "inventory/my-bucket/daily-all/2024-11-24T01-00Z/manifest.json"
    assert d.checksum_key == "inventory/my-bucket/daily-all/2024-11-24T01-00Z/manifest.checksum"


def test_prefix_may_be_empty_or_nested():
    assert parse_delivery_key("b.with.dots/cfg/2024-01-31T23-59Z/manifest.json").prefix == ""
    d = parse_delivery_key("a/b c/inventory/src-1/cfg id/2024-01-31T23-59Z/manifest.json")
    assert (d.prefix, d.source_bucket, d.config_id) == ("a/b c/inventory", "src-1", "cfg id")
    assert d.run_date == "2024-01-31"


@pytest.mark.parametrize(
    "key",
    [
        "inventory/my-bucket/daily-all/2024-11-24T01-00Z/manifest.checksum",
        "inventory/my-bucket/daily-all/data/0a1b.csv.gz",
        "inventory/my-bucket/daily-all/hive/dt=2024-11-24-01-00/symlink.txt",
        "inventory/my-bucket/daily-all/2024-11-24/manifest.json",
        "daily-all/2024-11-24T01-00Z/manifest.json",
        "",
    ],
)
def test_other_keys_are_rejected_with_the_expected_shape(key):
    with pytest.raises(DeliveryKeyError) as err:
        parse_delivery_key(key)
    assert repr(key) in str(err.value)
    assert "PREFIX/SOURCE-BUCKET/CONFIG-ID/YYYY-MM-DDTHH-MMZ/manifest.json" in str(err.value)


def test_a_legacy_bucket_name_with_upper_case_and_underscores_is_a_delivery():
    # us-east-1 buckets created before March 2018 may have such names; they are inventoried too
    delivery = parse_delivery_key("inventory/My_Legacy_Bucket/daily-all/2024-11-24T01-00Z/manifest.json")
    assert (delivery.source_bucket, delivery.prefix) == ("My_Legacy_Bucket", "inventory")


def test_impossible_date_is_rejected():
    with pytest.raises(DeliveryKeyError, match="'2024-02-30T01-00Z' is not a real date"):
        parse_delivery_key("inv/src-b/cfg/2024-02-30T01-00Z/manifest.json")
