"""Code that runs in AWS Lambda. Standard library, boto3 and ``inventory_contract`` only.

The zip ships boto3 itself, at the versions of ``requirements/lambda.lock``
(``components/lambda_bundle.py``, docs/adr/0006); ``sdk.py`` checks at cold start that it can make
the conditional writes the claim needs.
"""
