"""Day 2: the program run again after everyday work plans no rebuild of the image, and a change
to what the image is built from plans one under a new tag.

Each run is the whole ``__main__.py`` of a clean clone under the mocks, in a process of its own, as
``pulumi up`` runs it. pulumi-docker decides to rebuild from the image resource's inputs plus its
digest of the build context (``tests/docker_context.py``); both are compared between the runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.image_context import DOCKERFILE, content_tag
from tests.components.conftest import project_defaults, run_program
from tests.docker_context import EVERYDAY_WORK, clean_clone, context_digest, plant

pytestmark = pytest.mark.slow
IMAGE = "docker:index/image:Image"


def planned_image(clone: Path) -> dict[str, Any]:
    """What pulumi-docker diffs: the image's inputs with the context digest its Check adds."""
    done = run_program("dev", project_defaults(), root=clone)
    assert done.returncode == 0, done.stderr[-3000:]
    [image] = [r for r in json.loads(done.stdout.strip().splitlines()[-1])["resources"] if r["type"] == IMAGE]
    inputs = dict(image["inputs"])
    inputs["build"] = {**inputs["build"], "contextDigest": context_digest(clone, clone / DOCKERFILE)}
    return inputs


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    return clean_clone(Path(__file__).resolve().parents[2], tmp_path / "clone")


def test_a_second_up_after_everyday_work_plans_no_rebuild(clone: Path) -> None:
    first = planned_image(clone)
    assert first["build"]["context"] == str(clone)  # the clone's program ran, not this checkout's
    assert first["imageName"].endswith(":" + content_tag("linux/amd64", clone))

    plant(clone, EVERYDAY_WORK)

    assert planned_image(clone) == first


def test_a_second_up_after_a_job_change_plans_a_rebuild_under_a_new_tag(clone: Path) -> None:
    first = planned_image(clone)
    with (clone / "batch_jobs/process.py").open("a") as f:
        f.write("\n# a change to a job\n")

    second = planned_image(clone)

    assert second["build"]["contextDigest"] != first["build"]["contextDigest"]  # rebuilt and pushed
    assert _tag(second) != _tag(first)  # under a tag the IMMUTABLE repository does not hold yet
    assert _tag(second) == content_tag("linux/amd64", clone)


def _tag(inputs: dict[str, Any]) -> str:
    return str(inputs["imageName"]).rpartition(":")[2]
