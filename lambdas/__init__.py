"""Code that runs in AWS Lambda. Standard library, boto3 and ``pipeline.contract`` only."""
