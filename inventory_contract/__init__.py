"""The inventory contract: the one source of truth for what S3 delivers and where runs write.

The bottom layer (docs/adr/0012): the Lambda bundle, the batch jobs, the Pulumi program and the
operator CLI import it; it imports the standard library only (``s3`` takes the caller's boto3
client rather than importing boto3), so the Lambda zip never pulls in Polars or the CLI.

- ``manifest``: parse and validate ``manifest.json`` and ``manifest.checksum``.
- ``delivery``: parse a delivery key into source bucket, config id, timestamp and run date.
- ``schema``: map ``fileSchema`` to typed, snake_case output columns.
- ``layout``: every key the pipeline writes in the destination bucket.
- ``jobs``: the batch job commands and parameters, shared by the stack and the local runner.
"""
