"""Copies of one content (one SWHID) across files, records and splits: which copy counts, and what leaks.

A content is the bytes of a file, named by its SWHID (`swh:1:cnt:` + the git blob sha1,
Software Heritage's content identifier), so two files are copies exactly when their
SWHIDs are equal, whatever their paths. Only imaged files count: a copy is an image
source that a model would see twice.

The canonical copy of a content is its first occurrence by a stable rule: the lowest
record id, then the lowest path (Unicode code point order). `facts_of_rows` gives every
files/ row its copy facts (COPY_FACTS), from the files/ rows alone (small rows, never image
bytes); the build writes them into files/ and into the file's Examples
(beam_zml.sinks.copy_facts). A loader that knows the splits ranks copies by split first
(`kept_copies`), so that content seen in training is never kept in a test split.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Hashable, Iterable, Sequence

from beam_zml.core.splits import SPLITS

Copy = tuple[int, str]  # (record_id, path): one file of the dataset
COPY_FACTS = ("n_copies", "n_records_sharing", "is_canonical")  # what files/ rows and Examples carry
ONE_COPY = {"n_copies": 1, "n_records_sharing": 1, "is_canonical": True}  # the facts of a content found once


def copy_order(copy: Copy) -> tuple[int, str]:
    """The rule that picks the canonical copy: smallest (record id, path) first."""
    record_id, path = copy
    return record_id, path


def is_copy_candidate(row: dict) -> bool:
    """A files/ row that takes part in duplicate counting: imaged and with a SWHID."""
    return row["status"] == "imaged" and bool(row.get("swhid"))


NO_FACTS = dict.fromkeys(COPY_FACTS)  # the facts of a row that takes no part: skipped, or without a SWHID


def copy_facts(copies: Iterable[Copy]) -> dict[Copy, dict]:
    """The facts each copy of ONE content carries in files/.

    `copies` are the (record_id, path) of every imaged file with that SWHID. Returns, for
    each copy, {"n_copies": files with this content, "n_records_sharing": distinct records
    that hold it, "is_canonical": True for exactly one copy, the first by `copy_order`}.
    Copies with equal facts share one dict (ONE_COPY for a content found once), so that a
    run's rows cost memory per content, not per file: read the dicts, never change them.
    """
    copies = sorted(set(copies), key=copy_order)
    if len(copies) == 1:
        return {copies[0]: ONE_COPY}
    n_records = len({record_id for record_id, _ in copies})
    canonical = {"n_copies": len(copies), "n_records_sharing": n_records, "is_canonical": True}
    other = {**canonical, "is_canonical": False}
    return {copy: canonical if index == 0 else other for index, copy in enumerate(copies)}


def facts_of_rows(rows: Sequence[dict]) -> list[dict]:
    """The copy facts (`copy_facts`) of each files/ row, in the order given; NO_FACTS for a row that is not a
    copy candidate. The dicts are shared between rows: read them, never change them."""
    by_content = collections.defaultdict(list)
    for index, row in enumerate(rows):
        if is_copy_candidate(row):
            by_content[row["swhid"]].append(index)
    found = [NO_FACTS] * len(rows)
    for indices in by_content.values():
        facts = copy_facts((rows[i]["record_id"], rows[i]["path"]) for i in indices)
        for i in indices:
            found[i] = facts[(rows[i]["record_id"], rows[i]["path"])]
    return found


def kept_copies(rows: Iterable[dict], rank: Callable[[int], int] | None = None) -> set[Copy]:
    """The one copy of each content that deduplicated reading keeps: (record_id, path) of imaged files.

    Copies are ordered by `rank(record_id)` (a record's split: 0 train, 1 validation,
    2 test) and then by `copy_order`; the first is kept. Without `rank` this is exactly
    the build's `is_canonical`. With it, a content found in train is kept there, so no
    test image repeats a train image (`leakage` is 0 by construction: every content
    survives in one split only), and the test split keeps only content that no training
    repository holds. Rows without a SWHID are kept: they cannot be compared.
    """
    rank = rank or (lambda record_id: 0)
    best: dict[str, tuple] = {}
    kept: set[Copy] = set()
    for row in rows:
        if row["status"] != "imaged":
            continue
        copy = (row["record_id"], row["path"])
        if not row.get("swhid"):
            kept.add(copy)
            continue
        order = (rank(row["record_id"]), *copy_order(copy))
        if row["swhid"] not in best or order < best[row["swhid"]]:
            best[row["swhid"]] = order
    kept.update((record_id, path) for _, record_id, path in best.values())
    return kept


def leakage(rows: Iterable[dict], split_of_record: Callable[[int], Hashable], *, kept: set[Copy] | None = None,
            train: Hashable = "train", test: Hashable = "test") -> dict:
    """How much of the test split repeats content of the train split.

    `rows` are files/ rows; `split_of_record` gives each record's split; `kept` (from
    `kept_copies`), if given, is the set of files that deduplicated reading keeps, and
    the others are left out. Returns {"test_images": images in test, "leaked_images":
    test images whose file's SWHID is also an imaged train file's, "leaked_files": those
    files, "test_files": imaged test files}.
    """
    train_contents: set[str] = set()
    test_files: list[tuple[str, int]] = []
    for row in rows:
        if not is_copy_candidate(row) or (kept is not None and (row["record_id"], row["path"]) not in kept):
            continue
        split = split_of_record(row["record_id"])
        if split == train:
            train_contents.add(row["swhid"])
        elif split == test:
            test_files.append((row["swhid"], row["n_segments"]))
    leaked = [images for swhid, images in test_files if swhid in train_contents]
    return {
        "test_files": len(test_files),
        "test_images": sum(images for _, images in test_files),
        "leaked_files": len(leaked),
        "leaked_images": sum(leaked),
    }


def duplication(rows: Iterable[dict], top: int = 20) -> dict:
    """The duplication of a dataset's imaged files, from files/ rows (one pass; a counter per SWHID).

    Returns {"files", "bytes", "images": imaged totals; "duplicate_files", "duplicate_bytes",
    "duplicate_images": the same for non-canonical copies (every copy but the first of each
    content), "contents": distinct SWHIDs, "top": the `top` contents with most copies, each
    {"swhid", "path" (of its canonical copy), "copies", "records", "bytes"}, most copies first}.
    """
    totals = collections.Counter()
    copies: dict[str, list] = {}
    for row in rows:
        if not is_copy_candidate(row):
            continue
        totals.update(files=1, bytes=row["size"], images=row["n_segments"])
        copy = (row["record_id"], row["path"])
        seen = copies.get(row["swhid"])
        if seen is None:
            copies[row["swhid"]] = [copy, 1, {row["record_id"]}, row["size"], row["n_segments"]]
        else:
            seen[0] = min(seen[0], copy, key=copy_order)
            seen[1] += 1
            seen[2].add(row["record_id"])
    duplicates = [entry for entry in copies.values() if entry[1] > 1]
    ranked = sorted(copies.items(), key=lambda item: (-item[1][1], -len(item[1][2]), item[0]))
    return {
        "files": totals["files"],
        "bytes": totals["bytes"],
        "images": totals["images"],
        "contents": len(copies),
        "duplicate_files": sum(entry[1] - 1 for entry in duplicates),
        "duplicate_bytes": sum((entry[1] - 1) * entry[3] for entry in duplicates),
        "duplicate_images": sum((entry[1] - 1) * entry[4] for entry in duplicates),
        "top": [
            {"swhid": swhid, "path": entry[0][1], "record_id": entry[0][0], "copies": entry[1], "records": len(entry[2]),
             "bytes": entry[3]}
            for swhid, entry in ranked[:top]
            if entry[1] > 1
        ],
    }


def split_rank(splits: dict[int, str]) -> Callable[[int], int]:
    """`kept_copies`' rank from {record_id: split name}: train first, then validation, then test."""
    return lambda record_id: SPLITS.index(splits[record_id])


def leakage_with_and_without_dedup(files: list[dict], splits: dict[int, str]) -> dict:
    """`leakage` of the test split into the train split, for all files and for those that deduplicated reading keeps.

    `splits` maps each record id to its split. Returns {"without_dedup": {...}, "with_dedup": {...}}, each as
    `leakage` returns it; "with_dedup" has leaked_images 0 by construction (see `kept_copies`).
    """
    kept = kept_copies(files, split_rank(splits))
    return {
        "without_dedup": leakage(files, splits.__getitem__),
        "with_dedup": leakage(files, splits.__getitem__, kept=kept),
    }
