"""The sinks: every element exactly once, deterministic shards, nothing partial left behind."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import fastavro
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_zml.sinks.manifest import remove_temporary_files
from beam_zml.sinks.write_shards import WriteAvro, WriteErrors, shard_count, shard_index
from beam_zml.storage import write_atomically


def file_row(i: int) -> dict:
    return {
        "record_id": i % 7, "path": f"f{i}.py", "size": i, "extension": "py", "language": "Python", "swhid": None,
        "is_binary": False, "n_lines": 1, "n_segments": 1, "status": "imaged", "reason": None,
    }


def write_files(output, n_shards: int = 1) -> WriteAvro:
    """files/ rows through the GroupByKey sink (the build writes files/ per work item; the sink is the same for any rows)."""
    return WriteAvro(output, "files", "file", lambda row: f"{row['record_id']}/{row['path']}", n_shards)


def read_json_shards(directory: Path) -> dict[str, list[dict]]:
    return {p.name: [json.loads(line) for line in p.read_text().splitlines()] for p in sorted(directory.iterdir())}


def test_every_row_lands_once_in_the_shard_its_key_names(tmp_path):
    rows = [{"stage": "s", "record_id": i, "message": "m"} for i in range(1000)]
    with TestPipeline() as pipeline:
        paths = pipeline | beam.Create(rows) | WriteErrors(str(tmp_path), n_shards=shard_count(len(rows), 100))
        assert_that(paths, equal_to([str(tmp_path / "errors" / f"errors-{i:05d}-of-00010.jsonl") for i in range(10)]))
    shards = read_json_shards(tmp_path / "errors")
    written = [row for shard in shards.values() for row in shard]
    assert sorted(r["record_id"] for r in written) == list(range(1000))
    for name, shard in shards.items():
        index = int(name.split("-")[1])
        assert all(shard_index(json.dumps(row, sort_keys=True), 10) == index for row in shard)


def test_a_rerun_writes_the_same_shards(tmp_path):
    def build():
        with TestPipeline() as pipeline:
            _ = pipeline | beam.Create([file_row(i) for i in range(50)]) | write_files(str(tmp_path), n_shards=shard_count(50, 20))
        contents = {}
        for path in sorted((tmp_path / "files").iterdir()):
            with open(path, "rb") as handle:
                contents[path.name] = sorted(json.dumps(r, sort_keys=True) for r in fastavro.reader(handle))
        return contents

    first = build()
    assert list(first) == [f"files-{i:05d}-of-00003.avro" for i in range(3)]
    assert build() == first
    assert sum(len(rows) for rows in first.values()) == 50


def test_empty_input_still_writes_one_valid_empty_shard(tmp_path):
    with TestPipeline() as pipeline:
        _ = pipeline | beam.Create([]) | write_files(str(tmp_path))
    (shard,) = (tmp_path / "files").iterdir()
    assert shard.name == "files-00000-of-00001.avro"
    with open(shard, "rb") as handle:
        reader = fastavro.reader(handle)
        assert list(reader) == [] and reader.writer_schema["name"] == "beam_zml.File"


def test_atomic_write_replaces_and_leftovers_are_removed(tmp_path):
    final = tmp_path / "errors" / "errors-00000-of-00001.jsonl"
    write_atomically(str(final), lambda handle: handle.write(b"first\n"))
    write_atomically(str(final), lambda handle: handle.write(b"second\n"))  # a retried bundle
    assert final.read_bytes() == b"second\n"
    killed = tmp_path / "errors" / ".errors-00000-of-00001.jsonl.deadbeef.tmp"
    killed.write_bytes(b"half")
    assert remove_temporary_files(str(tmp_path)) == [str(killed)]
    assert sorted(p.name for p in final.parent.iterdir()) == [final.name]
