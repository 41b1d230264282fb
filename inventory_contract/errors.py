"""Errors of the inventory contract. All are ``ValueError``: the input is wrong, not the code."""


class ContractError(ValueError):
    """An input does not follow the S3 Inventory contract. Permanent: retrying will not help."""


class ManifestError(ContractError):
    """``manifest.json`` is malformed, incomplete, or does not match its checksum."""


class UnsupportedFormatError(ManifestError):
    """The inventory is delivered in a format this pipeline does not convert."""


class DeliveryKeyError(ContractError):
    """An object key is not an S3 Inventory ``manifest.json`` delivery key."""


class ListingSourceError(ContractError):
    """A bucket to list as an inventory (``snapshot``) cannot be: no such bucket, another Region,
    or a malformed ``s3://BUCKET[/PREFIX]``."""
