"""The stack's settings: read once in ``__main__.py``, validated here, handed to the components.

Types, defaults and descriptions of every key live in ``Pulumi.yaml`` only. This module turns
the values into a frozen ``StackSettings`` and rejects bad combinations early (at preview) with
a message that names the key and what is allowed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Protocol

from components.fargate import EPHEMERAL_STORAGE_GIB, fargate_size_problem
from inventory_contract.layout import CHUNKS_ROOT, PROCESSED_ROOT, REPORTS_ROOT, STATE_ROOT
from inventory_contract.rollups import MAX_PREFIX_DEPTH, ROLLUPS, rollup_table_suffix

PROJECT = "s3-inventory-pipeline"
PLATFORMS = {"linux/amd64": "X86_64", "linux/arm64": "ARM64"}
ON_DEMAND, SPOT = "on-demand", "spot"
CAPACITIES = {ON_DEMAND: "FARGATE", SPOT: "FARGATE_SPOT"}
"""processCapacity -> the compute environment type the processor children run on."""
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/.+$")
# The only retention periods CloudWatch Logs accepts (PutRetentionPolicy), in days.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
# Glue (and so Athena) names: lower-case letters, digits and _; Athena rejects upper case and '-'.
GLUE_NAME_MAX = 255
_GLUE_NAME = re.compile(r"[a-z0-9_]{1,255}")
# S3 Inventory configuration IDs: letters, digits, '.', '-' and '_', at most 64 characters.
_INVENTORY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Fields that are not config keys of this project: aws:region, and the Pulumi stack's name.
_NOT_KEYS = ("region", "stack")


class ConfigError(ValueError):
    """A stack config value is missing or invalid; the message names the key."""


@dataclass(frozen=True)
class StackSettings:
    region: str
    stack: str  # pulumi.get_stack(): account-level names derive from it unless config sets them
    create_source_bucket: bool
    existing_source_buckets: tuple[str, ...]
    cross_account_source_buckets: tuple[str, ...]
    cross_account_role_arn: str
    source_region: str
    include_object_versions: str
    inventory_prefix: str
    inventory_config_id: str
    inventory_retention_days: int
    force_destroy: bool
    state_retention_days: int
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    assign_public_ip: bool
    max_vcpus: int
    split_vcpu: str
    split_memory_mib: int
    process_vcpu: str
    process_memory_mib: int
    process_capacity: str
    ephemeral_storage_gib: int
    job_attempts: int
    job_timeout_minutes: int
    log_retention_days: int
    target_chunk_mib: int
    image_platform: str
    trigger_timeout_seconds: int
    alert_email: str
    private_networking: bool
    private_subnet_count: int
    catalog_database: str
    catalog_table: str
    athena_scan_limit_gib: int
    rollup_prefix_depth: int

    @property
    def cpu_architecture(self) -> str:
        return PLATFORMS[self.image_platform]

    @property
    def cross_account_id(self) -> str | None:
        match = _ROLE_ARN.match(self.cross_account_role_arn)
        return match.group(1) if match else None

    @property
    def metric_namespace(self) -> str:
        """The CloudWatch namespace of this stack's own metrics (metric filters): one per stack, so
        two stacks in one account never add to each other's counts."""
        return f"{PROJECT}/{self.stack}"


def derived_inventory_config_id(stack: str) -> str:
    """``s3-inventory-pipeline-<stack>``: an inventory configuration of its own per stack.

    Pulumi stack names (letters, digits, '-', '_', '.') are valid in an inventory ID as they are;
    a name too long for the ID's 64 characters is cut and made unique with a hash of the stack.
    """
    derived = f"{PROJECT}-{stack}"
    if len(derived) <= 64:
        return derived
    return f"{derived[:55]}-{_short_hash(stack)}"


def derived_catalog_database(stack: str) -> str:
    """``s3_inventory_<stack>``, lower-cased, with every character Glue rejects turned into ``_``.

    Two stacks whose names differ only in case, '-', '.' or '_' derive the same name: set
    catalogDatabase on one of them.
    """
    return "s3_inventory_" + re.sub(r"[^a-z0-9_]", "_", stack.lower())


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def config_key(field_name: str) -> str:
    """``split_memory_mib`` -> ``splitMemoryMib``, the key's name in Pulumi.yaml."""
    head, *rest = field_name.split("_")
    return head + "".join(part.capitalize() for part in rest)


CONFIG_KEYS = tuple(config_key(f.name) for f in fields(StackSettings) if f.name not in _NOT_KEYS)


class ConfigReader(Protocol):
    def get(self, key: str) -> str | None: ...
    def get_bool(self, key: str) -> bool | None: ...
    def get_int(self, key: str) -> int | None: ...
    def get_object(self, key: str) -> Any: ...


def read_config(config: ConfigReader) -> dict[str, Any]:
    """Each key read as the type its settings field declares (None when unset)."""
    values: dict[str, Any] = {}
    for f in fields(StackSettings):
        if f.name in _NOT_KEYS:
            continue
        key = config_key(f.name)
        kind = str(f.type)
        if kind == "bool":
            values[key] = config.get_bool(key)
        elif kind == "int":
            values[key] = config.get_int(key)
        elif kind.startswith("tuple"):
            values[key] = config.get_object(key)
        else:
            values[key] = config.get(key)
    return values


def load_settings(values: Mapping[str, Any], *, region: str | None, stack: str) -> StackSettings:
    """Build and validate the settings from the raw config values (None for an unset key).

    ``stack`` is the Pulumi stack's name: an empty ``catalogDatabase`` or ``inventoryConfigId``
    derives from it, so that two stacks in one account (or on one shared source bucket) never
    share an account-level name.
    """
    if not region:
        msg = "config key aws:region is missing: set it with `pulumi config set aws:region us-east-1`"
        raise ConfigError(msg)
    if not stack:
        msg = "the Pulumi stack has no name; select one with `pulumi stack select`"
        raise ConfigError(msg)
    raw: dict[str, Any] = {"region": region, "stack": stack}
    for f in fields(StackSettings):
        if f.name in _NOT_KEYS:
            continue
        key = config_key(f.name)
        value = values.get(key)
        if value is None:
            msg = f"config key {PROJECT}:{key} is missing; Pulumi.yaml declares its type and default"
            raise ConfigError(msg)
        raw[f.name] = tuple(value) if isinstance(value, list) else value
    raw["catalog_database"] = raw["catalog_database"] or derived_catalog_database(stack)
    raw["inventory_config_id"] = raw["inventory_config_id"] or derived_inventory_config_id(stack)
    settings = StackSettings(**raw)
    _validate(settings)
    return settings


def _validate(s: StackSettings) -> None:
    def fail(key: str, problem: str) -> None:
        msg = f"config key {PROJECT}:{key}: {problem}"
        raise ConfigError(msg)

    if s.source_region and s.source_region != s.region:
        fail(
            "sourceRegion",
            f"the source buckets are in {s.source_region} but the destination is in {s.region} (aws:region); "
            "S3 Inventory delivers only to a destination bucket in the same Region as the source",
        )
    if not (s.create_source_bucket or s.existing_source_buckets or s.cross_account_source_buckets):
        fail(
            "createSourceBucket", "is false and no existingSourceBuckets or crossAccountSourceBuckets are set"
        )
    if s.cross_account_source_buckets and s.cross_account_id is None:
        fail(
            "crossAccountRoleArn",
            f"must be an IAM role ARN when crossAccountSourceBuckets is set, got {s.cross_account_role_arn!r}",
        )
    if s.include_object_versions not in ("Current", "All"):
        fail("includeObjectVersions", f"must be Current or All, got {s.include_object_versions!r}")
    for key, vcpu, memory in (
        ("splitVcpu/splitMemoryMib", s.split_vcpu, s.split_memory_mib),
        ("processVcpu/processMemoryMib", s.process_vcpu, s.process_memory_mib),
    ):
        problem = fargate_size_problem(str(vcpu), int(memory))
        if problem:
            fail(key, problem)
    low, high = EPHEMERAL_STORAGE_GIB
    if s.ephemeral_storage_gib != 0 and not low <= s.ephemeral_storage_gib <= high:
        fail(
            "ephemeralStorageGib",
            f"Fargate ephemeral storage is {low} to {high} GiB, or 0 for its default 20 GiB, "
            f"got {s.ephemeral_storage_gib}",
        )
    if s.process_capacity not in CAPACITIES:
        fail("processCapacity", f"must be one of {', '.join(CAPACITIES)}, got {s.process_capacity!r}")
    if not 1 <= s.job_attempts <= 10:
        fail("jobAttempts", f"AWS Batch allows 1 to 10 attempts, got {s.job_attempts}")
    if s.job_timeout_minutes < 1:
        fail(
            "jobTimeoutMinutes", f"must be at least 1 (Batch's minimum is 60 s), got {s.job_timeout_minutes}"
        )
    if s.image_platform not in PLATFORMS:
        fail("imagePlatform", f"must be one of {', '.join(PLATFORMS)}, got {s.image_platform!r}")
    if not 1 <= s.trigger_timeout_seconds <= 900:
        fail("triggerTimeoutSeconds", f"Lambda allows 1 to 900 seconds, got {s.trigger_timeout_seconds}")
    if s.max_vcpus < 1:
        fail("maxVcpus", f"must be positive, got {s.max_vcpus}")
    if s.state_retention_days < 1:
        fail("stateRetentionDays", f"must be at least 1 day, got {s.state_retention_days}")
    if s.log_retention_days not in LOG_RETENTION_DAYS:
        allowed = ", ".join(map(str, LOG_RETENTION_DAYS[:-1])) + f" or {LOG_RETENTION_DAYS[-1]}"
        fail("logRetentionDays", f"CloudWatch Logs keeps logs for {allowed} days, got {s.log_retention_days}")
    if s.inventory_retention_days < 0:
        fail(
            "inventoryRetentionDays",
            f"must be 0 (keep the deliveries) or a number of days, got {s.inventory_retention_days}",
        )
    problem = inventory_prefix_problem(s.inventory_prefix)
    if problem:
        fail("inventoryPrefix", problem)
    if not _INVENTORY_ID.fullmatch(s.inventory_config_id):
        fail(
            "inventoryConfigId",
            "must be 1 to 64 letters, digits, '.', '-' or '_' (an S3 Inventory configuration ID), "
            f"got {s.inventory_config_id!r}",
        )
    if s.target_chunk_mib < 1:
        fail("targetChunkMib", f"must be positive, got {s.target_chunk_mib}")
    if s.private_networking and (s.subnet_ids or s.security_group_ids):
        fail(
            "privateNetworking", "creates its own VPC and subnets; leave subnetIds and securityGroupIds empty"
        )
    if s.private_subnet_count < 2:
        fail("privateSubnetCount", f"needs at least 2 (two Availability Zones), got {s.private_subnet_count}")
    for key, name in (("catalogDatabase", s.catalog_database), ("catalogTable", s.catalog_table)):
        if not _GLUE_NAME.fullmatch(name):
            fail(key, f"must be 1 to 255 lower-case letters, digits and _ (Athena-friendly), got {name!r}")
    longest = max(len(rollup_table_suffix(r)) for r in ROLLUPS)
    if len(s.catalog_table) + longest > GLUE_NAME_MAX:
        fail(
            "catalogTable",
            f"must be at most {GLUE_NAME_MAX - longest} characters: its rollup tables add up to {longest} "
            f"(Glue names are at most {GLUE_NAME_MAX}), got {len(s.catalog_table)}",
        )
    if s.athena_scan_limit_gib < 1:
        fail("athenaScanLimitGib", f"must be at least 1, got {s.athena_scan_limit_gib}")
    if not 1 <= s.rollup_prefix_depth <= MAX_PREFIX_DEPTH:
        fail("rollupPrefixDepth", f"must be 1 to {MAX_PREFIX_DEPTH}, got {s.rollup_prefix_depth}")
    if s.alert_email and "@" not in s.alert_email:
        fail("alertEmail", f"must be an email address or empty, got {s.alert_email!r}")
    if s.security_group_ids and not s.subnet_ids:
        fail("subnetIds", "is empty but securityGroupIds is set; give both, or neither for the default VPC")


def inventory_prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot be the inventory prefix, or None.

    It is where S3 Inventory delivers, the trigger's filter and the scope of the deliveries' expiry,
    so it must be a prefix of its own: never empty (an expiry rule with an empty prefix would expire
    the whole bucket) and never one of the prefixes the pipeline writes.
    """
    if not prefix or prefix.startswith("/") or prefix.endswith("/") or "//" in prefix:
        return f"must be a non-empty key prefix without a leading or trailing '/' (e.g. inventory), got {prefix!r}"
    owned = (CHUNKS_ROOT, PROCESSED_ROOT, STATE_ROOT, REPORTS_ROOT)
    if prefix.split("/", 1)[0] in owned:
        return f"must not start with a prefix the pipeline writes ({', '.join(owned)}), got {prefix!r}"
    return None
