"""The sinks: every element exactly once, deterministic shards, nothing partial left behind."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import fastavro
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_zml.core.notes import COUNTS, ERRORS, RECORDS, SHARD
from beam_zml.sinks.manifest import remove_temporary_files
from beam_zml.sinks.write_shards import (
    WriteRows,
    errors_sink,
    records_sink,
    shard_count,
    shard_index,
)
from beam_zml.storage import write_atomically


def record_row(i: int) -> dict:
    return {"record_id": i, "status": "ok", "title": f"record {i}", "tree": [], "keywords": [], "creators": [],
            "communities": [], "related_identifiers": [], "skipped": {}}  # fmt: skip


def read_json_shards(directory: Path) -> dict[str, list[dict]]:
    return {p.name: [json.loads(line) for line in p.read_text().splitlines()] for p in sorted(directory.iterdir())}


def test_every_row_lands_once_in_the_shard_its_key_names(tmp_path):
    rows = [{"stage": "s", "record_id": i, "message": "m"} for i in range(1000)]
    with TestPipeline() as pipeline:
        notes = [(ERRORS, row) for row in rows] + [(COUNTS, {"errors": 1000}), (SHARD, "images/x")]
        out = pipeline | beam.Create(notes) | WriteRows(str(tmp_path), (errors_sink(shard_count(len(rows), 100)),))
        shards = [(SHARD, f"errors/errors-{i:05d}-of-00010.jsonl") for i in range(10)]  # relative to the output
        assert_that(out, equal_to(shards + notes[-2:]))  # the other notes pass through
    shards = read_json_shards(tmp_path / "errors")
    written = [row for shard in shards.values() for row in shard]
    assert sorted(r["record_id"] for r in written) == list(range(1000))
    for name, shard in shards.items():
        index = int(name.split("-")[1])
        assert all(shard_index(json.dumps(row, sort_keys=True), 10) == index for row in shard)


def test_a_rerun_writes_the_same_shards(tmp_path):
    def build():
        with TestPipeline() as pipeline:
            rows = [(RECORDS, record_row(i)) for i in range(50)]
            _ = pipeline | beam.Create(rows) | WriteRows(str(tmp_path), (records_sink(shard_count(50, 20)), errors_sink()))
        contents = {}
        for path in sorted((tmp_path / "records").iterdir()):
            with open(path, "rb") as handle:
                contents[path.name] = sorted(json.dumps(r, sort_keys=True) for r in fastavro.reader(handle))
        return contents

    first = build()
    assert list(first) == [f"records-{i:05d}-of-00003.avro" for i in range(3)]
    assert [p.name for p in (tmp_path / "errors").iterdir()] == ["errors-00000-of-00001.jsonl"]  # empty, but there
    assert build() == first
    assert sum(len(rows) for rows in first.values()) == 50


def test_empty_input_still_writes_one_valid_empty_shard(tmp_path):
    with TestPipeline() as pipeline:
        _ = pipeline | beam.Create([]) | WriteRows(str(tmp_path), (records_sink(),))
    (shard,) = (tmp_path / "records").iterdir()
    assert shard.name == "records-00000-of-00001.avro"
    with open(shard, "rb") as handle:
        reader = fastavro.reader(handle)
        assert list(reader) == [] and reader.writer_schema["name"] == "beam_zml.Record"


def test_atomic_write_replaces_and_leftovers_are_removed(tmp_path):
    final = tmp_path / "errors" / "errors-00000-of-00001.jsonl"
    write_atomically(str(final), lambda handle: handle.write(b"first\n"))
    write_atomically(str(final), lambda handle: handle.write(b"second\n"))  # a retried bundle
    assert final.read_bytes() == b"second\n"
    killed = tmp_path / "errors" / ".errors-00000-of-00001.jsonl.deadbeef.tmp"
    killed.write_bytes(b"half")
    assert remove_temporary_files(str(tmp_path)) == [str(killed)]
    assert sorted(p.name for p in final.parent.iterdir()) == [final.name]
