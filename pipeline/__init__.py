"""s3-inventory-pipeline: daily Amazon S3 Inventory to analytics-ready Parquet.

This package holds the operator CLI (``python -m pipeline``) and, in
``pipeline.contract``, the inventory contract that the Lambda bundle, the batch
jobs and the CLI all import. Keep this file free of imports: the Lambda bundle
ships it, and it must not pull in anything beyond the standard library.
"""
