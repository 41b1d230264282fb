"""Private networking: a VPC whose private subnets reach S3, ECR and CloudWatch Logs through VPC
endpoints, so the jobs need neither a public IP nor a NAT gateway."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config import PROJECT, ConfigError

VPC_CIDR = "10.42.0.0/16"
SUBNET_PREFIX = 20  # /20: 4,091 addresses a subnet, room for any Fargate concurrency Batch allows
SUBNET_CIDRS = tuple(str(n) for n in ipaddress.ip_network(VPC_CIDR).subnets(new_prefix=SUBNET_PREFIX))
INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs")


@dataclass(frozen=True)
class PrivateNetworkArgs:
    region: str
    subnet_count: int


class PrivateNetwork(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    subnet_ids: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: PrivateNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("s3inventory:index:PrivateNetwork", name, None, opts)
        if args.subnet_count > len(SUBNET_CIDRS):
            msg = (
                f"config key {PROJECT}:privateSubnetCount is {args.subnet_count}, but the VPC's {VPC_CIDR} "
                f"holds at most {len(SUBNET_CIDRS)} /{SUBNET_PREFIX} subnets"
            )
            raise ConfigError(msg)
        child = pulumi.ResourceOptions(parent=self)
        vpc = aws.ec2.Vpc(
            f"{name}-vpc", cidr_block=VPC_CIDR, enable_dns_support=True, enable_dns_hostnames=True, opts=child
        )
        # the Region's own zones: Local and Wavelength Zones an account opted into are left out
        zones = aws.get_availability_zones_output(
            state="available", filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}]
        ).names
        routes = aws.ec2.RouteTable(f"{name}-private", vpc_id=vpc.id, opts=child)  # no route to the internet
        subnets = []
        for i in range(args.subnet_count):

            def zone(names: list[str], i: int = i) -> str:
                return one_zone_each(names, args.subnet_count, args.region)[i]

            subnet = aws.ec2.Subnet(
                f"{name}-private-{i}",
                vpc_id=vpc.id,
                cidr_block=SUBNET_CIDRS[i],
                availability_zone=zones.apply(zone),
                map_public_ip_on_launch=False,
                # chosen once: a zone list that changes later (a zone added or impaired) must not
                # replace a subnet, whose new copy would clash with its own CIDR
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["availabilityZone"]),
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i}", subnet_id=subnet.id, route_table_id=routes.id, opts=child
            )
            subnets.append(subnet)
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[routes.id],
            opts=child,
        )
        endpoints_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            description="HTTPS from the VPC to its interface endpoints",
            vpc_id=vpc.id,
            ingress=[{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": [VPC_CIDR]}],
            opts=child,
        )
        for service in INTERFACE_ENDPOINTS:
            aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in subnets],
                security_group_ids=[endpoints_sg.id],
                opts=child,
            )
        self.vpc_id = vpc.id
        self.subnet_ids = pulumi.Output.all(*[s.id for s in subnets])
        self.register_outputs({"vpc_id": self.vpc_id, "subnet_ids": self.subnet_ids})


def one_zone_each(zones: list[str], count: int, region: str) -> list[str]:
    """A zone for each of ``count`` subnets, all different: an interface endpoint takes at most one
    subnet per zone (``CreateVpcEndpoint`` fails on two), so a count above the Region's zones fails
    at preview instead, naming the key and the limit."""
    if count > len(zones):
        msg = (
            f"config key {PROJECT}:privateSubnetCount is {count}, but {region} has {len(zones)} "
            f"Availability Zones available ({', '.join(zones)}): set it to at most {len(zones)}"
        )
        raise ConfigError(msg)
    return zones[:count]
