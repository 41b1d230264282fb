"""Day 2: the program run again after everyday work plans no change, from any checkout, and a
change to what the image is built from plans a rebuild under a new tag.

Each run is the whole ``__main__.py`` of a clean clone under the mocks, in a process of its own, as
``pulumi up`` runs it. pulumi-docker decides to rebuild from the image resource's inputs plus its
digest of the build context (``tests/docker_context.py``): the image's inputs are compared with
that digest added, and every other resource's inputs as they are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.image_context import CONTEXT, DOCKERFILE, content_tag
from tests.components.conftest import project_defaults, run_program
from tests.docker_context import EVERYDAY_WORK, clean_clone, context_digest, plant, under_umask_002

pytestmark = pytest.mark.slow
IMAGE = "docker:index/image:Image"
ROOT = Path(__file__).resolve().parents[2]


def planned(clone: Path) -> dict[str, Any]:
    """Every resource's inputs by type and name, the image's with the context digest its Check adds."""
    done = run_program("dev", project_defaults(), root=clone)
    assert done.returncode == 0, done.stderr[-3000:]
    resources = json.loads(done.stdout.strip().splitlines()[-1])["resources"]
    found = {(r["type"], r["name"]): r["inputs"] for r in resources}
    image = next(key for key in found if key[0] == IMAGE)
    digest = context_digest(clone / CONTEXT, clone / CONTEXT / DOCKERFILE)  # the folder the program made
    found[image] = {**found[image], "build": {**found[image]["build"], "contextDigest": digest}}
    return found


def image_of(plan: dict[str, Any]) -> dict[str, Any]:
    return next(inputs for (typ, _), inputs in plan.items() if typ == IMAGE)


@pytest.fixture(scope="module")
def first_up(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The plan of a clean clone: what the first `pulumi up` deployed."""
    return planned(clean_clone(ROOT, tmp_path_factory.mktemp("first") / "clone"))


def test_a_second_up_after_everyday_work_from_another_checkout_plans_no_change(
    first_up: dict[str, Any], tmp_path: Path
) -> None:
    # GIVEN another checkout of the same commit (a laptop on umask 002, at another path)
    other = under_umask_002(clean_clone(ROOT, tmp_path / "elsewhere" / "deep" / "checkout"))
    assert image_of(first_up)["imageName"].endswith(":" + content_tag("linux/amd64", other))
    # WHEN everyday work leaves its files all over it
    plant(other, EVERYDAY_WORK)
    # THEN `pulumi up` from there plans no change to any resource, the image included
    assert planned(other) == first_up


def test_a_job_change_plans_a_rebuild_under_a_new_tag_and_a_revert_plans_the_first_again(
    first_up: dict[str, Any], tmp_path: Path
) -> None:
    clone = clean_clone(ROOT, tmp_path / "clone")
    job = clone / "batch_jobs/process.py"
    original = job.read_text()
    job.write_text(original + "\n# a change to a job\n")

    second = planned(clone)

    assert image_of(second)["build"]["contextDigest"] != image_of(first_up)["build"]["contextDigest"]
    assert _tag(second) != _tag(first_up)  # rebuilt and pushed under a tag of its own
    assert _tag(second) == content_tag("linux/amd64", clone)
    job.write_text(original)  # git revert: the first tag again, re-pushed over the image it holds
    assert planned(clone) == first_up


def _tag(plan: dict[str, Any]) -> str:
    return str(image_of(plan)["imageName"]).rpartition(":")[2]
