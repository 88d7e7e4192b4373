"""beam_zml.core.splits: the stratified group split on its own (no dataset needed)."""

from __future__ import annotations

import collections
import random

import pytest

from beam_zml.core import splits


def two_label_repositories(n_python: int, n_c: int, seed: int = 1) -> dict[int, collections.Counter]:
    rng = random.Random(seed)
    repositories = {}
    for repo in range(n_python):
        repositories[1000 + repo] = collections.Counter(Python=rng.randint(5, 200))
    for repo in range(n_c):
        repositories[5000 + repo] = collections.Counter(C=rng.randint(5, 200), Python=rng.randint(0, 3))
    return repositories


def per_split_labels(placed: dict[int, str], counts: dict) -> dict[str, collections.Counter]:
    found = {split: collections.Counter() for split in splits.SPLITS}
    for repo, split in placed.items():
        found[split].update(counts[repo])
    return found


@pytest.mark.parametrize("n_c", [3, 4, 9])
def test_every_label_reaches_every_split_and_the_sizes_follow_the_fractions(n_c):
    counts = two_label_repositories(51, n_c)
    placed = splits.stratified_splits(counts, (0.8, 0.1, 0.1), seed=0)
    assert set(placed) == set(counts)
    found = per_split_labels(placed, counts)
    assert all(found[split]["C"] > 0 and found[split]["Python"] > 0 for split in splits.SPLITS)
    total = sum(sum(c.values()) for c in counts.values())
    train_share = sum(found["train"].values()) / total
    assert 0.7 < train_share < 0.9


def test_hash_splits_miss_a_class_that_the_stratified_split_keeps():
    counts = two_label_repositories(51, 3)
    by_hash = per_split_labels({repo: splits.split_of(repo) for repo in counts}, counts)
    assert any(by_hash[split]["C"] == 0 for split in splits.SPLITS)  # the failure, on these ids


def test_a_label_on_two_repositories_goes_to_train_and_test_then_one_to_train():
    counts = {1: collections.Counter(Python=50), 2: collections.Counter(Python=60), 3: collections.Counter(Python=70),
              4: collections.Counter(Python=40), 5: collections.Counter(Fortran=9), 6: collections.Counter(Fortran=12),
              7: collections.Counter(COBOL=3)}  # fmt: skip
    placed = splits.stratified_splits(counts, (0.8, 0.1, 0.1))
    assert {placed[5], placed[6]} == {"train", "test"}
    assert placed[7] == "train"


def test_the_split_is_the_same_for_a_seed_and_empty_fractions_get_nothing():
    counts = two_label_repositories(30, 5)
    assert splits.stratified_splits(counts, seed=3) == splits.stratified_splits(dict(reversed(counts.items())), seed=3)
    assert set(splits.stratified_splits(counts, (0.9, 0.0, 0.1)).values()) == {"train", "test"}
    assert set(splits.stratified_splits(counts, (1.0, 0.0, 0.0)).values()) == {"train"}


def test_record_splits_keeps_versions_of_one_concept_together():
    records = [{"record_id": r, "concept_id": 77 if r < 4 else None, "n_images": 5, "language": None, "license": None}
               for r in range(1, 10)]  # fmt: skip
    files = [{"record_id": r, "language": "C" if r % 2 else "Python", "n_segments": 5} for r in range(1, 10)]
    placed = splits.record_splits(records, files, fractions=(0.6, 0.2, 0.2))
    assert len({placed[1], placed[2], placed[3]}) == 1
    with pytest.raises(ValueError, match="split_by must be"):
        splits.record_splits(records, files, split_by="random")
