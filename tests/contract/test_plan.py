"""The run's plan: which rows of which data files each processor child reads."""

from __future__ import annotations

import random

import pytest

from inventory_contract.jobs import MAX_ARRAY_SIZE
from inventory_contract.plan import (
    BALANCE,
    ChunkPlan,
    Share,
    check_plan,
    chunk_count,
    piece_offsets,
    plan_chunks,
)

MiB = 2**20


def loads(plan: ChunkPlan, sizes: list[int]) -> list[float]:
    return [sum(sizes[s.file] / s.pieces for s in chunk) for chunk in plan.chunks]


def test_whole_files_are_packed_by_bytes_and_never_cut_when_they_balance():
    # four equal files, two children: two files each, none cut
    plan = plan_chunks([40 * MiB] * 4, 81 * MiB)
    assert plan.chunks == ((Share(0), Share(2)), (Share(1), Share(3)))
    assert plan.pieces == {}
    # eight files of a 2M-row delivery on two cores: four each
    assert [len(c) for c in plan_chunks([81 * MiB] * 8, 325 * MiB).chunks] == [4, 4]


def test_one_file_is_cut_so_that_every_child_gets_work():
    plan = plan_chunks([81 * MiB], 41 * MiB)
    assert plan.chunks == ((Share(0, 0, 2),), (Share(0, 1, 2),))
    assert plan.pieces == {0: 2}


def test_only_the_file_that_cannot_balance_is_cut():
    # one 5,000 MiB file and two small ones, 256 MiB chunks: the large one is cut, the rest whole
    sizes = [5000 * MiB, 10 * MiB, 10 * MiB]
    plan = plan_chunks(sizes, 256 * MiB)
    assert set(plan.pieces) == {0}
    assert max(loads(plan, sizes)) <= BALANCE * sum(sizes) / plan.count
    assert check_plan(plan, len(sizes)) == []


def test_files_of_equal_size_fill_a_count_near_the_target_rather_than_being_cut():
    # 400 files of 200 MiB at 256 MiB a chunk: 313 chunks would leave 87 with two files each;
    # 400 chunks of one file each balance perfectly and cut nothing
    plan = plan_chunks([200 * MiB] * 400, 256 * MiB)
    assert chunk_count(400 * 200 * MiB, 256 * MiB) == 313
    assert plan.count == 400
    assert plan.pieces == {}


def test_a_file_larger_than_the_balance_times_the_target_is_cut():
    sizes = [400 * MiB] * 10
    plan = plan_chunks(sizes, 256 * MiB)
    assert set(plan.pieces) == set(range(10))
    assert max(loads(plan, sizes)) <= BALANCE * sum(sizes) / plan.count


@pytest.mark.parametrize("seed", range(40))
def test_any_delivery_is_read_exactly_once_in_balanced_chunks(seed: int):
    rng = random.Random(seed)
    shape = rng.choice(["many small", "few large", "skewed", "one huge", "mixed"])
    count = {"many small": 300, "few large": 5, "skewed": 60, "one huge": 1, "mixed": 40}[shape]
    sizes = [
        rng.randint(1, 400 * MiB) if shape != "skewed" else int(rng.paretovariate(1.2) * MiB)
        for _ in range(count)
    ]
    if shape == "mixed":
        sizes[0] = 20_000 * MiB
    target = rng.choice([32, 64, 256, 1024]) * MiB
    plan = plan_chunks(sizes, target)
    assert check_plan(plan, len(sizes)) == []
    assert all(plan.chunks)  # no empty chunk
    n = chunk_count(sum(sizes), target)
    assert 1 <= plan.count <= min(2 * n, MAX_ARRAY_SIZE)
    assert max(loads(plan, sizes)) <= BALANCE * sum(sizes) / plan.count * (1 + 1e-9)
    assert plan_chunks(list(sizes), target) == plan  # a pure function: the trigger and the splitter agree


def test_an_empty_delivery_is_one_chunk_of_nothing():
    assert plan_chunks([], 256 * MiB).chunks == ((),)


def test_the_array_limit_holds_and_chunks_grow_past_it():
    sizes = [MiB] * 30_000
    plan = plan_chunks(sizes, MiB)
    assert plan.count == MAX_ARRAY_SIZE
    assert check_plan(plan, len(sizes)) == []


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="target chunk size must be positive, got 0"):
        plan_chunks([1], 0)
    with pytest.raises(ValueError, match="must not be negative"):
        plan_chunks([1, -1], 10)


def test_pieces_split_the_inflated_stream_into_equal_ranges_the_last_open():
    assert piece_offsets(100, 1) == [(0, None)]
    assert piece_offsets(100, 3) == [(0, 33), (33, 66), (66, None)]
    assert piece_offsets(0, 2) == [(0, 0), (0, None)]


def test_a_plan_that_misses_or_repeats_a_file_is_named():
    good = plan_chunks([10, 10, 100], 40)
    assert check_plan(good, 3) == []
    missing = ChunkPlan(((Share(0),), (Share(2, 0, 2), Share(2, 1, 2))))
    assert check_plan(missing, 3) == ["data file 1 is read by no chunk"]
    twice = ChunkPlan(((Share(0), Share(1)), (Share(1), Share(2))))
    assert check_plan(twice, 3) == ["data file 1 is not read exactly once: piece 1 of 1, piece 1 of 1"]
    half = ChunkPlan(((Share(0), Share(1)), (Share(2, 0, 2),)))
    assert check_plan(half, 3) == ["data file 2 is not read exactly once: piece 1 of 2"]
    extra = ChunkPlan(((Share(0), Share(1), Share(2), Share(3)),))
    assert check_plan(extra, 3) == ["the plan reads data file 3, which the manifest does not list"]
