"""End to end: pipelines.build_dataset.run(argv) on real directories and archives, outputs read back."""

from __future__ import annotations

import collections
import hashlib
from pathlib import Path

import pytest

from beam_zml.consume.dataset import (
    read_errors,
    read_examples,
    read_manifest,
    read_rows,
)
from beam_zml.core.imagify import to_text
from beam_zml.core.records import local_record_id
from beam_zml.core.tree import to_networkx
from beam_zml.testing.dataset_compare import (
    assert_only_listed_files,
    assert_same_dataset,
)
from pipelines import build_dataset
from tests.conftest import (
    PYTHON_SOURCE,
    tar_directory,
    traversal_tar,
    write_repository,
    zip_bomb,
    zip_directory,
)

EXPECTED_REPOSITORY_FILES = {
    "src/module.py": ("imaged", None),
    "src/main.c": ("imaged", None),
    "README.md": ("imaged", None),
    "empty.txt": ("skipped", "empty"),
    "logo.png": ("skipped", "binary"),
    "big.csv": ("skipped", "too_large"),
    ".git/config": ("skipped", "vcs_dir"),
    "link.md": ("skipped", "symlink"),
}


def swhid(data: bytes) -> str:
    return "swh:1:cnt:" + hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inputs")
    repository = write_repository(root / "repo")
    corrupt = root / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    truncated = root / "truncated.tar.gz"
    truncated.write_bytes(tar_directory(repository, root / "whole.tar.gz").read_bytes()[:700])
    not_archive = root / "notes.txt"
    not_archive.write_text("just text\n")
    return {
        "directory": repository,
        "zip": zip_directory(repository, root / "repo.zip"),
        "tar.gz": tar_directory(repository, root / "repo.tar.gz"),
        "tar.bz2": tar_directory(repository, root / "repo.tar.bz2", "w:bz2"),
        "tar.xz": tar_directory(repository, root / "repo.tar.xz", "w:xz"),
        "tar": tar_directory(repository, root / "repo.tar", "w"),
        "bomb": zip_bomb(root / "bomb.zip"),
        "traversal": traversal_tar(root / "traversal.tar"),
        "corrupt": corrupt,
        "truncated": truncated,
        "not_archive": not_archive,
    }


@pytest.fixture(scope="module")
def built(inputs, tmp_path_factory) -> str:
    output = str(tmp_path_factory.mktemp("out") / "dataset")
    build_dataset.run(["--local", *map(str, inputs.values()), "--output", output, "--max-member-bytes", str(2**20)])
    return output


def ids(inputs: dict[str, Path]) -> dict[str, int]:
    return {name: local_record_id(str(path)) for name, path in inputs.items()}


def test_every_input_is_one_record_row_ok_or_failed(inputs, built):
    rows = list(read_rows(built, "records"))
    assert sorted(row["record_id"] for row in rows) == sorted(ids(inputs).values())
    status = {row["record_id"]: (row["status"], row["error"]) for row in rows}
    for name in ("corrupt", "truncated", "not_archive"):
        state, error = status[ids(inputs)[name]]
        assert state == "failed" and error, name
    for name in ("directory", "zip", "tar.gz", "tar.bz2", "tar.xz", "tar", "bomb", "traversal"):
        assert status[ids(inputs)[name]] == ("ok", None), name


def test_files_are_listed_with_their_outcome_in_every_format(inputs, built):
    files = collections.defaultdict(dict)
    for row in read_rows(built, "files"):
        files[row["record_id"]][row["path"]] = row
    directory = files[ids(inputs)["directory"]]
    assert {path: (row["status"], row["reason"]) for path, row in directory.items()} == EXPECTED_REPOSITORY_FILES
    assert directory["src/module.py"]["swhid"] == swhid(PYTHON_SOURCE.encode())
    assert directory["src/module.py"]["language"] == "Python"
    assert directory["src/main.c"]["language"] == "C"
    assert directory["src/module.py"]["n_lines"] == 70 and directory["src/module.py"]["n_segments"] == 1
    for name in ("zip", "tar.gz", "tar.bz2", "tar.xz", "tar"):
        archived = files[ids(inputs)[name]]
        expected = {path: row["swhid"] for path, row in directory.items() if path != "link.md"}
        if name == "zip":  # zip_directory leaves symlinks out; tar keeps them as symlink members
            assert {path: row["swhid"] for path, row in archived.items()} == expected
        else:
            assert {path: row["swhid"] for path, row in archived.items() if path != "link.md"} == expected
            assert archived["link.md"]["reason"] == "symlink"


def test_images_read_back_with_tensorflow_match_the_files(inputs, built):
    examples = list(read_examples(built))
    manifest = read_manifest(built)
    assert manifest["counts"]["images"] == len(examples)
    keys = collections.Counter((int(e["record_id"]), e["path"].decode(), int(e["segment"])) for e in examples)
    assert max(keys.values()) == 1, "an image was written twice"
    expected = {
        (row["record_id"], row["path"], segment)
        for row in read_rows(built, "files")
        for segment in range(row["n_segments"])
    }
    assert set(keys) == expected
    module = next(
        e for e in examples if e["record_id"] == ids(inputs)["directory"] and e["path"] == b"src/module.py"
    )
    assert module["image"].shape == (80, 80) and module["image"].dtype.name == "uint16"
    assert module["n_lines"] == 70 and module["n_segments"] == 1 and module["extension"] == b"py"
    assert to_text(module["image"], 70) == [line.replace("\t", "    ") for line in PYTHON_SOURCE.replace("\r", "").splitlines()]
    assert (module["image"][70:] == 32).all()
    main_c = next(e for e in examples if e["record_id"] == ids(inputs)["directory"] and e["path"] == b"src/main.c")
    assert "héllo \ufffd" in to_text(main_c["image"], 5)[2]  # U+1F600 does not fit uint16
    assert main_c["swhid"].decode() == swhid(Path(inputs["directory"], "src/main.c").read_bytes())


def test_zip_bomb_member_is_cut_off_and_recorded(inputs, built):
    bomb_id = ids(inputs)["bomb"]
    bomb_files = {row["path"]: row for row in read_rows(built, "files") if row["record_id"] == bomb_id}
    assert bomb_files["zeros.txt"]["reason"] == "member_too_large"
    assert bomb_files["ok.py"]["status"] == "imaged"
    errors = [e for e in read_errors(built) if e["record_id"] == bomb_id]
    assert [(e["path"], e["error_type"]) for e in errors] == [("zeros.txt", "member_too_large")]


def test_traversal_links_and_devices_are_skipped_with_reasons(inputs, built):
    rows = {row["path"]: row["reason"] for row in read_rows(built, "files") if row["record_id"] == ids(inputs)["traversal"]}
    assert rows["safe/ok.py"] is None
    assert rows["safe/passwd"] == "symlink" and rows["safe/null"] == "special"
    assert sorted(reason for path, reason in rows.items() if not path.startswith("safe/")) == ["unsafe_path", "unsafe_path"]


def test_every_failed_record_has_an_error_line(inputs, built):
    failed = {row["record_id"] for row in read_rows(built, "records") if row["status"] == "failed"}
    errors = {e["record_id"] for e in read_errors(built) if e["stage"] == "list_files" and e["path"] is None}
    assert failed == errors == {ids(inputs)[name] for name in ("corrupt", "truncated", "not_archive")}


def test_tree_holds_every_file_and_directory(inputs, built):
    record = next(row for row in read_rows(built, "records") if row["record_id"] == ids(inputs)["directory"])
    nodes = {node["path"]: node for node in record["tree"]}
    assert nodes[""]["n_files"] == len(EXPECTED_REPOSITORY_FILES) == record["n_files"]
    assert nodes["src"]["kind"] == "dir" and nodes["src"]["n_files"] == 2 and nodes["src"]["depth"] == 1
    assert nodes[""]["size"] == record["n_bytes"]
    graph = to_networkx(record["tree"])
    assert set(graph.successors("src")) == {"src/module.py", "src/main.c"}
    assert record["n_imaged"] == 3 and record["skipped"] == {
        "binary": 1, "empty": 1, "symlink": 1, "too_large": 1, "vcs_dir": 1
    }


def test_manifest_counts_match_the_rows_and_no_temporary_file_is_left(inputs, built):
    manifest = read_manifest(built)
    files = list(read_rows(built, "files"))
    records = list(read_rows(built, "records"))
    counts = manifest["counts"]
    assert counts["records"] == {
        "total": len(inputs),
        "ok": sum(r["status"] == "ok" for r in records),
        "failed": sum(r["status"] == "failed" for r in records),
    }
    assert counts["files"]["seen"] == len(files)
    assert counts["files"]["imaged"] == sum(r["status"] == "imaged" for r in files)
    assert sum(counts["files"]["skipped"].values()) + counts["files"]["imaged"] == len(files)
    assert counts["errors"] == len(list(read_errors(built)))
    assert manifest["image"] == {"dtype": "uint16", "shape": [80, 80], "byte_order": "little", "pad": 32}
    assert manifest["options"]["max_member_bytes"] == 2**20
    assert_only_listed_files(built)


def test_two_worker_processes_write_the_same_dataset(inputs, built, tmp_path):
    output = str(tmp_path / "multi")
    build_dataset.run(
        ["--local", *map(str, inputs.values()), "--output", output, "--max-member-bytes", str(2**20)]
        + ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]
    )
    assert_same_dataset(output, built)
