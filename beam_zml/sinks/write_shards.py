"""Sinks that are correct on every runner: deterministic shards, whole-shard writes, rename when complete.

Runners may run a bundle twice (Flink, Spark and Dask all do on retry), and Beam's own
file sinks were seen to drop or duplicate output under some of them. Two kinds of shard:

- images/ and files/ (the heavy bytes): one shard of each per work item (`ItemShards`),
  written where the item is imaged, so no image crosses a shuffle. The name comes from the
  item (record id, index, count of the record's items) and the item's content is fixed by
  its listing, so a retry writes the same bytes to the same name.
- records/ and errors/ (small rows, `_WriteShards`): each shard is a key of one
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

from beam_zml.schemas import load_schema
from beam_zml.storage import join, write_atomically
from beam_zml.transforms.counters import CountShuffledBytes


def shard_index(key: str, n_shards: int) -> int:
    """A shard for `key` that is the same on every worker, run and Python version."""
    return int.from_bytes(hashlib.md5(key.encode("utf-8")).digest()[:8], "big") % n_shards


def shard_prefix(name: str, run_tag: str) -> str:
    """"images", or "images-<run>" for the shards that a resumed run adds beside the earlier ones."""
    return f"{name}-{run_tag}" if run_tag else name


def shard_name(directory: str, prefix: str, index: int, n_shards: int, suffix: str) -> str:
    return join(directory, f"{prefix}-{index:05d}-of-{n_shards:05d}{suffix}")


def shard_count(expected_rows: int, rows_per_shard: int) -> int:
    """How many shards `expected_rows` rows need at `rows_per_shard` a shard (at least 1)."""
    return max(1, -(-expected_rows // rows_per_shard))


@dataclass
class _WriteShards(beam.PTransform):
    """(key, payload) -> the `n_shards` final shard paths, each shard written by `write_payloads(handle, payloads)`.

    The count is fixed when the graph is built, so the shards need one GroupByKey and no side input
    (on Flink, every exchange costs network buffers); every index gets a shard, empty or not.
    """

    directory: str
    prefix: str
    suffix: str
    n_shards: int
    write_payloads: Callable

    def expand(self, elements):
        n = self.n_shards
        keyed = elements | "AssignShard" >> beam.Map(lambda element: (shard_index(element[0], n), (True, element[1])))
        every_shard = elements.pipeline | "EveryShard" >> beam.Create([(index, (False, None)) for index in range(n)])
        return (
            (keyed, every_shard)
            | "Merge" >> beam.Flatten()
            | CountShuffledBytes(f"GroupByShard.{self.prefix}")
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.Map(self._write_shard)
        )

    def _write_shard(self, element) -> str:
        index, tagged = element
        final = shard_name(self.directory, self.prefix, index, self.n_shards, self.suffix)
        payloads = (payload for present, payload in tagged if present)
        write_atomically(final, lambda handle: self.write_payloads(handle, payloads))
        return final


class _AvroWriter:
    """Writes rows with the packaged schema; a class so that it pickles by name."""

    def __init__(self, schema_name: str):
        self._schema_name = schema_name

    def __call__(self, handle, rows: Iterable[dict], sync_marker: bytes | None = None) -> None:
        """Write `rows`; a given 16-byte `sync_marker` (else a random one) makes the file's bytes repeatable."""
        fastavro.writer(handle, load_schema(self._schema_name), rows, codec="deflate", sync_marker=sync_marker)


@dataclass
class WriteAvro(beam.PTransform):
    """Rows -> OUT/<name>/<name>-SSSSS-of-NNNNN.avro (`n_shards` of them) with the packaged schema `schema_name`."""

    output: str
    name: str
    schema_name: str
    key: Callable[[dict], str]
    n_shards: int = 1
    run_tag: str = ""

    def expand(self, rows):
        key = self.key
        directory, prefix = join(self.output, self.name), shard_prefix(self.name, self.run_tag)
        return (
            rows
            | "Key" >> beam.Map(lambda row: (key(row), row))
            | "Write" >> _WriteShards(directory, prefix, ".avro", self.n_shards, _AvroWriter(self.schema_name))
        )


def _write_json_lines(handle, rows: Iterable[dict]) -> None:
    for row in rows:
        handle.write(json.dumps(row, sort_keys=True).encode("utf-8") + b"\n")


@dataclass
class WriteJsonLines(beam.PTransform):
    """Rows -> OUT/<name>/<name>-SSSSS-of-NNNNN.jsonl (`n_shards` of them), one JSON object a line."""

    output: str
    name: str
    n_shards: int = 1
    run_tag: str = ""

    def expand(self, rows):
        directory, prefix = join(self.output, self.name), shard_prefix(self.name, self.run_tag)
        return (
            rows
            | "Key" >> beam.Map(lambda row: (json.dumps(row, sort_keys=True), row))
            | "Write" >> _WriteShards(directory, prefix, ".jsonl", self.n_shards, _write_json_lines)
        )


def _record_key(row: dict) -> str:
    return str(row["record_id"])


RECORDS_PER_SHARD = 10_000


@dataclass
class WriteRecords(beam.PTransform):
    """records/ rows -> OUT/records/records-SSSSS-of-NNNNN.avro; `n_shards`: shard_count(records expected, RECORDS_PER_SHARD)."""

    output: str
    run_tag: str = ""
    n_shards: int = 1

    def expand(self, rows):
        return rows | "Avro" >> WriteAvro(self.output, "records", "record", _record_key, self.n_shards, self.run_tag)


@dataclass
class WriteErrors(beam.PTransform):
    """error rows -> OUT/errors/errors-SSSSS-of-NNNNN.jsonl (one shard unless told: errors are few)."""

    output: str
    run_tag: str = ""
    n_shards: int = 1

    def expand(self, rows):
        return rows | "JsonLines" >> WriteJsonLines(self.output, "errors", self.n_shards, self.run_tag)


@dataclass(frozen=True)
class ItemShards:
    """Where a work item's images and files/ rows go: OUT/images/images[-RUN]-RECORD-IIIII-of-NNNNN.tfrecord.gz
    and OUT/files/files[-RUN]-RECORD-IIIII-of-NNNNN.avro, NNNNN being the number of the record's work items.
    """

    output: str
    run_tag: str = ""

    def path(self, kind: str, suffix: str, record_id: int, index: int, count: int) -> str:
        """The final name of work item `index` (of `count`) of `record_id`'s shard of `kind` ("images" or "files")."""
        name = f"{shard_prefix(kind, self.run_tag)}-{record_id}-{index:05d}-of-{count:05d}{suffix}"
        return join(self.output, kind, name)

    def write_images(self, record_id: int, index: int, count: int, write: Callable[[IO[bytes]], object]) -> str:
        """Write the item's images shard through `write(handle)` (gzip members, concatenated); its final path."""
        final = self.path("images", ".tfrecord.gz", record_id, index, count)
        write_atomically(final, write)
        return final

    def write_files(self, record_id: int, index: int, count: int, rows: list[dict]) -> str:
        """Write the item's files/ rows, byte for byte the same on a retry (the sync marker comes from the name)."""
        final = self.path("files", ".avro", record_id, index, count)
        marker = hashlib.md5(final.encode("utf-8")).digest()
        write_atomically(final, lambda handle: _AvroWriter("file")(handle, rows, marker))
        return final
