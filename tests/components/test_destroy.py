"""`pulumi destroy` under each config: nothing it deletes can refuse (a repository with images, a
workgroup that ran queries, a bucket with objects), and what it keeps is exactly the data buckets
with their guards, as the README's Day 2 section says."""

from __future__ import annotations

import re

import pytest

from components.image_context import image_inputs
from tests.components.conftest import ROOT, Deployed, deploy, settings

BUCKET = "aws:s3/bucket:Bucket"
DATA_BUCKETS = {"inventory-destination", "inventory-source"}
# Bucket-level resources that leave with the stack even from a kept bucket: they point at what the
# stack deletes (the trigger Lambda), or are the stack's use of a bucket it does not own.
LEAVE_A_KEPT_BUCKET = {"aws:s3/bucketNotification:BucketNotification", "aws:s3/inventory:Inventory"}


def _of_bucket(stack: Deployed, bucket_id: str) -> list:
    return [r for r in stack.resources if r.inputs.get("bucket") == bucket_id and r.type != BUCKET]


def _day2_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("### Day 2: update and destroy", 1)[1].split("\n### ", 1)[0]


def test_destroy_under_the_default_config_keeps_the_data_buckets_and_deletes_the_rest(stack):
    retained = {(r.type, r.name) for r in stack.resources if r.retain_on_delete}
    buckets = {b.name: b for b in stack.of_type(BUCKET)}
    assert {name for typ, name in retained if typ == BUCKET} == DATA_BUCKETS
    for name, bucket in buckets.items():
        attached = _of_bucket(stack, bucket.id)
        if name in DATA_BUCKETS:  # kept whole: never a bucket left without its public-access block
            for r in attached:
                assert r.retain_on_delete == (r.type not in LEAVE_A_KEPT_BUCKET), (name, r.type, r.name)
        else:  # derived files: deleted with its objects, never "BucketNotEmpty"
            assert bucket.inputs["forceDestroy"] is True, name
            assert not any(r.retain_on_delete for r in attached), name
    kept = {(typ, name) for typ, name in retained}
    kept_with_buckets = {(r.type, r.name) for b in DATA_BUCKETS for r in _of_bucket(stack, buckets[b].id)}
    assert kept <= {(BUCKET, b) for b in DATA_BUCKETS} | kept_with_buckets  # nothing else is left behind


@pytest.mark.parametrize("force_destroy", [False, True])
def test_destroy_deletes_the_image_repository_and_the_workgroup_whatever_they_hold(force_destroy):
    stack = deploy(settings(forceDestroy=force_destroy))
    repository = stack.one("aws:ecr/repository:Repository")
    assert repository.inputs["forceDelete"] is True  # ECR: RepositoryNotEmptyException otherwise
    assert not repository.retain_on_delete
    workgroup = stack.one("aws:athena/workgroup:Workgroup")
    assert workgroup.inputs["forceDestroy"] is True  # Athena: "WorkGroup is not empty" otherwise
    if force_destroy:
        assert not any(r.retain_on_delete for r in stack.resources)
        assert all(b.inputs["forceDestroy"] is True for b in stack.of_type(BUCKET))


def test_the_readmes_day_2_section_says_what_rebuilds_the_image_and_what_destroy_keeps():
    section = " ".join(_day2_section().split())
    listed = re.search(r"\(image inputs: (.*?)\)", section)
    assert listed, "the Day 2 section lists the image inputs"
    assert re.findall(r"`([^`]+)`", listed.group(1)) == list(image_inputs())
    assert "`batch_jobs/Dockerfile.dockerignore`" in section
    for said in (
        "deletes the ECR repository with its images",
        "deletes the Athena workgroup",
        "log groups with their logs",
        "the queue of failed trigger events with its messages",
        "`build/image/`, the build context, with the modes git records",
        "Athena results bucket with its objects",
        "the destination bucket",
        "the source bucket the stack created",
        "With `forceDestroy false` (the default), destroy keeps them",
        "With `forceDestroy true`",
    ):
        assert said in section, said
