"""The Pulumi stack under mocks (preview=False): component properties and whole-graph rules."""

from __future__ import annotations

import json
import zipfile
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from components.config import ConfigError
from components.image_context import content_tag
from components.job_definitions import RETRY_RULES
from components.lambda_bundle import ARCHIVE, HANDLER, bundle_files
from components.role_policies import (
    execution_policy,
    finalize_policy,
    job_policy,
    snapshot_policy,
    trigger_policy,
)
from inventory_contract.jobs import JOB_SPECS, SNAPSHOT
from inventory_contract.listing import LISTING_CONFIG_ID
from inventory_contract.schema import INVENTORY_OPTIONAL_FIELDS
from tests.components.conftest import (
    ACCOUNT,
    MOCKS,
    REGION,
    ROOT,
    Deployed,
    deploy,
    project_defaults,
    run_program,
    settings,
)
from tests.strict_iam import is_allowed

BUCKET = "aws:s3/bucket:Bucket"
BOTOCORE = botocore.session.get_session()

# Every "*" resource in an Allow statement, with why "*" is the only form the API accepts.
STAR_RESOURCES_JUSTIFIED = {
    ("batch-execution-policy", "EcrToken"): "ecr:GetAuthorizationToken has no resource-level permissions",
    (
        "trigger-policy",
        "FindSubmittedJobs",
    ): "batch:ListJobs and DescribeJobs have no resource-level permissions",
}


def _statements(stack: Deployed, typ: str) -> list[tuple[str, dict[str, Any]]]:
    return [(r.name, st) for r in stack.of_type(typ) for st in stack.policy(r)["Statement"]]


# ---------- storage ----------


def test_every_created_bucket_is_encrypted_private_acl_free_and_tls_only(stack):
    buckets = stack.of_type(BUCKET)
    assert {b.name for b in buckets} == {
        "inventory-destination",
        "inventory-source",
        "analytics-athena-results",
    }
    for bucket in buckets:
        types = {r.type: r for r in stack.resources if r.inputs.get("bucket") == bucket.id}
        encryption = types[
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
        ]
        assert (
            encryption.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
        ), bucket.name
        block = types["aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"]
        flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        assert all(block.inputs[f] is True for f in flags), bucket.name
        ownership = types["aws:s3/bucketOwnershipControls:BucketOwnershipControls"]
        assert ownership.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced", bucket.name
        policy = stack.policy(types["aws:s3/bucketPolicy:BucketPolicy"])
        deny = next(s for s in policy["Statement"] if s["Sid"] == "DenyInsecureTransport")
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert deny["Resource"] == [bucket.outputs["arn"], f"{bucket.outputs['arn']}/*"], bucket.name


def test_the_inventory_is_daily_csv_with_every_optional_field(stack):
    inventory = stack.one("aws:s3/inventory:Inventory")
    source = stack.one(BUCKET, "inventory-source")
    destination = stack.one(BUCKET, "inventory-destination")
    assert inventory.inputs["bucket"] == source.outputs["bucket"]
    assert inventory.inputs["name"] == "s3-inventory-pipeline-test"  # the stack's own configuration ID
    assert inventory.inputs["schedule"] == {"frequency": "Daily"}
    assert inventory.inputs["enabled"] is True
    assert inventory.inputs["includedObjectVersions"] == "Current"
    assert inventory.inputs["destination"]["bucket"] == {
        "bucketArn": destination.outputs["arn"],
        "format": "CSV",
        "prefix": "inventory",
        "accountId": ACCOUNT,
    }
    every_optional_field = set(BOTOCORE.get_service_model("s3").shape_for("InventoryOptionalField").enum)
    assert set(inventory.inputs["optionalFields"]) == every_optional_field == set(INVENTORY_OPTIONAL_FIELDS)


def test_versions_follow_config():
    inventory = deploy(settings(includeObjectVersions="All")).one("aws:s3/inventory:Inventory")
    assert inventory.inputs["includedObjectVersions"] == "All"


def test_the_destination_policy_lets_only_inventory_deliver(stack):
    destination = stack.one(BUCKET, "inventory-destination")
    source = stack.one(BUCKET, "inventory-source")
    policy = stack.policy(stack.one("aws:s3/bucketPolicy:BucketPolicy", "inventory-destination-policy"))
    delivery = next(s for s in policy["Statement"] if s["Sid"] == "AllowInventoryDelivery")
    assert delivery == {
        "Sid": "AllowInventoryDelivery",
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{destination.outputs['arn']}/inventory/*",
        "Condition": {
            "ArnLike": {"aws:SourceArn": [source.outputs["arn"]]},
            "StringEquals": {"aws:SourceAccount": [ACCOUNT], "s3:x-amz-acl": "bucket-owner-full-control"},
        },
    }


def _lifecycle_rules(stack: Deployed) -> dict[str, dict[str, Any]]:
    lifecycle = stack.one(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "inventory-destination-lifecycle"
    )
    return {r["id"]: r for r in lifecycle.inputs["rules"]}


def test_the_lifecycle_expires_chunks_and_state_and_aborts_uploads():
    rules = _lifecycle_rules(deploy(settings(stateRetentionDays=3)))
    assert rules["expire-inventory-chunks"]["filter"] == {"prefix": "inventory-chunks/"}
    assert rules["expire-inventory-chunks"]["expiration"] == {"days": 3}
    assert rules["expire-run-state"]["filter"] == {"prefix": "run-state/"}
    assert rules["expire-run-state"]["expiration"] == {"days": 3}
    assert rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"] == {
        "daysAfterInitiation": 1
    }
    assert not any(r["filter"]["prefix"].startswith(("processed", "run-reports")) for r in rules.values())


@pytest.mark.parametrize(("prefix", "days"), [("inventory", 30), ("s3/inventory-reports", 9)])
def test_the_delivered_inventory_expires_after_inventory_retention_days(prefix, days):
    rules = _lifecycle_rules(deploy(settings(inventoryPrefix=prefix, inventoryRetentionDays=days)))
    assert rules["expire-inventory-deliveries"] == {
        "id": "expire-inventory-deliveries",
        "status": "Enabled",
        "filter": {"prefix": f"{prefix}/"},  # the deliveries only: never "" (the whole bucket)
        "expiration": {"days": days},
    }
    expiring = [r for r in rules.values() if "expiration" in r]
    assert all(r["filter"]["prefix"].endswith("/") and len(r["filter"]["prefix"]) > 1 for r in expiring)
    assert rules["expire-inventory-chunks"]["filter"] == {"prefix": "inventory-chunks/"}  # not caught by it


def test_inventory_retention_days_0_keeps_the_deliveries():
    rules = _lifecycle_rules(deploy(settings(inventoryRetentionDays=0)))
    assert "expire-inventory-deliveries" not in rules
    assert sorted(rules) == [
        "abort-incomplete-multipart-uploads",
        "expire-inventory-chunks",
        "expire-run-state",
    ]


def test_existing_buckets_are_adopted_not_created():
    stack = deploy(
        settings(createSourceBucket=False, existingSourceBuckets=["legacy-data", "logs.example.com"])
    )
    assert sorted(b.name for b in stack.of_type(BUCKET)) == [
        "analytics-athena-results",
        "inventory-destination",
    ]
    assert sorted(i.inputs["bucket"] for i in stack.of_type("aws:s3/inventory:Inventory")) == [
        "legacy-data",
        "logs.example.com",
    ]
    policy = stack.policy(stack.one("aws:s3/bucketPolicy:BucketPolicy", "inventory-destination-policy"))
    delivery = policy["Statement"][0]
    assert delivery["Condition"]["ArnLike"]["aws:SourceArn"] == [
        "arn:aws:s3:::legacy-data",
        "arn:aws:s3:::logs.example.com",
    ]
    assert stack.outputs["sourceBuckets"] == ["legacy-data", "logs.example.com"]


def test_a_source_bucket_in_another_account_goes_through_a_second_provider():
    role = "arn:aws:iam::210987654321:role/inventory-admin"
    stack = deploy(settings(crossAccountSourceBuckets=["their-bucket"], crossAccountRoleArn=role))
    provider = stack.one("pulumi:providers:aws", "source-account")
    assert json.loads(provider.inputs["assumeRoles"])[0]["role_arn"] == role  # provider inputs arrive as JSON
    assert provider.inputs["region"] == "us-east-1"
    theirs = next(
        i for i in stack.of_type("aws:s3/inventory:Inventory") if i.inputs["bucket"] == "their-bucket"
    )
    ours = next(
        i for i in stack.of_type("aws:s3/inventory:Inventory") if i.inputs["bucket"] != "their-bucket"
    )
    assert "source-account" in theirs.provider and "source-account" not in ours.provider
    assert theirs.inputs["destination"]["bucket"]["accountId"] == ACCOUNT  # the destination's owner
    delivery = stack.policy(stack.one("aws:s3/bucketPolicy:BucketPolicy", "inventory-destination-policy"))[
        "Statement"
    ][0]
    assert delivery["Condition"]["StringEquals"]["aws:SourceAccount"] == [ACCOUNT, "210987654321"]


def test_arns_the_stack_builds_follow_the_partition():
    # GIVEN an account in aws-cn: getPartition answers aws-cn, and so do the ARNs AWS returns
    MOCKS.partition = "aws-cn"
    try:
        stack = deploy(
            settings(
                region="cn-north-1",
                existingSourceBuckets=["legacy-data"],
                crossAccountSourceBuckets=["their-bucket"],
                crossAccountRoleArn="arn:aws-cn:iam::210987654321:role/inventory-admin",
            )
        )
    finally:
        MOCKS.partition = "aws"
    # THEN no input anywhere hard-codes the aws partition
    offenders = [r.name for r in stack.resources if "arn:aws:" in json.dumps(r.inputs, default=str)]
    assert offenders == []
    delivery = stack.policy(stack.one("aws:s3/bucketPolicy:BucketPolicy", "inventory-destination-policy"))[
        "Statement"
    ][0]
    assert delivery["Condition"]["ArnLike"]["aws:SourceArn"][1:] == [
        "arn:aws-cn:s3:::legacy-data",
        "arn:aws-cn:s3:::their-bucket",
    ]


# ---------- image ----------


@pytest.mark.parametrize(("platform", "architecture"), [("linux/amd64", "X86_64"), ("linux/arm64", "ARM64")])
def test_the_image_is_pushed_to_a_scanned_repository_tagged_by_content_and_run_by_digest(
    platform, architecture
):
    stack = deploy(settings(imagePlatform=platform))
    repository = stack.one("aws:ecr/repository:Repository")
    assert repository.inputs["imageTagMutability"] == "MUTABLE"  # a revert re-pushes a tag it holds
    assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    lifecycle = json.loads(stack.one("aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs["policy"])
    assert lifecycle["rules"][0]["selection"] == {
        "tagStatus": "any",
        "countType": "imageCountMoreThan",
        "countNumber": 10,
    }
    image = stack.one("docker:index/image:Image")
    assert image.inputs["imageName"] == f"{repository.outputs['repositoryUrl']}:{content_tag(platform)}"
    assert image.inputs["build"]["platform"] == platform
    # relative to the project folder: the same from any checkout
    assert image.inputs["build"]["context"] == "build/image"
    assert image.inputs["build"]["dockerfile"] == "build/image/batch_jobs/Dockerfile"
    assert (ROOT / "build/image/batch_jobs/Dockerfile").read_bytes() == (
        ROOT / "batch_jobs/Dockerfile"
    ).read_bytes()
    registry = image.inputs["registry"].get(
        "value", image.inputs["registry"]
    )  # a secret: it holds the password
    assert registry["server"] == repository.outputs["repositoryUrl"]
    assert (registry["username"], registry["password"]) == ("AWS", "pw")
    for definition in stack.of_type("aws:batch/jobDefinition:JobDefinition"):
        properties = json.loads(definition.inputs["containerProperties"])
        assert properties["image"] == image.outputs["repoDigest"]  # pinned: the image pushed for it
        assert properties["image"].startswith(repository.outputs["repositoryUrl"] + "@sha256:")
        assert properties["runtimePlatform"] == {
            "operatingSystemFamily": "LINUX",
            "cpuArchitecture": architecture,
        }
    assert content_tag("linux/amd64") != content_tag("linux/arm64")


# ---------- batch ----------


def test_without_a_default_vpc_the_preview_fails_saying_what_to_set():
    # an account whose default VPC was deleted: getVpcs finds none (a failing program runs in a
    # process of its own: its pending registrations would fail the next program run in this one)
    done = run_program("dev", project_defaults(), mocks={"default_vpc": False})
    assert done.returncode != 0
    assert (
        "config key s3-inventory-pipeline:subnetIds is empty and the account has no default VPC in us-east-1: "
        "set subnetIds (with securityGroupIds) to subnets of your own, or privateNetworking true"
    ) in done.stderr


def test_a_default_vpc_without_default_subnets_fails_the_same_way():
    from components.batch import the_default_subnets, the_default_vpc

    assert the_default_vpc(["vpc-1"], "eu-west-1") == "vpc-1"
    assert the_default_subnets(["subnet-a"], "eu-west-1") == ["subnet-a"]
    with pytest.raises(
        ConfigError, match="the default VPC in eu-west-1 has no default subnets: set subnetIds"
    ):
        the_default_subnets([], "eu-west-1")


def test_with_subnets_of_its_own_or_private_networking_no_default_vpc_is_needed():
    MOCKS.default_vpc = False
    try:
        for own in (settings(subnetIds=["subnet-1"]), settings(privateNetworking=True)):
            MOCKS.calls.clear()
            assert deploy(own).of_type("aws:batch/computeEnvironment:ComputeEnvironment")
            assert "aws:ec2/getVpcs:getVpcs" not in [token for token, _ in MOCKS.calls]
    finally:
        MOCKS.default_vpc = True


def test_the_compute_environment_falls_back_to_the_default_vpc(stack):
    compute = stack.one("aws:batch/computeEnvironment:ComputeEnvironment")
    group = stack.one("aws:ec2/securityGroup:SecurityGroup")
    assert compute.inputs["type"] == "MANAGED"
    assert compute.inputs["computeResources"]["type"] == "FARGATE"
    assert compute.inputs["computeResources"]["maxVcpus"] == 256
    assert compute.inputs["computeResources"]["subnets"] == ["subnet-default-a", "subnet-default-b"]
    assert compute.inputs["computeResources"]["securityGroupIds"] == [group.id]
    assert group.inputs["vpcId"] == "vpc-default" and "ingress" not in group.inputs
    queue = stack.one("aws:batch/jobQueue:JobQueue")
    assert queue.inputs["computeEnvironmentOrders"] == [
        {"order": 1, "computeEnvironment": compute.outputs["arn"]}
    ]


def test_subnets_and_security_groups_come_from_config():
    stack = deploy(
        settings(
            subnetIds=["subnet-1", "subnet-2"], securityGroupIds=["sg-9"], assignPublicIp=False, maxVcpus=32
        )
    )
    compute = stack.one("aws:batch/computeEnvironment:ComputeEnvironment")
    assert compute.inputs["computeResources"]["subnets"] == ["subnet-1", "subnet-2"]
    assert compute.inputs["computeResources"]["securityGroupIds"] == ["sg-9"]
    assert compute.inputs["computeResources"]["maxVcpus"] == 32
    assert stack.of_type("aws:ec2/securityGroup:SecurityGroup") == []
    for definition in stack.of_type("aws:batch/jobDefinition:JobDefinition"):
        assert json.loads(definition.inputs["containerProperties"])["networkConfiguration"] == {
            "assignPublicIp": "DISABLED"
        }


def test_job_definitions_run_the_shared_commands_with_configured_resources():
    stack = deploy(
        settings(
            processVcpu="4",
            processMemoryMib=16384,
            ephemeralStorageGib=100,
            jobAttempts=4,
            jobTimeoutMinutes=90,
        )
    )
    log_group = stack.one("aws:cloudwatch/logGroup:LogGroup", "batch-jobs")
    definitions = {d.name: d for d in stack.of_type("aws:batch/jobDefinition:JobDefinition")}
    for spec in JOB_SPECS:
        definition = definitions[f"batch-{spec.name}"]
        properties = json.loads(definition.inputs["containerProperties"])
        assert properties["command"] == list(spec.command)
        assert definition.inputs["parameters"] == dict(spec.default_parameters)
        assert definition.inputs["platformCapabilities"] == ["FARGATE"]
        assert properties["ephemeralStorage"] == {"sizeInGiB": 100}
        assert properties["logConfiguration"]["options"]["awslogs-group"] == log_group.outputs["name"]
        assert definition.inputs["timeout"] == {"attemptDurationSeconds": 90 * 60}
        retry = definition.inputs["retryStrategy"]
        assert retry["attempts"] == 4
        assert retry["evaluateOnExits"] == [dict(rule) for rule in RETRY_RULES]
    split = json.loads(definitions["batch-split"].inputs["containerProperties"])["resourceRequirements"]
    process = json.loads(definitions["batch-process"].inputs["containerProperties"])["resourceRequirements"]
    assert split == [{"type": "VCPU", "value": "0.5"}, {"type": "MEMORY", "value": "1024"}]
    assert process == [{"type": "VCPU", "value": "4"}, {"type": "MEMORY", "value": "16384"}]


def test_job_definitions_validate_against_the_batch_api_model(stack):
    shape = BOTOCORE.get_service_model("batch").operation_model("RegisterJobDefinition").input_shape
    for definition in stack.of_type("aws:batch/jobDefinition:JobDefinition"):
        retry = definition.inputs["retryStrategy"]
        request = {
            "jobDefinitionName": definition.name,
            "type": definition.inputs["type"],
            "platformCapabilities": definition.inputs["platformCapabilities"],
            "parameters": definition.inputs["parameters"],
            "containerProperties": json.loads(definition.inputs["containerProperties"]),
            "retryStrategy": {"attempts": int(retry["attempts"]), "evaluateOnExit": retry["evaluateOnExits"]},
            "timeout": {
                "attemptDurationSeconds": int(definition.inputs["timeout"]["attemptDurationSeconds"])
            },
            "propagateTags": definition.inputs["propagateTags"],
        }
        report = ParamValidator().validate(request, shape)
        assert not report.has_errors(), f"{definition.name}: {report.generate_report()}"
        assert 1 <= request["retryStrategy"]["attempts"] <= 10
        assert request["timeout"]["attemptDurationSeconds"] >= 60


def _role_policy(stack, name: str) -> dict:
    return stack.policy(stack.one("aws:iam/rolePolicy:RolePolicy", name))


def test_the_roles_hold_exactly_the_documents_the_iam_enforced_tests_run_under(stack):
    # GIVEN the ARNs the stack resolved
    bucket = stack.one(BUCKET, "inventory-destination").outputs["arn"]
    definitions = {d.name: d.outputs["arn"] for d in stack.of_type("aws:batch/jobDefinition:JobDefinition")}
    # THEN each role policy is the plain function the end-to-end tests render for the stand-in
    assert _role_policy(stack, "batch-job-policy") == job_policy(
        bucket_arn=bucket, inventory_prefix="inventory"
    )
    assert _role_policy(stack, "batch-finalize-policy") == finalize_policy(
        bucket_arn=bucket, inventory_prefix="inventory"
    )
    assert _role_policy(stack, "batch-execution-policy") == execution_policy(
        repository_arn=stack.one("aws:ecr/repository:Repository").outputs["arn"],
        log_group_arn=stack.one("aws:cloudwatch/logGroup:LogGroup", "batch-jobs").outputs["arn"],
    )
    assert _role_policy(stack, "trigger-policy") == trigger_policy(
        bucket_arn=bucket,
        inventory_prefix="inventory",
        queue_arns=[stack.one("aws:batch/jobQueue:JobQueue").outputs["arn"]],
        job_definition_arns=[definitions[f"batch-{kind}"] for kind in ("split", "process", "finalize")],
        log_group_arn=stack.one("aws:cloudwatch/logGroup:LogGroup", "trigger-logs").outputs["arn"],
        failed_events_queue_arn=stack.one("aws:sqs/queue:Queue").outputs["arn"],
    )


def test_the_job_role_cannot_touch_the_run_claim_and_lists_only_run_prefixes(stack):
    arn = stack.one(BUCKET, "inventory-destination").outputs["arn"]
    statements = {s["Sid"]: s for s in _role_policy(stack, "batch-job-policy")["Statement"]}
    writable = [r for s in statements.values() if "s3:PutObject" in s["Action"] for r in s["Resource"]]
    assert f"{arn}/run-state/*" not in writable
    assert not any(r.endswith(("claim.json", "rejected.json")) for r in writable)
    assert f"{arn}/run-state/source_bucket=*/run_date=*/plan.json" in writable
    assert not any("inventory-chunks" in r for s in statements.values() for r in s["Resource"])  # no copy
    assert f"{arn}/processed/*" in writable
    assert statements["ListRunPrefixes"] == {
        "Sid": "ListRunPrefixes",
        "Effect": "Allow",
        "Action": ["s3:ListBucket"],
        "Resource": [arn],
        "Condition": {
            "StringLike": {
                "s3:prefix": [
                    "inventory/*",
                    "processed/*",
                    "run-state/*",
                    "run-reports/*",
                    "rollups/*",
                    "reports/*",
                ]
            }
        },
    }
    execution = {s["Sid"] for s in _role_policy(stack, "batch-execution-policy")["Statement"]}
    assert execution == {"EcrToken", "PullJobImage", "WriteJobLogs"}  # pull the image and write logs


def test_no_role_lists_the_destination_without_an_s3_prefix_condition(stack):
    destination = stack.one(BUCKET, "inventory-destination").outputs["arn"]
    for policy, statement in _statements(stack, "aws:iam/rolePolicy:RolePolicy"):
        if "s3:ListBucket" in statement["Action"] and destination in statement["Resource"]:
            assert statement["Condition"]["StringLike"]["s3:prefix"], f"{policy}/{statement['Sid']}"


def test_finalize_runs_as_its_own_role_and_no_other_job_can_read_the_table_or_write_a_page(stack):
    roles = {r.name: r.outputs["arn"] for r in stack.of_type("aws:iam/role:Role")}
    definitions = stack.of_type("aws:batch/jobDefinition:JobDefinition")
    ran_as = {d.name: json.loads(d.inputs["containerProperties"])["jobRoleArn"] for d in definitions}
    assert ran_as == {
        "batch-split": roles["batch-job-role"],
        "batch-process": roles["batch-job-role"],
        "batch-finalize": roles["batch-finalize-role"],
        "batch-snapshot": roles["batch-snapshot-role"],
    }
    arn = stack.one(BUCKET, "inventory-destination").outputs["arn"]
    job = [_role_policy(stack, "batch-job-policy")]
    for key in (
        "processed/source_bucket=b/run_date=d/part-000000.parquet",
        "rollups/prefix/x",
        "run-reports/x",
    ):
        assert not is_allowed(job, "s3:GetObject", f"{arn}/{key}", {}), key
    assert not is_allowed(job, "s3:PutObject", f"{arn}/reports/source_bucket=b/latest.html", {})
    finalize = [_role_policy(stack, "batch-finalize-policy")]
    assert is_allowed(finalize, "s3:PutObject", f"{arn}/reports/source_bucket=b/latest.html", {})
    assert not is_allowed(finalize, "s3:PutObject", f"{arn}/processed/source_bucket=b/run_date=d/p", {})
    assert not is_allowed(finalize, "s3:DeleteObject", f"{arn}/processed/source_bucket=b/run_date=d/p", {})


def test_the_snapshot_job_runs_as_its_own_role_listing_only_the_source_buckets(stack):
    # GIVEN the stack's source bucket, destination and snapshot job definition
    source = stack.one(BUCKET, "inventory-source").outputs["arn"]
    destination = stack.one(BUCKET, "inventory-destination").outputs["arn"]
    definition = stack.one("aws:batch/jobDefinition:JobDefinition", "batch-snapshot")
    properties = json.loads(definition.inputs["containerProperties"])
    role = stack.one("aws:iam/role:Role", "batch-snapshot-role").outputs["arn"]
    # THEN it runs the shared command as the snapshot role, not the run jobs' role
    assert properties["command"] == list(SNAPSHOT.command)
    assert definition.inputs["parameters"] == dict(SNAPSHOT.default_parameters)
    assert properties["jobRoleArn"] == role
    assert role != stack.one("aws:iam/role:Role", "batch-job-role").outputs["arn"]
    # AND its policy lists the source buckets only and writes only a listing's keys
    policy = _role_policy(stack, "batch-snapshot-policy")
    assert policy == snapshot_policy(
        bucket_arn=destination, inventory_prefix="inventory", source_bucket_arns=[source]
    )
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["ListSourceBuckets"]["Resource"] == [source]
    assert statements["WriteListings"]["Resource"] == [f"{destination}/inventory/*/{LISTING_CONFIG_ID}/*"]
    assert stack.outputs["snapshotJobDefinitionArn"] == definition.outputs["arn"]


def test_roles_trust_their_service_for_this_account_only(stack):
    for role in stack.of_type("aws:iam/role:Role"):
        (statement,) = stack.policy(role, "assumeRolePolicy")["Statement"]
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}, role.name
        if statement["Principal"]["Service"] == "ecs-tasks.amazonaws.com":
            assert statement["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:*"}


# ---------- trigger ----------


def test_the_lambda_is_wired_to_this_stacks_queue_and_definitions(stack):
    function = stack.one("aws:lambda/function:Function")
    definitions = {d.name: d.outputs["arn"] for d in stack.of_type("aws:batch/jobDefinition:JobDefinition")}
    assert function.inputs["runtime"] == "python3.13" and function.inputs["architectures"] == ["arm64"]
    assert function.inputs["handler"] == HANDLER
    assert function.inputs["environment"]["variables"] == {
        "JOB_QUEUE": stack.one("aws:batch/jobQueue:JobQueue").outputs["arn"],
        "PROCESS_JOB_QUEUE": stack.one("aws:batch/jobQueue:JobQueue").outputs["arn"],  # on demand
        "SPLIT_JOB_DEFINITION": definitions["batch-split"],
        "PROCESS_JOB_DEFINITION": definitions["batch-process"],
        "FINALIZE_JOB_DEFINITION": definitions["batch-finalize"],
        "INVENTORY_PREFIX": "inventory/",
        "TARGET_CHUNK_MIB": "1024",
        "CLAIM_LEASE_SECONDS": str(function.inputs["timeout"].__int__()),
    }
    code = function.inputs["code"]  # the zip the bundle tests run the handler from
    assert code.path == ARCHIVE.relative_to(ROOT).as_posix()  # relative: the same from any checkout
    assert sorted(zipfile.ZipFile(ROOT / code.path).namelist()) == sorted(bundle_files())
    assert (
        function.inputs["loggingConfig"]["logGroup"]
        == stack.one("aws:cloudwatch/logGroup:LogGroup", "trigger-logs").outputs["name"]
    )
    invoke = stack.one("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
    failed = stack.one("aws:sqs/queue:Queue")
    assert invoke.inputs["destinationConfig"] == {"onFailure": {"destination": failed.outputs["arn"]}}
    assert invoke.inputs["maximumRetryAttempts"] == 2
    submit = next(
        s for n, s in _statements(stack, "aws:iam/rolePolicy:RolePolicy") if s["Sid"] == "SubmitRunJobs"
    )
    # every revision of each definition: a revision registered during `pulumi up` never fails a submit
    assert submit["Resource"] == [
        stack.one("aws:batch/jobQueue:JobQueue").outputs["arn"],
        *(
            definitions[f"batch-{kind}"].removesuffix(":1") + ":*"
            for kind in ("split", "process", "finalize")
        ),
    ]


def test_the_notification_targets_the_lambda_after_its_permission(stack):
    function = stack.one("aws:lambda/function:Function")
    permission = stack.one("aws:lambda/permission:Permission")
    notification = stack.one("aws:s3/bucketNotification:BucketNotification")
    destination = stack.one(BUCKET, "inventory-destination")
    assert permission.inputs["principal"] == "s3.amazonaws.com"
    assert permission.inputs["action"] == "lambda:InvokeFunction"
    assert permission.inputs["sourceArn"] == destination.outputs["arn"]
    assert permission.inputs["sourceAccount"] == ACCOUNT
    assert permission.inputs["function"] == function.outputs["name"]
    assert notification.inputs["lambdaFunctions"] == [
        {
            "lambdaFunctionArn": function.outputs["arn"],
            "events": ["s3:ObjectCreated:*"],
            "filterPrefix": "inventory/",
            "filterSuffix": "manifest.json",
        }
    ]
    names = [r.name for r in stack.resources]
    assert names.index("trigger-s3-invoke") < names.index("trigger-notification")


# ---------- whole graph ----------


def test_no_policy_allows_wildcard_actions_and_every_wildcard_resource_is_justified(stack):
    statements = _statements(stack, "aws:iam/rolePolicy:RolePolicy") + _statements(
        stack, "aws:s3/bucketPolicy:BucketPolicy"
    )
    assert len(statements) > 10
    for policy, statement in statements:
        if statement["Effect"] != "Allow":
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any(a == "*" or a.endswith(":*") for a in actions), (
            f"{policy}/{statement.get('Sid')}: {actions}"
        )
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        if "*" in resources:
            assert (policy, statement["Sid"]) in STAR_RESOURCES_JUSTIFIED, (
                f"{policy}/{statement['Sid']} uses Resource *"
            )


def test_stack_outputs(stack):
    outputs = stack.outputs
    assert outputs["destinationBucket"] == stack.one(BUCKET, "inventory-destination").outputs["bucket"]
    assert outputs["inventoryPrefix"] == "inventory"  # where the smoke test delivers
    assert outputs["triggerFunctionName"] == stack.one("aws:lambda/function:Function").outputs["name"]
    assert outputs["imageUri"] == stack.one("docker:index/image:Image").inputs["imageName"]
    assert outputs["backfillCommand"].startswith(f"JOB_QUEUE={outputs['jobQueueArn']} ")
    assert outputs["backfillCommand"].endswith(
        f"python -m pipeline trigger s3://{outputs['destinationBucket']}/inventory/SOURCE-BUCKET/s3-inventory-pipeline-test/YYYY-MM-DDTHH-MMZ/manifest.json"
    )
    # the newest storage report of each source bucket, at the key finalize replaces (layout.py)
    assert outputs["sourceBuckets"]
    assert outputs["storageReports"] == [
        f"s3://{outputs['destinationBucket']}/reports/source_bucket={b}/latest.html"
        for b in outputs["sourceBuckets"]
    ]


def test_every_component_child_has_its_component_as_parent(stack):
    components = {r.name for r in stack.resources if r.type.startswith("s3inventory:index:")}
    assert components == {"inventory", "jobs", "batch", "trigger", "analytics", "alerts"}


# ---------- config errors ----------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"sourceRegion": "eu-west-1"},
            "config key s3-inventory-pipeline:sourceRegion: the source buckets are in eu-west-1 but the destination is in us-east-1",
        ),
        (
            {"processMemoryMib": 2048},
            "config key s3-inventory-pipeline:processVcpu/processMemoryMib: 2048 MiB is not valid with 2 vCPU; Fargate allows 4096 to 16384 in steps of 1024",
        ),
        (
            {"splitVcpu": "3"},
            "config key s3-inventory-pipeline:splitVcpu/splitMemoryMib: vCPU '3' is not a Fargate size",
        ),
        ({"splitVcpu": "0.25", "splitMemoryMib": 1536}, "Fargate allows 512, 1024, 2048"),
        (
            {"ephemeralStorageGib": 10},
            "ephemeralStorageGib: Fargate ephemeral storage is 21 to 200 GiB, or 0 for its default 20 GiB, got 10",
        ),
        ({"jobAttempts": 11}, "jobAttempts: AWS Batch allows 1 to 10 attempts, got 11"),
        ({"processCapacity": "cheap"}, "processCapacity: must be one of on-demand, spot, got 'cheap'"),
        ({"includeObjectVersions": "Latest"}, "includeObjectVersions: must be Current or All"),
        ({"imagePlatform": "linux/386"}, "imagePlatform: must be one of linux/amd64, linux/arm64"),
        ({"createSourceBucket": False}, "createSourceBucket: is false and no existingSourceBuckets"),
        (
            {"crossAccountSourceBuckets": ["b"], "crossAccountRoleArn": "nope"},
            "crossAccountRoleArn: must be an IAM role ARN",
        ),
        ({"triggerTimeoutSeconds": 901}, "triggerTimeoutSeconds: Lambda allows 1 to 900 seconds"),
        (
            {"logRetentionDays": 10},
            "logRetentionDays: CloudWatch Logs keeps logs for 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, "
            "365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653 days, got 10",
        ),
        ({"logRetentionDays": 0}, "logRetentionDays: CloudWatch Logs keeps logs for 1, 3, 5"),
        (
            {"inventoryRetentionDays": -1},
            "inventoryRetentionDays: must be 0 (keep the deliveries) or a number",
        ),
        ({"inventoryPrefix": ""}, "inventoryPrefix: must be a non-empty key prefix"),
        ({"inventoryPrefix": "inventory/"}, "inventoryPrefix: must be a non-empty key prefix"),
        (
            {"inventoryPrefix": "processed/inventory"},
            "inventoryPrefix: must not start with a prefix the pipeline writes",
        ),
    ],
)
def test_config_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError) as err:
        settings(**overrides)
    assert message in str(err.value)


def test_a_missing_key_is_named():
    from components.config import load_settings
    from tests.components.conftest import project_defaults

    values = project_defaults()
    del values["targetChunkMib"]
    with pytest.raises(ConfigError, match="config key s3-inventory-pipeline:targetChunkMib is missing"):
        load_settings(values, region="us-east-1", stack="dev")
    with pytest.raises(ConfigError, match="config key aws:region is missing"):
        load_settings(project_defaults(), region=None, stack="dev")


def test_pulumi_yaml_declares_exactly_the_settings_with_type_default_and_description():
    import yaml

    from components.config import CONFIG_KEYS
    from tests.components.conftest import ROOT

    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert set(declared) == set(CONFIG_KEYS)
    for key, spec in declared.items():
        assert {"type", "default", "description"} <= spec.keys(), key
    example = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    own = {k.split(":", 1)[1]: v for k, v in example.items() if k.startswith("s3-inventory-pipeline:")}
    assert set(own) <= set(CONFIG_KEYS)
    assert settings(**own).include_object_versions == "All"


def test_the_program_reads_its_config_and_exports_the_outputs():
    import runpy

    import pulumi

    from tests.components.conftest import MOCKS, ROOT, project_defaults

    config = {
        f"s3-inventory-pipeline:{k}": json.dumps(v) if not isinstance(v, str) else v
        for k, v in project_defaults().items()
    }
    config.update(
        {"aws:region": "us-east-1", "s3-inventory-pipeline:existingSourceBuckets": '["adopted-one"]'}
    )
    pulumi.runtime.set_all_config(config)
    MOCKS.reset()
    try:

        @pulumi.runtime.test
        def program():
            runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

        program()
    finally:
        pulumi.runtime.set_all_config({})
    inventories = sorted(
        r.inputs["bucket"] for r in MOCKS.resources if r.type == "aws:s3/inventory:Inventory"
    )
    assert len(inventories) == 2 and "adopted-one" in inventories
    assert any(r.type == "aws:lambda/function:Function" for r in MOCKS.resources)


def test_the_readmes_config_table_matches_pulumi_yaml():
    import yaml

    from components.config import CONFIG_KEYS

    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Config keys", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]

    def cells(spec: dict[str, Any]) -> list[str]:
        default = spec["default"]
        shown = (default or '""') if isinstance(default, str) else json.dumps(default)
        return [spec["type"], f"`{shown}`", spec["description"]]

    table = {}
    for row in rows:
        key, *rest = (cell.strip() for cell in row.strip("|").split(" | "))
        table[key.strip("`")] = rest
    assert list(table) == list(declared)  # every key, in Pulumi.yaml's order
    for key, spec in declared.items():
        assert table[key] == cells(spec), key
    assert set(table) == set(CONFIG_KEYS)


@pytest.mark.parametrize("days", [1, 7, 30, 731, 3653])
def test_every_log_group_keeps_logs_for_an_allowed_period(days):
    from components.config import LOG_RETENTION_DAYS

    groups = deploy(settings(logRetentionDays=days)).of_type("aws:cloudwatch/logGroup:LogGroup")
    assert sorted(g.name for g in groups) == ["batch-jobs", "trigger-logs"]
    assert {g.inputs["retentionInDays"] for g in groups} == {days}
    assert days in LOG_RETENTION_DAYS


def test_the_default_tasks_use_fargates_own_disk_and_sizes_measured_for_streaming(stack):
    for definition in stack.of_type("aws:batch/jobDefinition:JobDefinition"):
        assert "ephemeralStorage" not in json.loads(definition.inputs["containerProperties"]), definition.name
    [environment] = stack.of_type("aws:batch/computeEnvironment:ComputeEnvironment")
    assert environment.inputs["computeResources"]["type"] == "FARGATE"


def test_processor_children_on_fargate_spot_get_a_queue_of_their_own():
    # GIVEN processCapacity spot
    stack = deploy(settings(processCapacity="spot"))
    environments = {e.name: e for e in stack.of_type("aws:batch/computeEnvironment:ComputeEnvironment")}
    assert {n: e.inputs["computeResources"]["type"] for n, e in environments.items()} == {
        "batch-compute": "FARGATE",
        "batch-spot-compute": "FARGATE_SPOT",
    }
    queues = {q.name: q for q in stack.of_type("aws:batch/jobQueue:JobQueue")}
    # THEN the processor queue takes Spot first, on-demand only when Spot is at its maxVcpus
    assert queues["batch-process-queue"].inputs["computeEnvironmentOrders"] == [
        {"order": 1, "computeEnvironment": environments["batch-spot-compute"].outputs["arn"]},
        {"order": 2, "computeEnvironment": environments["batch-compute"].outputs["arn"]},
    ]
    on_demand, spot = queues["batch-queue"].outputs["arn"], queues["batch-process-queue"].outputs["arn"]
    function = stack.one("aws:lambda/function:Function")
    variables = function.inputs["environment"]["variables"]
    assert (variables["JOB_QUEUE"], variables["PROCESS_JOB_QUEUE"]) == (on_demand, spot)
    # the trigger may submit to both queues, and a failed run on either alerts
    submit = next(
        s for s in _role_policy(stack, "trigger-policy")["Statement"] if s["Sid"] == "SubmitRunJobs"
    )
    assert submit["Resource"][:2] == [on_demand, spot]
    rule = stack.one("aws:cloudwatch/eventRule:EventRule")
    assert json.loads(rule.inputs["eventPattern"])["detail"]["jobQueue"] == [on_demand, spot]
    assert stack.outputs["processJobQueueArn"] == spot
