"""`zml build --local-each DIR` (every entry of a folder is one record), `--exclude-path`, and `--python-stdlib`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from beam_zml.consume.dataset import read_rows
from beam_zml.core.records import Selection
from beam_zml.sources.local import (
    STDLIB_LEFT_OUT,
    list_selected,
    named_record_id,
    stdlib_sources,
)
from beam_zml.sources.repository import Limits
from pipelines import build_dataset, cli
from tests.conftest import tar_directory, write_repository, zip_directory


@pytest.fixture
def checkouts(tmp_path: Path) -> Path:
    """A folder as users keep one: checkouts, archives, a stray note, a link, a cache folder and compiled files."""
    root = tmp_path / "checkouts"
    repo = write_repository(root / "alpha")
    (repo / "src" / "__pycache__").mkdir()
    (repo / "src" / "__pycache__" / "module.cpython-311.pyc").write_bytes(b"\xa7\r\r\n" + bytes(100))
    (repo / "src" / "stale.pyc").write_bytes(b"\xa7\r\r\n" + bytes(10))
    for name, archive in (("beta", zip_directory), ("gamma", tar_directory)):
        other = write_repository(tmp_path / name)
        (other / "src" / "__pycache__").mkdir()
        (other / "src" / "__pycache__" / "module.cpython-311.pyc").write_bytes(bytes(100))
        archive(other, root / (f"{name}.zip" if name == "beta" else f"{name}.tar.gz"))
    (root / "NOTES.md").write_text("# what these are\n")
    os.symlink("alpha", root / "alpha-link")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "x.pyc").write_bytes(bytes(8))
    return root


def test_each_entry_is_one_record_and_excluded_paths_are_no_inputs(checkouts, tmp_path):
    output = str(tmp_path / "out")
    build_dataset.run(["--local-each", str(checkouts), "--output", output, "--exclude-path", "__pycache__", "--exclude-path", "*.pyc"])
    records = {row["title"]: row for row in read_rows(output, "records")}
    assert sorted(records) == ["NOTES.md", "alpha", "alpha-link", "beta.zip", "gamma.tar.gz"]
    assert {row["status"] for row in records.values()} == {"ok"}
    assert records["alpha"]["record_id"] == named_record_id("checkouts/alpha")
    files = {}
    for row in read_rows(output, "files"):
        files.setdefault(row["record_id"], {})[row["path"]] = row
    alpha = files[records["alpha"]["record_id"]]
    every_path = [path for rows in files.values() for path in rows]
    assert not any("__pycache__" in path or path.endswith(".pyc") for path in every_path), every_path
    assert alpha["src/module.py"]["status"] == "imaged"
    paths = [set(files[records[name]["record_id"]]) - {"link.md"} for name in ("alpha", "beta.zip", "gamma.tar.gz")]
    assert paths[0] == paths[1] == paths[2]  # (the zip helper leaves links out)
    # a loose file is a repository of one file, a link one of one skipped entry: nothing directly inside DIR is lost
    assert {p: r["status"] for p, r in files[records["NOTES.md"]["record_id"]].items()} == {"NOTES.md": "imaged"}
    assert {p: r["reason"] for p, r in files[records["alpha-link"]["record_id"]].items()} == {"alpha-link": "symlink"}
    assert records["NOTES.md"]["archive_url"] == str(checkouts / "NOTES.md")


def test_ids_come_from_names_so_a_moved_folder_keeps_its_ids(checkouts, tmp_path):
    moved = tmp_path / "elsewhere" / "checkouts"
    shutil.copytree(checkouts, moved, symlinks=True)
    ids = {}
    for root in (checkouts, moved):
        output = str(root.parent / "out")
        build_dataset.run(["--local-each", str(root), "--output", output, "--exclude-path", "alpha*"])
        ids[root] = sorted((row["title"], row["record_id"]) for row in read_rows(output, "records"))
    assert ids[checkouts] == ids[moved] and [title for title, _ in ids[moved]] == ["NOTES.md", "__pycache__", "beta.zip", "gamma.tar.gz"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--exclude-path", "*.pyc", "--ids", "1"], "--exclude-path needs --local or --local-each"),
        (["--local-each", "{file}"], "--local-each {file}: not a directory"),
        (["--local-each", "{root}/nope"], "--local-each {root}/nope: no such file or directory"),
        (["--local-each", "{root}", "--exclude-path", "*"], "nothing to build"),
        (["--local-each", "{root}", "{twin}"], "a record's id comes from that name"),
    ],
)
def test_bad_local_each_input_gets_one_line_and_status_2(checkouts, tmp_path, capsys, argv, message):
    twin = tmp_path / "twin" / "checkouts"
    (twin / "alpha").mkdir(parents=True)
    names = {"file": checkouts / "NOTES.md", "root": checkouts, "twin": twin}
    argv = [part.format(**names) for part in argv]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["build", *argv, "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("zml build: error: ") and err.count("\n") == 1, err
    assert message.format(**names) in err
    assert not (tmp_path / "out").exists()


def test_stdlib_selection_keeps_what_every_install_has(tmp_path):
    """A folder laid out like an installed standard library, with what installs add or lack."""
    stdlib = tmp_path / "python3.11"
    for package in ("json", "asyncio", "idlelib", "test", "site-packages", "lib-dynload", "config-3.11-x86_64-linux-gnu"):
        (stdlib / package).mkdir(parents=True)
        (stdlib / package / "__init__.py").write_text("x = 1\n")
    (stdlib / "json" / "__pycache__").mkdir()
    (stdlib / "json" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(bytes(16))
    (stdlib / "json" / "tests").mkdir()
    (stdlib / "json" / "tests" / "test_x.py").write_text("pass\n")
    for name in ("argparse.py", "LICENSE.txt", "_sysconfigdata__linux_x86_64-linux-gnu.py", "sitecustomize.py"):
        (stdlib / name).write_text("y = 2\n")
    sources = stdlib_sources(str(stdlib))
    assert [s.title for s in sources] == ["argparse.py", "asyncio", "json"]
    assert {"idlelib", "test"} <= set(STDLIB_LEFT_OUT)
    json_source = sources[2]
    assert [e.path for e in list_selected(json_source.location, Limits(), json_source.selection).entries] == ["__init__.py"]
    argparse_source = sources[0]
    assert [e.path for e in list_selected(argparse_source.location, Limits(), argparse_source.selection).entries] == ["argparse.py"]


def test_the_readme_main_job_builds_a_dataset_that_trains(tmp_path):
    """The README's first command, then `zml train` on its output, as a user runs them."""
    zml = Path(sys.executable).with_name("zml")
    output = tmp_path / "zml-stdlib"
    built = subprocess.run([str(zml), "build", "--python-stdlib", "--output", str(output)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    last = built.stderr.strip().splitlines()[-1]
    assert last.startswith(f"zml build: dataset in {output}: ") and " 0 failed" in last and "errors: none" in last, last
    records = list(read_rows(str(output), "records"))
    titles = {row["title"] for row in records}
    assert len(records) > 100 and {"asyncio", "json", "argparse.py"} <= titles
    assert not titles & {"site-packages", "test", "idlelib", "__pycache__", "lib-dynload"}
    assert not any("__pycache__" in row["path"] or "/test/" in f"/{row['path']}" for row in read_rows(str(output), "files"))
    trained = subprocess.run(
        [str(zml), "train", "--data", str(output), "--epochs", "1", "--output-dir", str(tmp_path / "model")],
        capture_output=True, text=True, timeout=600,
    )
    assert trained.returncode == 0, trained.stderr
    lines = trained.stderr.strip().splitlines()
    assert any(line.startswith("zml train: epoch 1/1: loss ") for line in lines), lines
    assert not [line for line in lines if "tensorflow/core" in line or "NodeDef" in line or "rendezvous" in line], lines
    assert (tmp_path / "model" / "metrics.json").exists()
    load = "from beam_zml.consume import tfdata; ds, _ = tfdata.load(%r, split='validation'); print(sum(1 for _ in ds))"
    loaded = subprocess.run([sys.executable, "-c", load % str(output)], capture_output=True, text=True, timeout=600)
    assert loaded.returncode == 0 and int(loaded.stdout) > 0, loaded.stderr
    assert "tensorflow/core" not in loaded.stderr and "rendezvous" not in loaded.stderr, loaded.stderr


@pytest.mark.parametrize(
    "pattern, path, left_out",
    [
        ("__pycache__", "pkg/__pycache__", True),  # a name, at any depth
        ("*.pyc", "a/b/c.pyc", True),
        ("*.pyc", "a/b/c.py", False),
        ("docs/build", "docs/build", True),  # a path, from the repository's root
        ("docs/build", "x/docs/build", False),
        ("*/test", "pkg/sub/test", True),  # fnmatch's * crosses "/"
        ("Test", "test", False),  # case counts
    ],
)
def test_exclude_patterns_match_a_name_or_a_path(pattern, path, left_out):
    assert Selection((pattern,)).excludes(path) is left_out


def test_only_keeps_one_entry_of_a_folder():
    selection = Selection(("*.pyc",), only="argparse.py")
    assert [selection.excludes(p) for p in ("argparse.py", "asyncio", "argparse.pyc", "x/argparse.py")] == [False, True, True, True]


def test_entries_whose_names_are_not_utf8_are_records_like_any_other(tmp_path):
    """A Latin-1 folder and archive inside DIR: built, ok, titled with the escaped name as --local shows it."""
    checkouts = tmp_path / "checkouts"
    folder = Path(os.fsdecode(bytes(checkouts) + b"/caf\xe9"))
    folder.mkdir(parents=True)
    (folder / "main.py").write_text("print('hi')\n")
    zip_directory(folder, Path(os.fsdecode(bytes(checkouts) + b"/d\xfcp.zip")))
    out = tmp_path / "out"
    build_dataset.run(["--local-each", str(checkouts), "--output", str(out)])
    rows = sorted((row["title"], row["status"], row["n_images"]) for row in read_rows(str(out), "records"))
    assert rows == [("caf\\xe9", "ok", 1), ("d\\xfcp.zip", "ok", 1)]
