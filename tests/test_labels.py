"""Linguist's labels end to end: a real build of files whose language a heuristic decides, read back with
fastavro and tf.data; tfdata.load leaving vendored and generated files out; a dataset written with the
schema-1 layout (no flags) still read; and a build where enry-python is missing (the Pygments fallback)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import fastavro
import pytest
from isal import igzip

from beam_zml.consume import tfdata
from beam_zml.consume.dataset import (
    read_examples,
    read_manifest,
    read_rows,
    shard_paths,
)
from beam_zml.core import fileinfo
from beam_zml.core.duplicates import COPY_FACTS
from beam_zml.core.examples import GZIP_LEVEL, tfrecord_frame
from beam_zml.core.records import local_record_id
from beam_zml.schemas import SCHEMA_VERSIONS
from pipelines import build_dataset
from tests.conftest import LABELLED_FILES, write_labelled_repository, write_repository

ALL_IN_TRAIN = (1.0, 0.0, 0.0)
EXCLUDED = {"is_vendored", "is_generated"}  # what tfdata.load leaves out by default


@pytest.fixture(scope="module")
def repositories(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("labelled")
    return [write_labelled_repository(root / "labelled"), write_repository(root / "plain")]


@pytest.fixture(scope="module")
def built(repositories, tmp_path_factory) -> str:
    output = str(tmp_path_factory.mktemp("out") / "dataset")
    build_dataset.run(["--local", *map(str, repositories), "--output", output])
    return output


def labelled_rows(output: str, repository: Path) -> dict[str, dict]:
    record_id = local_record_id(str(repository))
    return {row["path"]: row for row in read_rows(output, "files") if row["record_id"] == record_id}


def test_files_rows_carry_linguists_language_and_flags(repositories, built):
    rows = labelled_rows(built, repositories[0])
    assert set(rows) == set(LABELLED_FILES)
    for path, (_, language, flags) in LABELLED_FILES.items():
        assert rows[path]["status"] == "imaged", path
        assert rows[path]["language"] == language, path
        assert {flag: rows[path][flag] for flag in fileinfo.FLAGS} == {flag: flag in flags for flag in fileinfo.FLAGS}, path
    plain = labelled_rows(built, repositories[1])
    assert plain["README.md"]["is_documentation"] is True and plain["src/module.py"]["is_test"] is False
    assert plain["logo.png"]["language"] == "Binary" and plain["big.csv"]["is_vendored"] is False  # not read, still flagged


def test_the_avro_files_hold_schema_2_and_the_manifest_says_so(built):
    with open(shard_paths(built, "files")[0], "rb") as handle:
        fields = [field["name"] for field in fastavro.reader(handle).writer_schema["fields"]]
    assert set(fileinfo.FLAGS) <= set(fields)
    manifest = read_manifest(built)
    assert manifest["schemas"]["files"] == SCHEMA_VERSIONS["file"] == 2
    assert manifest["options"]["labels"] == fileinfo.labeller()
    assert all(manifest["features"][flag] == {**manifest["features"][flag], "dtype": "int64", "default_value": -1} for flag in fileinfo.FLAGS)


def test_examples_read_with_tensorflow_carry_the_same_labels(repositories, built):
    record_id = local_record_id(str(repositories[0]))
    examples = {e["path"].decode(): e for e in read_examples(built) if e["record_id"] == record_id}
    assert set(examples) == set(LABELLED_FILES)
    for path, (_, language, flags) in LABELLED_FILES.items():
        assert examples[path]["language"].decode() == language, path
        assert {flag: int(examples[path][flag]) for flag in fileinfo.FLAGS} == {flag: int(flag in flags) for flag in fileinfo.FLAGS}


def loaded_paths(output: str, **options) -> list[str]:
    dataset, _ = tfdata.load(output, "train", batch_size=8, fractions=ALL_IN_TRAIN, **options)
    return sorted(path.decode() for features, _ in dataset for path in features["path"].numpy().tolist())


def test_load_leaves_out_vendored_and_generated_files_unless_asked(built):
    rows = list(read_rows(built, "files"))
    imaged = sorted(row["path"] for row in rows for _ in range(row["n_segments"]))
    kept = sorted(row["path"] for row in rows if not any(row[flag] for flag in EXCLUDED) for _ in range(row["n_segments"]))
    assert loaded_paths(built) == kept != imaged
    assert loaded_paths(built, exclude_vendored=False, exclude_generated=False) == imaged
    no_vendored = sorted(row["path"] for row in rows if not row["is_vendored"] for _ in range(row["n_segments"]))
    assert loaded_paths(built, exclude_generated=False) == no_vendored
    assert "static/app.js" in no_vendored and "node_modules/left-pad/index.js" not in no_vendored


def test_the_cap_counts_only_the_images_load_keeps(repositories, built):
    rows = labelled_rows(built, repositories[0]).values()
    kept = sum(row["n_segments"] for row in rows if not any(row[flag] for flag in EXCLUDED))
    assert kept < sum(row["n_segments"] for row in rows)
    # Capped at what it keeps, the repository loses nothing; a cap counting the excluded images would drop some.
    assert loaded_paths(built, max_images_per_repository=kept) == loaded_paths(built)


def rewrite_with_schema_1(built: str, output: Path) -> str:
    """A copy of `built` as the previous version wrote it: files/ rows, Examples and dataset.json without the flags."""
    shutil.copytree(built, output)
    for path in shard_paths(str(output), "files"):
        with open(path, "rb") as handle:
            reader = fastavro.reader(handle)
            schema = dict(reader.writer_schema)
            rows = list(reader)
        schema["fields"] = [field for field in schema["fields"] if field["name"] not in fileinfo.FLAGS]
        with open(path, "wb") as handle:
            fastavro.writer(handle, fastavro.parse_schema(schema), rows, codec="deflate")
    import tensorflow as tf

    for path in shard_paths(str(output), "images"):
        framed = []
        for serialized in _tfrecords(path):
            example = tf.train.Example.FromString(serialized)
            for flag in (*fileinfo.FLAGS, *COPY_FACTS):  # neither existed before files/ schema 2
                del example.features.feature[flag]
            framed.append(tfrecord_frame(example.SerializeToString()))
        Path(path).write_bytes(igzip.compress(b"".join(framed), GZIP_LEVEL))
    manifest = json.loads((output / "dataset.json").read_text())
    manifest["features"] = {
        name: spec for name, spec in manifest["features"].items() if name not in (*fileinfo.FLAGS, *COPY_FACTS)
    }
    manifest["schemas"]["files"] = 1
    del manifest["options"]["labels"]
    (output / "dataset.json").write_text(json.dumps(manifest))
    return str(output)


def _tfrecords(path: str) -> list[bytes]:
    import tensorflow as tf

    return list(tf.data.TFRecordDataset(path, compression_type="GZIP").as_numpy_iterator())


def test_a_dataset_of_schema_1_is_read_with_the_flags_unknown_and_nothing_left_out(built, tmp_path, caplog):
    old = rewrite_with_schema_1(built, tmp_path / "old")
    with open(shard_paths(old, "files")[0], "rb") as handle:
        assert "is_vendored" not in {field["name"] for field in fastavro.reader(handle).writer_schema["fields"]}
    rows = list(read_rows(old, "files"))
    assert rows and all(row[flag] is None for row in rows for flag in fileinfo.FLAGS)
    assert [row["language"] for row in rows] == [row["language"] for row in read_rows(built, "files")]
    examples = list(read_examples(old))
    assert examples and all(int(e[flag]) == -1 for e in examples for flag in (*fileinfo.FLAGS, *COPY_FACTS))
    with caplog.at_level(logging.WARNING, logger="beam_zml.consume.tfdata"):
        paths = loaded_paths(old, max_images_per_repository=1000)
    assert paths == loaded_paths(built, exclude_vendored=False, exclude_generated=False)
    assert "built before Linguist's flags" in caplog.text


def test_resuming_a_dataset_labelled_another_way_is_refused(built, repositories, tmp_path, capsys):
    old = rewrite_with_schema_1(built, tmp_path / "old")
    with pytest.raises(SystemExit) as exit_info:
        build_dataset.run(["--local", *map(str, repositories), "--output", old, "--resume"])
    assert exit_info.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--resume with options that differ from the dataset" in line and line.endswith(": labels")


def test_without_enry_a_build_labels_by_pygments_with_the_flags_unknown(repositories, tmp_path, without_enry):
    output = str(tmp_path / "fallback")
    build_dataset.run(["--local", str(repositories[0]), "--output", output])
    rows = {row["path"]: row for row in read_rows(output, "files")}
    assert set(rows) == set(LABELLED_FILES)
    assert all(row[flag] is None for row in rows.values() for flag in fileinfo.FLAGS)
    assert rows["lib/Spam/Eggs.pm"]["language"] == "Perl" and rows["bin/spam"]["language"] == "Python"
    assert rows["src/app.d"]["language"] == rows["Include/pydtrace.d"]["language"] == "D"  # what Linguist fixes
    examples = list(read_examples(output))
    assert examples and all(int(e[flag]) == -1 for e in examples for flag in fileinfo.FLAGS)
    assert read_manifest(output)["options"]["labels"].startswith("pygments ")
    assert len(loaded_paths(output)) == len(examples)  # unknown flags: nothing left out
