"""One recording Mocks class for the session (``set_mocks`` is process-wide), run with preview=False
so that every ``apply`` runs and every assertion is checked."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components.config import StackSettings, load_settings

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Recorded:
    type: str
    name: str
    inputs: dict[str, Any]
    provider: str
    outputs: dict[str, Any]
    id: str


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[Recorded] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        outputs = dict(args.inputs)
        service = args.typ.split(":")[1].split("/")[0]
        physical = f"{args.name}-{abs(hash(args.name)) % 10**6:06d}"
        match args.typ:
            case "aws:s3/bucket:Bucket":
                outputs.setdefault("bucket", physical)
                outputs["arn"] = f"arn:aws:s3:::{outputs['bucket']}"
            case "aws:ecr/repository:Repository":
                outputs["repositoryUrl"] = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{physical}"
                outputs["registryId"] = ACCOUNT
                outputs["name"] = physical
                outputs["arn"] = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{physical}"
            case "aws:batch/jobDefinition:JobDefinition":
                outputs["arn"] = f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/{physical}:1"
            case "aws:batch/jobQueue:JobQueue":
                outputs["arn"] = f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/{physical}"
            case "aws:sqs/queue:Queue":
                outputs["arn"] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{physical}"
                outputs["name"] = physical
            case "aws:cloudwatch/logGroup:LogGroup":
                outputs["name"] = physical
                outputs["arn"] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{physical}"
            case "aws:lambda/function:Function":
                outputs["name"] = physical
                outputs["arn"] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}"
            case _:
                outputs.setdefault("name", physical)
                outputs.setdefault("arn", f"arn:aws:{service}:{REGION}:{ACCOUNT}:{args.name}")
        resource_id = f"{physical}-id"
        self.resources.append(
            Recorded(args.typ, args.name, dict(args.inputs), args.provider or "", outputs, resource_id)
        )
        return [resource_id, outputs]

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.calls.append((args.token, dict(args.args)))
        match args.token:
            case "aws:index/getCallerIdentity:getCallerIdentity":
                return {
                    "accountId": ACCOUNT,
                    "arn": f"arn:aws:iam::{ACCOUNT}:user/ci",
                    "userId": "AIDA",
                    "id": ACCOUNT,
                }
            case "aws:index/getPartition:getPartition":
                return {
                    "partition": "aws",
                    "dnsSuffix": "amazonaws.com",
                    "id": "aws",
                    "reverseDnsPrefix": "com.amazonaws",
                }
            case "aws:ec2/getVpc:getVpc":
                return {"id": "vpc-default", "default": True, "cidrBlock": "172.31.0.0/16"}
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


MOCKS = RecordingMocks()
pulumi.runtime.set_mocks(MOCKS, project="s3-inventory-pipeline", stack="test", preview=False)


def project_defaults() -> dict[str, Any]:
    """The config values `pulumi` would apply from Pulumi.yaml's declared defaults."""
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    return {key: spec["default"] for key, spec in declared.items()}


def settings(**overrides: Any) -> StackSettings:
    return load_settings({**project_defaults(), **overrides}, region=REGION)


@dataclass
class Deployed:
    resources: list[Recorded]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name: str | None = None) -> Recorded:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {typ} {name or ''}, found {[r.name for r in found]}"
        return found[0]

    def policy(self, r: Recorded, key: str = "policy") -> dict[str, Any]:
        value = r.inputs[key]
        return json.loads(value) if isinstance(value, str) else value


def deploy(stack_settings: StackSettings) -> Deployed:
    """Run the whole program under the mocks and wait for every resource to be registered."""
    from components.stack import build_stack

    MOCKS.resources.clear()
    captured: dict[str, Any] = {}

    @pulumi.runtime.test
    def program():
        outputs = build_stack(stack_settings)
        return pulumi.Output.all(**outputs).apply(captured.update)

    program()
    return Deployed(resources=list(MOCKS.resources), outputs=captured)


@pytest.fixture(scope="module")
def stack() -> Deployed:
    return deploy(settings())
