"""The ECR repository and the one image that holds both jobs, built and pushed by pulumi-docker.

The image is pushed under a tag derived from its inputs (``components/image_context.py``), so
``pulumi up`` rebuilds exactly when they change, and the job definitions name it by digest
(``repoDigest``), so each run starts exactly the image that was pushed for it. The tags are mutable
on purpose: going back to earlier inputs (a revert, a rollback) rebuilds under a tag the
repository already holds, which an IMMUTABLE repository would refuse; the digest pinning gives the
guarantee immutability was for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from components.image_context import CONTEXT, DOCKERFILE, assemble_context, content_tag

KEEP_IMAGES = 10


@dataclass(frozen=True)
class JobImageArgs:
    platform: str


class JobImage(pulumi.ComponentResource):
    image_uri: pulumi.Output[str]
    image_digest_uri: pulumi.Output[str]
    repository_arn: pulumi.Output[str]
    repository_url: pulumi.Output[str]

    def __init__(self, name: str, args: JobImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("s3inventory:index:JobImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        repository = aws.ecr.Repository(
            f"{name}-repository",
            image_scanning_configuration={"scan_on_push": True},
            image_tag_mutability="MUTABLE",
            # ECR refuses to delete a repository that holds images, and this one always holds the
            # image the stack pushed: a build output, rebuilt by the next `pulumi up`.
            force_delete=True,
            opts=child,
        )
        keep_last = {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"keep the last {KEEP_IMAGES} images",
                    "selection": {
                        "tagStatus": "any",
                        "countType": "imageCountMoreThan",
                        "countNumber": KEEP_IMAGES,
                    },
                    "action": {"type": "expire"},
                }
            ]
        }
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle", repository=repository.name, policy=json.dumps(keep_last), opts=child
        )
        token = aws.ecr.get_authorization_token_output(registry_id=repository.registry_id)
        tag = content_tag(args.platform)
        assemble_context()  # build/image/: the inputs alone, with the modes git records
        image = docker.Image(
            f"{name}-image",
            image_name=pulumi.Output.concat(repository.repository_url, ":", tag),
            # Relative to the project folder, where Pulumi runs the program and the provider: an
            # absolute path would differ between checkouts and rebuild the image from each.
            build=docker.DockerBuildArgs(
                context=CONTEXT, dockerfile=f"{CONTEXT}/{DOCKERFILE}", platform=args.platform
            ),
            registry=docker.RegistryArgs(
                server=repository.repository_url,
                username=token.user_name,
                password=pulumi.Output.secret(token.password),
            ),
            opts=child,
        )
        self.image_uri = image.image_name
        self.image_digest_uri = image.repo_digest
        self.repository_arn = repository.arn
        self.repository_url = repository.repository_url
        self.register_outputs(
            {
                "image_uri": self.image_uri,
                "image_digest_uri": self.image_digest_uri,
                "repository_arn": self.repository_arn,
            }
        )
