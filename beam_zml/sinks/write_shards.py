"""Sinks that are correct on every runner: deterministic shards, whole-shard writes, rename when complete.

Runners may run a bundle twice (Flink, Spark and Dask all do on retry), and Beam's own
file sinks were seen to drop or duplicate output under some of them. Two kinds of shard:

- images/ (the heavy bytes): one shard per work item (`ItemShards`), written where the
  item is imaged, so no image crosses a shuffle. The name comes from the item (record id,
  index, count of the record's items) and the item's content is fixed by its listing, so
  a retry writes the same bytes to the same name.
- records/, files/ and errors/ (small rows, `WriteRows`): each shard is a key of one
  GroupByKey; the shard index is a stable hash of the element's key, the shard count is
  fixed when the graph is built (from the number of records expected: no global count and
  no side input), and every shard index exists even if empty.

Every shard is written whole to a hidden temporary name and renamed to its final name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO

import apache_beam as beam
import fastavro

from beam_zml.core.duplicates import COPY_FACTS, ONE_COPY, facts_of_rows
from beam_zml.core.notes import COPIES, ERRORS, FILES, IMAGE_MEMBER, RECORDS, SHARD
from beam_zml.schemas import load_schema
from beam_zml.storage import join, write_atomically
from beam_zml.transforms.counters import CountShuffledBytes


def shard_index(key: str, n_shards: int) -> int:
    """A shard for `key` that is the same on every worker, run and Python version."""
    return int.from_bytes(hashlib.md5(key.encode("utf-8")).digest()[:8], "big") % n_shards


def shard_prefix(name: str, run_tag: str) -> str:
    """"images", or "images-<run>" for the shards that a resumed run adds beside the earlier ones."""
    return f"{name}-{run_tag}" if run_tag else name


def shard_name(folder: str, prefix: str, index: int, n_shards: int, suffix: str) -> str:
    """`folder`/PREFIX-SSSSS-of-NNNNN`suffix`, relative to the output: what dataset.json lists."""
    return f"{folder}/{prefix}-{index:05d}-of-{n_shards:05d}{suffix}"


def shard_count(expected_rows: int, rows_per_shard: int) -> int:
    """How many shards `expected_rows` rows need at `rows_per_shard` a shard (at least 1)."""
    return max(1, -(-expected_rows // rows_per_shard))


class _AvroWriter:
    """Writes rows with the packaged schema; a class so that it pickles by name."""

    def __init__(self, schema_name: str):
        self._schema_name = schema_name

    def __call__(self, handle, rows: Iterable[dict]) -> None:
        fastavro.writer(handle, load_schema(self._schema_name), rows, codec="deflate")


def _write_json_lines(handle, rows: Iterable[dict]) -> None:
    for row in rows:
        handle.write(json.dumps(row, sort_keys=True).encode("utf-8") + b"\n")


def _record_key(row: dict) -> str:
    return str(row["record_id"])


def _json_key(row: dict) -> str:
    return json.dumps(row, sort_keys=True)


@dataclass(frozen=True)
class RowSink:
    """One folder of row shards: OUT/<name>/<name>[-RUN]-SSSSS-of-NNNNN<suffix>, `n_shards` of them.

    Elements (name, row) go to shard shard_index(key(row), n_shards); `write(handle, rows)` writes a shard
    and returns the notes it leaves for later steps, if any.
    """

    name: str
    suffix: str
    key: Callable[[dict], str]
    write: Callable
    n_shards: int = 1


RECORDS_PER_SHARD = 10_000


def records_sink(n_shards: int = 1) -> RowSink:
    """records/ rows as Avro; `n_shards`: shard_count(records expected, RECORDS_PER_SHARD)."""
    return RowSink(RECORDS, ".avro", _record_key, _AvroWriter("record"), n_shards)


FILES_PER_SHARD = 200_000  # files/ rows a shard holds, about 60 MB of rows in the memory of the worker writing it
FILES_PER_RECORD = 100  # what a records source is taken to hold on average, to size files/ before the run


def files_sink(n_shards: int = 1) -> RowSink:
    """files/ rows as Avro, sharded by content (SWHID): every copy of one content lands in one shard, so the
    shard's writer gives each row its copy facts (n_copies, n_records_sharing, is_canonical) from its own rows,
    and they equal the facts over the whole run (beam_zml.core.duplicates)."""
    return RowSink(FILES, ".avro", _content_key, _FilesWriter(), n_shards)


def _content_key(row: dict) -> str:
    return row["swhid"] or f"{row['record_id']}/{row['path']}"


class _FilesWriter:
    """files/ rows, each with its copy facts, sorted by (record_id, path) so a retry writes the same rows.

    Returns a (COPIES, (record_id, IMAGE_MEMBER value, facts)) note for each imaged file whose facts are not
    ONE_COPY's, the facts its Examples were written with (beam_zml.sinks.copy_facts rewrites them); facts
    as a tuple in COPY_FACTS' order. Each row is joined to its facts only as it is written: a shard's rows
    are held once.
    """

    def __call__(self, handle, rows: Iterable[dict]) -> list[tuple[str, tuple]]:
        rows = sorted(rows, key=lambda row: (row["record_id"], row["path"]))
        facts = facts_of_rows(rows)
        _AvroWriter("file")(handle, ({**row, **fact} for row, fact in zip(rows, facts)))  # IMAGE_MEMBER: no field
        return [
            (COPIES, (row["record_id"], row[IMAGE_MEMBER], tuple(fact[name] for name in COPY_FACTS)))
            for row, fact in zip(rows, facts)
            if IMAGE_MEMBER in row and fact != ONE_COPY
        ]


def errors_sink(n_shards: int = 1) -> RowSink:
    """error rows as JSON lines, one shard unless told: errors are few."""
    return RowSink(ERRORS, ".jsonl", _json_key, _write_json_lines, n_shards)


_PASS = "pass"  # the group of the elements that are not rows of a sink


@dataclass
class WriteRows(beam.PTransform):
    """(kind, value) -> the same stream with each sink's rows replaced by (SHARD, path) of the shards written,
    and the notes that the sinks' writers return (the files/ writer's COPIES).

    Elements of a kind named by a sink are that sink's rows; others pass through (in one group).
    One GroupByKey for every sink and no side input: the shard counts are fixed when the graph is
    built, and every index gets a shard, empty or not.
    """

    output: str
    sinks: tuple[RowSink, ...]
    run_tag: str = ""

    def expand(self, elements):
        sinks = {sink.name: sink for sink in self.sinks}
        every_shard = [((sink.name, index), (False, None)) for sink in self.sinks for index in range(sink.n_shards)]
        return (
            (
                elements | "AssignShard" >> beam.Map(_assign_shard, sinks),
                elements.pipeline | "EveryShard" >> beam.Create(every_shard),
            )
            | "Merge" >> beam.Flatten()
            | CountShuffledBytes("GroupByShard")
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.FlatMap(self._write_shard, sinks)
        )

    def _write_shard(self, element, sinks: dict):
        (name, index), tagged = element
        values = (value for present, value in tagged if present)
        if name == _PASS:
            yield from values
            return
        sink = sinks[name]
        shard = shard_name(name, shard_prefix(name, self.run_tag), index, sink.n_shards, sink.suffix)
        notes = []
        write_atomically(join(self.output, shard), lambda handle: notes.extend(sink.write(handle, values) or ()))
        yield SHARD, shard
        yield from notes


def _assign_shard(element, sinks: dict):
    kind, value = element
    sink = sinks.get(kind)
    if sink is None:
        return (_PASS, 0), (True, element)
    return (kind, shard_index(sink.key(value), sink.n_shards)), (True, value)


@dataclass(frozen=True)
class ItemShards:
    """Where a work item's images go: OUT/images/images[-RUN]-RECORD-IIIII-of-NNNNN.tfrecord.gz, NNNNN being
    the number of the record's work items."""

    output: str
    run_tag: str = ""

    def name(self, record_id: int, index: int, count: int) -> str:
        """The path, relative to the output, of the images shard of work item `index` (of `count`) of `record_id`."""
        return f"images/{shard_prefix('images', self.run_tag)}-{record_id}-{index:05d}-of-{count:05d}.tfrecord.gz"

    def write_images(self, record_id: int, index: int, count: int, write: Callable[[IO[bytes]], object]) -> str:
        """Write the images shard of work item `index` (of `count`) of `record_id` through `write(handle)` (gzip
        members, concatenated); return its path relative to the output."""
        shard = self.name(record_id, index, count)
        write_atomically(join(self.output, shard), write)
        return shard
