"""The inventory contract: the one source of truth for what S3 delivers and where runs write.

Standard library only (plus boto3 where S3 is read): the Lambda bundle ships this package,
and it must never import Polars.

- ``manifest``: parse and validate ``manifest.json`` and ``manifest.checksum``.
- ``delivery``: parse a delivery key into source bucket, config id, timestamp and run date.
- ``schema``: map ``fileSchema`` to typed, snake_case output columns.
- ``layout``: every key the pipeline writes in the destination bucket.
- ``jobs``: the batch job commands and parameters, shared by the stack and the local runner.
"""
