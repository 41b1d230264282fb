"""IAM principals in the stand-in that hold exactly one policy document, and their credentials.

Credentials are boto3's keyword arguments (``aws_access_key_id``, ...); upper-cased, they are the
environment variables a job process reads.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from components.role_policies import trust_policy

ACCOUNT = "123456789012"  # moto's default account
ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
_ids = itertools.count()


def role_credentials(iam: Any, sts: Any, name: str, document: dict[str, Any]) -> dict[str, str]:
    """A role holding exactly ``document``, and credentials from assuming it."""
    role_name = f"{name}-{next(_ids)}"
    arn = iam.create_role(
        RoleName=role_name,
        AssumeRolePolicyDocument=json.dumps(trust_policy("lambda.amazonaws.com", ACCOUNT)),
    )["Role"]["Arn"]
    iam.put_role_policy(RoleName=role_name, PolicyName=name, PolicyDocument=json.dumps(document))
    creds = sts.assume_role(RoleArn=arn, RoleSessionName=name)["Credentials"]
    return {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }


def user_credentials(iam: Any, name: str, document: dict[str, Any]) -> dict[str, str]:
    """A user holding exactly ``document``, and an access key of it."""
    user_name = f"{name}-{next(_ids)}"
    iam.create_user(UserName=user_name)
    iam.put_user_policy(UserName=user_name, PolicyName=name, PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName=user_name)["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


def as_environment(credentials: dict[str, str]) -> dict[str, str]:
    return {name.upper(): value for name, value in credentials.items()}
