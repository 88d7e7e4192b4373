"""Train, validation and test splits of repositories: by a hash of the repository, or stratified by a label.

Splits are made by repository, never by file or image: the images of one repository
are often near copies of each other (vendored files, versions, generated code), so a
split by image would grade a model on what it saw in training. A repository is a
Zenodo concept (every version of one piece of software) or, without one, a record.

Two ways to place repositories (`SPLIT_BY`):
- "hash": `split_of` places each by the SHA-256 of its id, alone: the same on every
  machine and run, and unchanged when records are added. With few repositories a split
  can miss a label entirely (or be empty).
- "stratified": `stratified_splits` places them together, so that each label value is in
  every split where its repositories allow, and each split's share of each label is near
  the fractions. Deterministic for a dataset and a seed, but adding repositories can
  move others: compare models only on one build.
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Iterable, Mapping, Sequence

SPLITS = ("train", "validation", "test")
SPLIT_BY = ("stratified", "hash")
EXAMPLE_LABELS = ("language", "extension")  # string features of each image (docs/dataset-format.md#images)
RECORD_LABELS = ("license", "resource_type", "access_right", "source")  # string fields of its record (records/)
# The order in which a label with too few repositories for every split is given to the splits:
# a model must see a class to learn it, then it must be graded on it.
COVERAGE_ORDER = ("train", "test", "validation")


def repository_of(record: dict) -> int:
    """The repository a records/ row belongs to: its Zenodo concept if it has one, else the record itself."""
    return record.get("concept_id") or record["record_id"]


def check_fractions(fractions: Sequence[float]) -> None:
    """Refuse (ValueError) anything but one non-negative share per split, adding up to 1."""
    if len(fractions) != len(SPLITS) or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be {len(SPLITS)} non-negative numbers adding up to 1, got {tuple(fractions)}")


def split_of(repository_id: int, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> str:
    """The split of a repository, "train", "validation" or "test", by the SHA-256 of its id read as a point in [0, 1)."""
    check_fractions(fractions)
    point = int.from_bytes(hashlib.sha256(str(repository_id).encode("ascii")).digest()[:8], "big") / 2**64
    bound = 0.0
    for name, fraction in zip(SPLITS, fractions):
        bound += fraction
        if point < bound:
            return name
    return SPLITS[-1]  # the fractions add up to 1 only within rounding


def stratified_splits(
    counts: Mapping[int, Mapping[str, int]], fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[int, str]:
    """The split of each repository, keeping each whole, so that every label is in every split it can be in.

    `counts` maps a repository id to its images per label value (e.g. {"Python": 120, "C": 4});
    a repository with no images goes where `split_of` puts it. A greedy assignment in two passes:

    1. Coverage: labels in order of fewest repositories first (then by value); for each split
       with a positive fraction, in COVERAGE_ORDER, that still lacks the label, the smallest
       unplaced repository holding it goes there. A label on k repositories reaches
       min(k, splits) splits: on one repository it is in train only, on two in train and test.
    2. Balance: the other repositories, largest first, each to the split where it brings the
       images of its labels closest to the fractions: the least sum over its labels of the
       growth of (images in the split - fraction * all images of the label)**2, scaled by the
       label's total so that rare labels count as much as common ones (plus the same term
       for the split's size).

    Ties (equal sizes) are broken by a SHA-256 of (seed, repository), so the result is the
    same on every machine for a seed. Returns {repository: "train" | "validation" | "test"}.
    """
    check_fractions(fractions)
    active = [index for index, fraction in enumerate(fractions) if fraction > 0]
    label_totals = collections.Counter()
    for labels in counts.values():
        label_totals.update({label: n for label, n in labels.items() if n > 0})
    size = {repo: sum(n for n in labels.values() if n > 0) for repo, labels in counts.items()}
    grand_total = sum(size.values())

    def tiebreak(repo: int) -> bytes:
        return hashlib.sha256(f"{seed}:{repo}".encode("ascii")).digest()

    placed: dict[int, int] = {}
    per_split = [collections.Counter() for _ in SPLITS]
    split_sizes = [0] * len(SPLITS)

    def place(repo: int, split: int) -> None:
        placed[repo] = split
        per_split[split].update({label: n for label, n in counts[repo].items() if n > 0})
        split_sizes[split] += size[repo]

    holders = collections.defaultdict(list)
    for repo in counts:
        for label, n in counts[repo].items():
            if n > 0:
                holders[label].append(repo)
    coverage = [SPLITS.index(name) for name in COVERAGE_ORDER if SPLITS.index(name) in active]
    for label in sorted(holders, key=lambda label: (len(holders[label]), label)):
        for split in coverage:
            if per_split[split][label] > 0:
                continue
            free = [repo for repo in holders[label] if repo not in placed]
            if not free:
                break
            place(min(free, key=lambda repo: (size[repo], tiebreak(repo))), split)

    def growth(repo: int, split: int) -> float:
        fraction = fractions[split]
        cost = sum(
            (n * n + 2 * n * (per_split[split][label] - fraction * label_totals[label])) / label_totals[label] ** 2
            for label, n in counts[repo].items()
            if n > 0
        )
        n = size[repo]
        return cost + (n * n + 2 * n * (split_sizes[split] - fraction * grand_total)) / grand_total**2

    rest = sorted((repo for repo in counts if repo not in placed and size[repo] > 0), key=lambda r: (-size[r], tiebreak(r)))
    for repo in rest:
        place(repo, min(active, key=lambda split: (growth(repo, split), split)))
    splits = {repo: SPLITS[split] for repo, split in placed.items()}
    splits.update({repo: split_of(repo, fractions) for repo in counts if repo not in placed})
    return splits


def label_counts(records: Iterable[dict], files: Iterable[dict], label: str) -> dict[int, collections.Counter]:
    """Images per value of `label` in each repository, from records/ and files/ rows.

    An Example label (EXAMPLE_LABELS) counts each imaged file's images under its value; a
    record label (RECORD_LABELS) counts the record's images under its value ("" if missing).
    Every repository of `records` is present, with an empty counter if it has no images.
    """
    if label not in EXAMPLE_LABELS + RECORD_LABELS:
        raise ValueError(f"unknown label {label!r}: choose from {', '.join(EXAMPLE_LABELS + RECORD_LABELS)}")
    records = list(records)
    repository = {row["record_id"]: repository_of(row) for row in records}
    counts = {repo: collections.Counter() for repo in repository.values()}
    if label in RECORD_LABELS:
        for row in records:
            counts[repository[row["record_id"]]][row[label] or ""] += row["n_images"]
    else:
        for row in files:
            if row["n_segments"] and row["record_id"] in repository:
                counts[repository[row["record_id"]]][row[label] or ""] += row["n_segments"]
    return counts


def record_splits(
    records: Iterable[dict],
    files: Iterable[dict],
    *,
    split_by: str = "stratified",
    label: str = "language",
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> dict[int, str]:
    """The split of every record of `records`, by its repository, placed as `split_by` says (see SPLIT_BY).

    "stratified" stratifies on `label`'s values (all of them, however rare) and needs the
    files/ rows for an Example label; "hash" reads neither `files` nor `label`. ValueError
    for an unknown `split_by`, label or bad fractions.
    """
    check_fractions(fractions)
    records = list(records)
    repository = {row["record_id"]: repository_of(row) for row in records}
    if split_by == "hash":
        return {record_id: split_of(repo, fractions) for record_id, repo in repository.items()}
    if split_by != "stratified":
        raise ValueError(f"split_by must be one of {', '.join(SPLIT_BY)}, got {split_by!r}")
    by_repository = stratified_splits(label_counts(records, files, label), fractions, seed)
    return {record_id: by_repository[repo] for record_id, repo in repository.items()}
