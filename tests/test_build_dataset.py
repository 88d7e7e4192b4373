"""End to end: pipelines.build_dataset.run(argv) on real directories and archives, outputs read back."""

from __future__ import annotations

import collections
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

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
    ARCHIVE_KINDS,
    PYTHON_SOURCE,
    ZipEntry,
    member_lists,
    tar_directory,
    tar_entry,
    too_deep_tree,
    traversal_tar,
    write_member_list,
    write_raw_tar,
    write_raw_zip,
    write_repository,
    write_tar,
    write_zip,
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
    # Unsafe names are shown as they were: an absolute one keeps its leading "/", never looking safe.
    assert {path: reason for path, reason in rows.items() if not path.startswith("safe/")} == {
        "../evil.py": "unsafe_path", "/etc/evil.py": "unsafe_path"
    }


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


# Archives as the tools people use write them (issue 15): every file, under the name its author gave it

APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(16)
UTF16_CS = "\ufeffclass Main {}\r\n// é\r\n".encode("utf-16-le")  # Visual Studio's encoding, with its BOM
MAC_TEXT = b"one\rtwo\r\tthree\r"  # classic Mac OS line ends
DIRECTORY = 0x10  # MS-DOS directory attribute
ARCHIVED = 0x20  # MS-DOS "archive" attribute: what Windows tools set on files


@pytest.fixture(scope="module")
def tool_inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tools")
    finder = write_raw_zip(root / "finder.zip", [  # macOS Archive Utility: UTF-8 names, no flag, __MACOSX/
        ZipEntry(b"proj/", external_attr=DIRECTORY), ZipEntry("proj/café.py".encode(), "print('café')\n".encode()),
        ZipEntry("proj/naïve/ü.txt".encode(), "ü\n".encode()),
        ZipEntry(b"__MACOSX/", external_attr=DIRECTORY), ZipEntry(b"__MACOSX/proj/", external_attr=DIRECTORY),
        ZipEntry("__MACOSX/proj/._café.py".encode(), APPLE_DOUBLE),
        ZipEntry("__MACOSX/proj/naïve/._ü.txt".encode(), APPLE_DOUBLE),
    ])
    mixed = write_raw_zip(root / "mixed.zip", [  # flagged UTF-8, but one name is cp1252
        ZipEntry(b"proj/ok.py", b"ok = 1\n", utf8_flag=True), ZipEntry(b"proj/caf\xe9.py", b"cafe = 1\n", utf8_flag=True),
        ZipEntry("proj/ünï.py".encode(), b"u = 1\n", utf8_flag=True),
    ])
    latin1_tar = write_raw_tar(root / "latin1.tar.gz", [
        (b"proj/r\xe9sum\xe9.py", b"e = 1\n"), (b"proj/r\xe8sum\xe8.py", b"e = 2\n"),
    ], mode="w:gz")
    latin1_dir = os.path.join(os.fsencode(root), b"d\xe9mo")
    os.makedirs(os.path.join(latin1_dir, b"src"))
    for name, data in ((b"r\xe9sum\xe9.py", b"e = 1\n"), (b"r\xe8sum\xe8.py", b"e = 2\n")):
        with open(os.path.join(latin1_dir, b"src", name), "wb") as handle:
            handle.write(data)
    powershell = write_raw_zip(root / "powershell.zip", [  # Compress-Archive / older .NET: made by MS-DOS, "\"
        ZipEntry(b"proj\\src\\Main.cs", UTF16_CS, create_system=0, external_attr=ARCHIVED),
        ZipEntry(b"proj\\docs", create_system=0, external_attr=DIRECTORY),  # a folder: no trailing slash
        ZipEntry(b"proj\\docs\\mac.txt", MAC_TEXT, create_system=0, external_attr=ARCHIVED),
        ZipEntry(b"proj\\README.md", "\ufeff# Title\n".encode(), create_system=0, external_attr=ARCHIVED),
        ZipEntry(b"proj\\..\\..\\outside.txt", b"pwned\n", create_system=0, external_attr=ARCHIVED),
    ])
    duplicates = write_tar(root / "duplicates.tar", [
        tar_entry("a.py", b"v = 1\n"), tar_entry("./a.py", b"v = 2\n"),
        tar_entry("b//b.py", b"w = 1\n"), tar_entry("b/b.py", b"w = 2\n"), tar_entry("b/./b.py", b"w = 3\n"),
    ], mode="w")
    with pytest.warns(UserWarning, match="Duplicate name"):
        zip_duplicates = write_zip(root / "duplicates.zip", [("top/x.py", b"x = 1\n"), ("top/x.py", b"x = 2\n")])
    junk = Path(os.fsdecode(os.path.join(os.fsencode(root), b"junk-\xe9.tar.gz")))  # a Latin-1 archive name too
    junk.write_bytes(tar_directory(write_repository(root / "repo"), root / "whole.tar.gz").read_bytes() + b"JUNK" * 100)
    deep = root / "deep"
    deep_paths = too_deep_tree(deep)
    return {
        "finder": finder, "mixed": mixed, "latin1_tar": latin1_tar, "latin1_dir": Path(os.fsdecode(latin1_dir)),
        "powershell": powershell, "duplicates": Path(duplicates), "zip_duplicates": Path(zip_duplicates),
        "junk": junk, "deep": deep, "deep_paths": deep_paths,
    }


@pytest.fixture(scope="module")
def tool_built(tool_inputs, tmp_path_factory) -> str:
    output = str(tmp_path_factory.mktemp("tools_out") / "dataset")
    build_dataset.run(["--local", *(str(p) for name, p in tool_inputs.items() if name != "deep_paths"), "--output", output])
    return output


def tool_files(tool_inputs, built: str, name: str) -> list[dict]:
    record_id = local_record_id(str(tool_inputs[name]))
    return sorted((row for row in read_rows(built, "files") if row["record_id"] == record_id), key=lambda r: r["path"])


def tool_record(tool_inputs, built: str, name: str) -> dict:
    return next(row for row in read_rows(built, "records") if row["record_id"] == local_record_id(str(tool_inputs[name])))


def tool_images(tool_inputs, built: str, name: str) -> dict[str, list[str]]:
    """path -> the lines of its images, read back with tf.data."""
    record_id = local_record_id(str(tool_inputs[name]))
    lines = collections.defaultdict(list)
    for example in sorted(read_examples(built), key=lambda e: int(e["segment"])):
        if example["record_id"] == record_id:
            lines[example["path"].decode()] += to_text(example["image"], int(example["n_lines"]))
    return dict(lines)


def tree_paths(record: dict) -> dict[str, str]:
    return {node["path"]: node["kind"] for node in record["tree"]}


def test_every_tool_archive_is_an_ok_record_with_one_row_per_member(tool_inputs, tool_built):
    written = {  # entries that are not folders, as written above
        "finder": 4, "mixed": 3, "latin1_tar": 2, "latin1_dir": 2, "powershell": 4, "duplicates": 5,
        "zip_duplicates": 2, "junk": len(EXPECTED_REPOSITORY_FILES), "deep": 4,
    }
    records = {row["record_id"]: row for row in read_rows(tool_built, "records")}
    for name, count in written.items():
        record = records[local_record_id(str(tool_inputs[name]))]
        assert (record["status"], record["error"]) == ("ok", None), name
        assert record["n_files"] == len(tool_files(tool_inputs, tool_built, name)) == count, name


def test_unflagged_utf8_zip_names_and_macos_metadata(tool_inputs, tool_built):
    rows = {row["path"]: (row["status"], row["reason"]) for row in tool_files(tool_inputs, tool_built, "finder")}
    assert rows == {
        "café.py": ("imaged", None), "naïve/ü.txt": ("imaged", None),
        "__MACOSX/proj/._café.py": ("skipped", "os_metadata"), "__MACOSX/proj/naïve/._ü.txt": ("skipped", "os_metadata"),
    }
    assert tree_paths(tool_record(tool_inputs, tool_built, "finder")) == {
        "": "dir", "café.py": "file", "naïve": "dir", "naïve/ü.txt": "file"
    }
    assert tool_images(tool_inputs, tool_built, "finder") == {"café.py": ["print('café')"], "naïve/ü.txt": ["ü"]}


def test_one_falsely_flagged_name_spoils_only_its_own_row(tool_inputs, tool_built):
    rows = {row["path"]: (row["status"], row["reason"]) for row in tool_files(tool_inputs, tool_built, "mixed")}
    assert rows == {"ok.py": ("imaged", None), "ünï.py": ("imaged", None), "caf\\xe9.py": ("skipped", "undecodable_name")}
    record_id = local_record_id(str(tool_inputs["mixed"]))
    errors = [(e["path"], e["error_type"]) for e in read_errors(tool_built) if e["record_id"] == record_id]
    assert errors == [("caf\\xe9.py", "undecodable_name")]


@pytest.mark.parametrize("name, folder", [("latin1_tar", ""), ("latin1_dir", "src/")])
def test_latin1_names_stay_distinct_and_escaped(tool_inputs, tool_built, name, folder):
    rows = {row["path"]: row["status"] for row in tool_files(tool_inputs, tool_built, name)}
    assert rows == {f"{folder}r\\xe9sum\\xe9.py": "imaged", f"{folder}r\\xe8sum\\xe8.py": "imaged"}
    assert tool_images(tool_inputs, tool_built, name) == {
        f"{folder}r\\xe9sum\\xe9.py": ["e = 1"], f"{folder}r\\xe8sum\\xe8.py": ["e = 2"]
    }


def test_a_local_folder_named_in_latin1_is_a_record_like_any_other(tool_inputs, tool_built):
    record = tool_record(tool_inputs, tool_built, "latin1_dir")
    assert record["title"] == "d\\xe9mo" and record["archive_url"].endswith("/d\\xe9mo")
    assert read_manifest(tool_built)["runs"][0]["sources"]["local"].count(record["archive_url"]) == 1


def test_windows_zip_separators_folders_line_ends_and_byte_order_marks(tool_inputs, tool_built):
    rows = {row["path"]: row for row in tool_files(tool_inputs, tool_built, "powershell")}
    assert {path: row["reason"] for path, row in rows.items()} == {
        "src/Main.cs": None, "docs/mac.txt": None, "README.md": None, "proj/../../outside.txt": "unsafe_path"
    }
    assert rows["src/Main.cs"]["is_binary"] is False and rows["src/Main.cs"]["language"] == "C#"
    assert rows["docs/mac.txt"]["n_lines"] == 3
    assert tree_paths(tool_record(tool_inputs, tool_built, "powershell")) == {
        "": "dir", "README.md": "file", "docs": "dir", "docs/mac.txt": "file", "src": "dir", "src/Main.cs": "file"
    }
    images = tool_images(tool_inputs, tool_built, "powershell")
    assert images == {"src/Main.cs": ["class Main {}", "// é"], "docs/mac.txt": ["one", "two", "    three"],
                      "README.md": ["# Title"]}


def test_a_classic_mac_file_checked_pixel_by_pixel(tool_inputs, tool_built):
    """docs/dataset-format.md#image-rules by hand for b"one\\rtwo\\r\\tthree\\r": three lines, the tab as four spaces, padded with 32."""
    record_id = local_record_id(str(tool_inputs["powershell"]))
    [example] = [e for e in read_examples(tool_built) if e["record_id"] == record_id and e["path"] == b"docs/mac.txt"]
    expected = np.full((80, 80), 32, np.uint16)
    for row, line in enumerate(["one", "two", "    three"]):
        expected[row, : len(line)] = [ord(c) for c in line]
    np.testing.assert_array_equal(example["image"], expected)
    assert example["n_lines"] == 3 and example["n_segments"] == 1


@pytest.mark.parametrize("name", ["duplicates", "zip_duplicates"])
def test_duplicate_paths_are_all_rows_and_the_last_is_imaged(tool_inputs, tool_built, name):
    rows = [(row["path"], row["reason"]) for row in tool_files(tool_inputs, tool_built, name)]
    if name == "duplicates":
        assert sorted(rows, key=str) == sorted(
            [("a.py", "duplicate_path"), ("a.py", None), ("b/b.py", "duplicate_path"), ("b/b.py", "duplicate_path"),
             ("b/b.py", None)], key=str)
        assert tool_images(tool_inputs, tool_built, name) == {"a.py": ["v = 2"], "b/b.py": ["w = 3"]}
        tree = {node["path"]: node for node in tool_record(tool_inputs, tool_built, name)["tree"]}
        assert tree[""]["n_files"] == 2 and tree["a.py"]["size"] == 6
    else:
        assert sorted(rows, key=str) == [("x.py", "duplicate_path"), ("x.py", None)]
        assert tool_images(tool_inputs, tool_built, name) == {"x.py": ["x = 2"]}


def test_bytes_after_the_gzip_stream_are_an_error_line_not_a_failed_record(tool_inputs, tool_built):
    record_id = local_record_id(str(tool_inputs["junk"]))
    rows = {row["path"]: (row["status"], row["reason"]) for row in tool_files(tool_inputs, tool_built, "junk")}
    assert rows["src/module.py"] == ("imaged", None) and rows["README.md"] == ("imaged", None)
    errors = [e for e in read_errors(tool_built) if e["record_id"] == record_id]
    assert [(e["stage"], e["error_type"], e["path"]) for e in errors] == [("list_files", "BadGzipFile", None)]
    assert "bytes after the end of the gzip stream" in errors[0]["message"] and "junk-\\xe9.tar.gz" in errors[0]["message"]
    assert tool_record(tool_inputs, tool_built, "junk")["archive_url"].endswith("/junk-\\xe9.tar.gz")


def test_folders_and_files_past_the_path_limit_are_rows_and_errors(tool_inputs, tool_built):
    paths = tool_inputs["deep_paths"]
    rows = {row["path"]: (row["status"], row["reason"]) for row in tool_files(tool_inputs, tool_built, "deep")}
    assert rows == {
        paths["ok"]: ("imaged", None), paths["reachable"]: ("imaged", None),
        paths["unopenable"]: ("skipped", "read_error"), paths["unlistable"]: ("skipped", "read_error"),
    }
    record_id = local_record_id(str(tool_inputs["deep"]))
    errors = {e["path"]: e for e in read_errors(tool_built) if e["record_id"] == record_id}
    assert sorted(errors) == sorted([paths["unopenable"], paths["unlistable"]])
    assert all("File name too long" in e["message"] and len(e["message"]) < 5000 for e in errors.values())


def test_tool_archives_manifest_counts_the_new_reasons(tool_inputs, tool_built):
    skipped = read_manifest(tool_built)["counts"]["files"]["skipped"]
    assert skipped["os_metadata"] == 2 and skipped["undecodable_name"] == 1 and skipped["duplicate_path"] == 4
    assert skipped["read_error"] == 2 and skipped["unsafe_path"] == 1
    assert_only_listed_files(tool_built)


def test_resume_in_an_output_folder_named_like_a_glob_deletes_the_orphan_shards(tmp_path):
    """OUT holds "[", "*" and "?": a crashed run's shard must still be found, and deleted, by --resume."""
    first = write_repository(tmp_path / "first")
    second = write_repository(tmp_path / "second")
    output = tmp_path / "out[1]*?"
    build_dataset.run(["--local", str(first), "--output", str(output)])
    orphans = [output / "images" / "images-20260101T000000-00000-of-00001.tfrecord.gz",
               output / "files" / "files-20260101T000000-00000-of-00001.avro"]
    for orphan, source in zip(orphans, [next((output / "images").iterdir()), next((output / "files").iterdir())]):
        orphan.write_bytes(source.read_bytes())  # a whole shard that dataset.json does not list: a crashed run's
    decoy = tmp_path / "out1xy" / "images"  # what "out[1]*?" matches as a glob: must be left alone
    decoy.mkdir(parents=True)
    (decoy / "images-00000-of-00001.tfrecord.gz").write_bytes(b"not ours")

    build_dataset.run(["--local", str(first), str(second), "--output", str(output), "--resume"])

    assert not any(orphan.exists() for orphan in orphans)
    assert_only_listed_files(str(output))
    assert (decoy / "images-00000-of-00001.tfrecord.gz").read_bytes() == b"not ours"
    records = list(read_rows(str(output), "records"))
    assert sorted(r["record_id"] for r in records) == sorted(local_record_id(str(p)) for p in (first, second))
    examples = list(read_examples(str(output)))
    assert len({(int(e["record_id"]), e["path"], int(e["segment"])) for e in examples}) == len(examples)


@pytest.mark.filterwarnings("ignore:Duplicate name")
@given(entries=member_lists)
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_whole_build_has_one_files_row_per_member_written(tmp_path, entries):
    """Random member lists, as a zip, a Windows zip and a tar, built whole: rows == members written, per record."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:
        written = {}
        for kind in ARCHIVE_KINDS:
            folder = Path(tmp) / kind.replace(" ", "_")
            folder.mkdir()
            archive, count = write_member_list(folder, entries, kind)
            written[local_record_id(str(archive))] = count
        output = str(Path(tmp) / "out")
        build_dataset.run(["--local", *(str(p) for p in Path(tmp).glob("*/r.*")), "--output", output])

        rows = collections.Counter(row["record_id"] for row in read_rows(output, "files"))
        records = {row["record_id"]: row for row in read_rows(output, "records")}
        keys = [(int(e["record_id"]), e["path"], int(e["segment"])) for e in read_examples(output)]

    assert {record_id: rows[record_id] for record_id in written} == written
    assert all(records[record_id]["status"] == "ok" and records[record_id]["n_files"] == n for record_id, n in written.items())
    assert len(keys) == len(set(keys)), "an image written twice, or two members imaged at one path"
