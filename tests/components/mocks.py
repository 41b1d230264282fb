"""The recording Pulumi mocks: every resource registered and every invoke called, with outputs
shaped as AWS returns them. ``conftest.py`` installs one instance for the test session; the
two-stack test installs its own in a subprocess per stack (``set_mocks`` is process-wide)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITIONS = {"aws": "com.amazonaws", "aws-cn": "cn.com.amazonaws", "aws-us-gov": "com.amazonaws"}


@dataclass
class Recorded:
    type: str
    name: str
    inputs: dict[str, Any]
    provider: str
    outputs: dict[str, Any]
    id: str
    retain_on_delete: bool = False  # the resource option: `pulumi destroy` leaves it in the account


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[Recorded] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.partition = "aws"  # what the getPartition invoke answers, and every ARN's partition
        self.default_vpc = True  # whether the account has a default VPC
        self.retained: set[tuple[str, str]] = set()  # (type, name) registered with retainOnDelete

    def reset(self) -> None:
        """Forget what an earlier program run registered."""
        self.resources.clear()
        self.retained.clear()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        outputs = dict(args.inputs)
        service = args.typ.split(":")[1].split("/")[0]
        # Pulumi's auto-names end in a random suffix; here the suffix derives from the stack
        suffix = hashlib.sha256(f"{pulumi.get_stack()}/{args.name}".encode()).hexdigest()[:7]
        physical = f"{args.name}-{suffix}"
        arn = f"arn:{self.partition}"
        match args.typ:
            case "aws:s3/bucket:Bucket":
                outputs.setdefault("bucket", physical)
                outputs["arn"] = f"{arn}:s3:::{outputs['bucket']}"
            case "aws:ecr/repository:Repository":
                outputs["repositoryUrl"] = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{physical}"
                outputs["registryId"] = ACCOUNT
                outputs["name"] = physical
                outputs["arn"] = f"{arn}:ecr:{REGION}:{ACCOUNT}:repository/{physical}"
            case "aws:batch/jobDefinition:JobDefinition":
                outputs["arn"] = f"{arn}:batch:{REGION}:{ACCOUNT}:job-definition/{physical}:1"
            case "aws:batch/jobQueue:JobQueue":
                outputs["arn"] = f"{arn}:batch:{REGION}:{ACCOUNT}:job-queue/{physical}"
            case "aws:sqs/queue:Queue":
                outputs["arn"] = f"{arn}:sqs:{REGION}:{ACCOUNT}:{physical}"
                outputs["name"] = physical
            case "aws:cloudwatch/logGroup:LogGroup":
                outputs["name"] = physical
                outputs["arn"] = f"{arn}:logs:{REGION}:{ACCOUNT}:log-group:{physical}"
            case "aws:lambda/function:Function":
                outputs["name"] = physical
                outputs["arn"] = f"{arn}:lambda:{REGION}:{ACCOUNT}:function:{physical}"
            case "aws:cloudwatch/eventRule:EventRule":
                outputs["name"] = physical
                outputs["arn"] = f"{arn}:events:{REGION}:{ACCOUNT}:rule/{physical}"
            case "aws:cloudwatch/metricAlarm:MetricAlarm":
                outputs["name"] = physical
                outputs["arn"] = f"{arn}:cloudwatch:{REGION}:{ACCOUNT}:alarm:{physical}"
            case "docker:index/image:Image":  # what the push answers: the manifest's digest
                built = json.dumps([args.inputs["imageName"], args.inputs["build"]], sort_keys=True)
                pushed = hashlib.sha256(built.encode()).hexdigest()
                outputs["repoDigest"] = f"{args.inputs['imageName'].rpartition(':')[0]}@sha256:{pushed}"
            case "aws:sns/topic:Topic":
                outputs["name"] = physical
                outputs["arn"] = f"{arn}:sns:{REGION}:{ACCOUNT}:{physical}"
            case _:
                outputs.setdefault("name", physical)
                outputs.setdefault("arn", f"{arn}:{service}:{REGION}:{ACCOUNT}:{args.name}")
        resource_id = f"{physical}-id"
        self.resources.append(
            Recorded(
                args.typ,
                args.name,
                dict(args.inputs),
                args.provider or "",
                outputs,
                resource_id,
                (args.typ, args.name) in self.retained,
            )
        )
        return [resource_id, outputs]

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.calls.append((args.token, dict(args.args)))
        match args.token:
            case "aws:index/getCallerIdentity:getCallerIdentity":
                return {
                    "accountId": ACCOUNT,
                    "arn": f"arn:{self.partition}:iam::{ACCOUNT}:user/ci",
                    "userId": "AIDA",
                    "id": ACCOUNT,
                }
            case "aws:index/getPartition:getPartition":
                return {
                    "id": self.partition,
                    "partition": self.partition,
                    "dnsSuffix": "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com",
                    "reverseDnsPrefix": PARTITIONS[self.partition],
                }
            case "aws:ec2/getVpcs:getVpcs":
                return {"id": REGION, "ids": ["vpc-default"] if self.default_vpc else []}
            case "aws:ec2/getSubnets:getSubnets":
                return {"id": "vpc-default", "ids": ["subnet-default-a", "subnet-default-b"]}
            case "aws:index/getAvailabilityZones:getAvailabilityZones":
                return {
                    "id": REGION,
                    "names": ["us-east-1a", "us-east-1b", "us-east-1c"],
                    "zoneIds": ["use1-az1", "use1-az2", "use1-az4"],
                }
            case "aws:ec2/getSubnet:getSubnet":
                return {"id": args.args.get("id"), "vpcId": "vpc-custom"}
            case "aws:ecr/getAuthorizationToken:getAuthorizationToken":
                return {
                    "authorizationToken": "QVdTOnB3",
                    "userName": "AWS",
                    "password": "pw",
                    "proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com",
                    "expiresAt": "2030-01-01T00:00:00Z",
                    "id": ACCOUNT,
                }
        return {}


class RecordingMonitor(MockMonitor):
    """Pulumi's mock monitor, which hands ``new_resource`` no resource options, telling the mocks
    each registration's ``retainOnDelete`` first (what ``pulumi destroy`` leaves in the account)."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording = mocks

    def RegisterResource(self, request: Any) -> Any:
        if request.retainOnDelete:  # registrations run on several threads: keyed, not "the current"
            self.recording.retained.add((request.type, request.name))
        return super().RegisterResource(request)


def install(mocks: RecordingMocks, stack: str) -> None:
    """The mocks for this process (``set_mocks`` is process-wide), with preview=False so that
    every ``apply`` runs and every assertion is checked."""
    pulumi.runtime.set_mocks(
        mocks, project="s3-inventory-pipeline", stack=stack, preview=False, monitor=RecordingMonitor(mocks)
    )
