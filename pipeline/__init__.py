"""s3-inventory-pipeline: daily Amazon S3 Inventory to analytics-ready Parquet.

This package is the operator CLI (``python -m pipeline``), the top layer: it may import the Pulumi
components, the trigger, the jobs and the inventory contract (``inventory_contract``), and nothing
below it imports it. Neither the Lambda zip nor the job image ships it.
"""
