"""Copies of one content across files, records and splits: the build's n_copies/is_canonical, dedup and leakage."""

from __future__ import annotations

import collections
import shutil
import sysconfig
from pathlib import Path

import pytest

from beam_zml.consume import report, tfdata
from beam_zml.consume.dataset import read_examples, read_rows
from beam_zml.core import duplicates
from beam_zml.core.records import local_record_id
from beam_zml.core.splits import split_of
from pipelines import build_dataset

STDLIB = Path(sysconfig.get_paths()["stdlib"])
FRACTIONS = (0.5, 0.25, 0.25)


def row(record_id: int, path: str, swhid: str | None, status: str = "imaged", n_segments: int = 2, size: int = 100) -> dict:
    return {"record_id": record_id, "path": path, "swhid": swhid, "status": status, "n_segments": n_segments, "size": size}


def test_the_canonical_copy_is_the_lowest_record_then_path_and_there_is_one():
    facts = duplicates.copy_facts([(9, "a.js"), (3, "z/jquery.js"), (3, "b/jquery.js"), (12, "x.js")])
    assert [copy for copy, fact in facts.items() if fact["is_canonical"]] == [(3, "b/jquery.js")]
    assert {fact["n_copies"] for fact in facts.values()} == {4}
    assert {fact["n_records_sharing"] for fact in facts.values()} == {3}


def test_facts_of_rows_leave_skipped_files_out_and_count_each_content_apart():
    rows = [row(2, "a.py", "swh:1:cnt:aa"), row(1, "b.py", "swh:1:cnt:aa"), row(1, "c.bin", "swh:1:cnt:aa", "skipped", 0),
            row(3, "d.py", "swh:1:cnt:dd"), row(3, "e.py", None)]  # fmt: skip
    facts = duplicates.facts_of_rows(rows)
    assert len(facts) == len(rows)
    annotated = {r["path"]: {**r, **fact} for r, fact in zip(rows, facts)}
    assert (annotated["d.py"]["n_copies"], annotated["d.py"]["is_canonical"]) == (1, True)
    assert annotated["e.py"]["n_copies"] is None
    assert (annotated["b.py"]["is_canonical"], annotated["a.py"]["is_canonical"]) == (True, False)
    assert annotated["a.py"]["n_copies"] == 2 and annotated["a.py"]["n_records_sharing"] == 2
    assert annotated["c.bin"]["n_copies"] is annotated["c.bin"]["is_canonical"] is None


def test_kept_copies_prefers_the_train_split_over_the_lowest_record():
    rows = [row(1, "lib.js", "swh:1:cnt:aa"), row(5, "vendor/lib.js", "swh:1:cnt:aa"), row(1, "own.py", "swh:1:cnt:bb"),
            row(7, "none.py", None)]  # fmt: skip
    split = {1: "test", 5: "train", 7: "test"}
    assert duplicates.kept_copies(rows) == {(1, "lib.js"), (1, "own.py"), (7, "none.py")}
    kept = duplicates.kept_copies(rows, duplicates.split_rank(split))
    assert kept == {(5, "vendor/lib.js"), (1, "own.py"), (7, "none.py")}
    found = duplicates.leakage_with_and_without_dedup(rows, split)
    assert found["without_dedup"] == {"test_files": 2, "test_images": 4, "leaked_files": 1, "leaked_images": 2}
    assert found["with_dedup"] == {"test_files": 1, "test_images": 2, "leaked_files": 0, "leaked_images": 0}


def test_duplication_counts_every_copy_but_the_first():
    rows = [row(r, f"p{r}.js", "swh:1:cnt:aa", size=1000, n_segments=3) for r in (4, 2, 9)] + [
        row(2, "own.py", "swh:1:cnt:bb", size=10, n_segments=1),
        row(2, "logo.png", "swh:1:cnt:cc", "skipped", 0, size=5000),
    ]
    found = duplicates.duplication(rows)
    assert (found["files"], found["bytes"], found["images"], found["contents"]) == (4, 3010, 10, 2)
    assert (found["duplicate_files"], found["duplicate_bytes"], found["duplicate_images"]) == (2, 2000, 6)
    assert found["top"] == [{"swhid": "swh:1:cnt:aa", "path": "p2.js", "record_id": 2, "copies": 3, "records": 3, "bytes": 1000}]


def named_for_split(root: Path, prefix: str, split: str) -> Path:
    """A folder under `root` whose local record id the hash split puts in `split` (ids follow the absolute path)."""
    for index in range(10_000):
        path = root / f"{prefix}{index}"
        if not path.exists() and split_of(local_record_id(str(path)), FRACTIONS) == split:
            return path
    raise AssertionError(f"no name for {split}")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """Python repositories in train, validation and test, all vendoring one module (the test one twice),
    and three C-only repositories that the hash split puts all in train."""
    root = tmp_path_factory.mktemp("duplicates")
    shared = (STDLIB / "textwrap.py").read_text()
    repositories = {}
    for split, module in (("train", "csv.py"), ("validation", "glob.py"), ("test", "shlex.py")):
        repository = named_for_split(root, "py", split)
        (repository / "vendor").mkdir(parents=True)
        shutil.copy(STDLIB / module, repository / module)
        (repository / "vendor" / "textwrap.py").write_text(shared)
        repositories[split] = repository
    (repositories["test"] / "third_party").mkdir()
    (repositories["test"] / "third_party" / "tw.py").write_text(shared)  # a second copy in one record
    c_repositories = []
    for index in range(3):
        repository = named_for_split(root, "c", "train")
        repository.mkdir()
        (repository / "main.c").write_text("#include <stdio.h>\n" + f"int f{index}(void) {{ return {index}; }}\n" * (40 + index))
        c_repositories.append(repository)
    output = str(root / "dataset")
    build_dataset.run(["--local", *map(str, [*repositories.values(), *c_repositories]), "--output", output])
    files = list(read_rows(output, "files"))
    shared_swhid = next(r["swhid"] for r in files if r["path"] == "vendor/textwrap.py")
    return {"output": output, "files": files, "shared": shared_swhid,
            "ids": {split: local_record_id(str(path)) for split, path in repositories.items()}}  # fmt: skip


def test_files_rows_carry_copies_records_and_one_canonical(built):
    """Written by the files/ sink, whose shards are keyed by content: the facts equal those over every row."""
    files = built["files"]
    assert [{**r, **fact} for r, fact in zip(files, duplicates.facts_of_rows(files))] == files
    copies = [r for r in built["files"] if r["swhid"] == built["shared"]]
    assert len(copies) == 4
    assert {(r["n_copies"], r["n_records_sharing"]) for r in copies} == {(4, 3)}
    canonical = [r for r in copies if r["is_canonical"]]
    assert [(r["record_id"], r["path"]) for r in canonical] == [min((r["record_id"], r["path"]) for r in copies)]
    others = [r for r in built["files"] if r["swhid"] != built["shared"] and r["status"] == "imaged"]
    assert others and all(r["n_copies"] == 1 and r["n_records_sharing"] == 1 and r["is_canonical"] for r in others)


def test_every_example_carries_the_copy_facts_of_its_files_row(built):
    """Read back with TensorFlow: the copies' Examples were rewritten with their facts, the others written so."""
    facts = {(r["record_id"], r["path"]): (r["n_copies"], r["n_records_sharing"], int(r["is_canonical"]))
             for r in built["files"] if r["status"] == "imaged"}  # fmt: skip
    seen = collections.Counter()
    for example in read_examples(built["output"]):
        key = (int(example["record_id"]), example["path"].decode())
        assert (example["n_copies"], example["n_records_sharing"], example["is_canonical"]) == facts[key], key
        assert example["segment"] == seen[key]  # in order, each once: the rewrite kept every image
        seen[key] += 1
    assert seen == {(r["record_id"], r["path"]): r["n_segments"] for r in built["files"] if r["status"] == "imaged"}
    shared = [key for key, (n_copies, _, _) in facts.items() if n_copies == 4]
    assert len(shared) == 4 and sum(facts[key][2] for key in shared) == 1


def content_images(built, split: str, **options) -> collections.Counter:
    """Images of a loaded split per (swhid, record_id, path)."""
    swhid = {(r["record_id"], r["path"]): r["swhid"] for r in built["files"]}
    found = collections.Counter()
    options.setdefault("exclude_vendored", False)  # the shared copy sits in vendor/: this test is about dedup
    for features, _ in tfdata.load(built["output"], split, fractions=FRACTIONS, **options)[0]:
        for record_id, path in zip(features["record_id"].numpy().tolist(), features["path"].numpy().tolist()):
            found[(swhid[(record_id, path.decode())], record_id, path.decode())] += 1
    return found


def test_dedup_yields_each_content_once_and_keeps_shared_content_in_train(built):
    loaded = {split: content_images(built, split, split_by="hash", dedup=True) for split in tfdata.SPLITS}
    files_per_content = collections.defaultdict(set)
    for split, found in loaded.items():
        for swhid, record_id, path in found:
            files_per_content[swhid].add((split, record_id, path))
    imaged = {r["swhid"]: r["n_segments"] for r in built["files"] if r["status"] == "imaged"}
    assert set(files_per_content) == set(imaged)
    assert all(len(copies) == 1 for copies in files_per_content.values())
    assert files_per_content[built["shared"]] == {("train", built["ids"]["train"], "vendor/textwrap.py")}
    assert sum(loaded["train"][key] for key in loaded["train"] if key[0] == built["shared"]) == imaged[built["shared"]]
    without = content_images(built, "test", split_by="hash")
    assert {key[2] for key in without if key[0] == built["shared"]} == {"vendor/textwrap.py", "third_party/tw.py"}


def test_one_split_dedup_keeps_exactly_the_canonical_files_of_the_build(built):
    loaded = collections.Counter()
    load = tfdata.load(built["output"], "train", fractions=(1.0, 0.0, 0.0), dedup=True, shuffle=False, exclude_vendored=False)
    for features, _ in load[0]:
        for record_id, path in zip(features["record_id"].numpy().tolist(), features["path"].numpy().tolist()):
            loaded[(record_id, path.decode())] += 1
    assert loaded == {(r["record_id"], r["path"]): r["n_segments"] for r in built["files"] if r["is_canonical"]}


@pytest.mark.parametrize("split_by", ["hash", "stratified"])
def test_leakage_counts_test_images_of_train_content_and_none_with_dedup(built, split_by):
    found = tfdata.leakage(built["output"], split_by=split_by, fractions=FRACTIONS)
    assert found["with_dedup"]["leaked_images"] == 0 and found["with_dedup"]["leaked_files"] == 0
    if split_by == "hash":
        shared_images = next(r["n_segments"] for r in built["files"] if r["swhid"] == built["shared"])
        assert found["without_dedup"]["leaked_files"] == 2
        assert found["without_dedup"]["leaked_images"] == 2 * shared_images
        assert found["with_dedup"]["test_images"] == found["without_dedup"]["test_images"] - 2 * shared_images


def test_the_stratified_split_puts_both_languages_in_every_split_where_the_hash_split_does_not(built):
    def languages(split: str, split_by: str) -> set[str]:
        dataset, vocabulary = tfdata.load(built["output"], split, fractions=FRACTIONS, split_by=split_by)
        return {vocabulary["language"][i] for _, labels in dataset for i in labels["language"].numpy().tolist()}

    assert languages("test", "hash") == {"Python"}  # the three C repositories all hash to train
    for split in tfdata.SPLITS:
        assert languages(split, "stratified") == {"Python", "C"}
    placed = tfdata.splits(built["output"], fractions=FRACTIONS)
    assert placed == tfdata.splits(built["output"], fractions=FRACTIONS)  # the same every time


def test_the_report_gives_the_duplication_rate_top_copies_and_leakage(built, tmp_path):
    statistics = report.read_statistics(built["output"])
    found = statistics["duplicates"]
    shared = [r for r in built["files"] if r["swhid"] == built["shared"]]
    imaged = [r for r in built["files"] if r["status"] == "imaged"]
    assert (found["files"], found["duplicate_files"]) == (len(imaged), 3)
    assert found["duplicate_images"] == 3 * shared[0]["n_segments"]
    assert found["duplicate_bytes"] == 3 * shared[0]["size"]
    canonical = next(r for r in shared if r["is_canonical"])
    assert found["top"][0] == {"swhid": built["shared"], "path": canonical["path"], "record_id": canonical["record_id"],
                               "copies": 4, "records": 3, "bytes": canonical["size"]}  # fmt: skip
    assert len(found["top"]) == 1  # every other content is unique
    assert statistics["leakage"]["stratified"] == tfdata.leakage(built["output"])
    assert statistics["leakage"]["hash"] == tfdata.leakage(built["output"], split_by="hash")
    page = Path(report.write_report(built["output"], str(tmp_path / "report"))).read_text()
    for table in ('id="duplicates"', 'id="top_duplicates"', 'id="leakage"', built["shared"]):
        assert table in page
