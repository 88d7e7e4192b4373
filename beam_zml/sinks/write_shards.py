"""Sinks that are correct on every runner: deterministic shards, whole-shard writes, rename when complete.

Runners may run a bundle twice (Flink, Spark and Dask all do on retry), and Beam's own
file sinks were seen to drop or duplicate output under some of them. Two kinds of shard:

- images/ and files/ (the heavy bytes): one shard of each per work item (`ItemShards`),
  written where the item is imaged, so no image crosses a shuffle. The name comes from the
  item (record id, index, count of the record's items) and the item's content is fixed by
  its listing, so a retry writes the same bytes to the same name.
- records/ and errors/ (small rows, `_WriteShards`): each shard is a key of one
  GroupByKey; the shard index is a stable hash of the element's key, the shard count
  follows from the data, and every shard index exists even if empty.

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


class _WriteShards(beam.PTransform):
    """(key, weight, payload) -> one final shard path per shard, each written by `write_payloads`."""

    def __init__(self, directory: str, prefix: str, suffix: str, per_shard: int, write_payloads: Callable):
        super().__init__()
        self._directory = directory
        self._prefix = prefix
        self._suffix = suffix
        self._per_shard = per_shard
        self._write_payloads = write_payloads

    def expand(self, elements):
        per_shard = self._per_shard
        n_shards = (
            elements
            | "Weigh" >> beam.Map(lambda element: element[1])
            | "Total" >> beam.CombineGlobally(sum)
            | "CountShards" >> beam.Map(lambda total: max(1, -(-total // per_shard)))
        )
        n = beam.pvalue.AsSingleton(n_shards)
        keyed = elements | "AssignShard" >> beam.Map(
            lambda element, n: (shard_index(element[0], n), (True, element[2])), n=n
        )
        every_shard = n_shards | "EveryShard" >> beam.FlatMap(lambda count: [(i, (False, None)) for i in range(count)])
        return (
            (keyed, every_shard)
            | "Merge" >> beam.Flatten()
            | CountShuffledBytes(f"GroupByShard.{self._prefix}")
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.Map(self._write_shard, n=n)
        )

    def _write_shard(self, element, n: int) -> str:
        index, tagged = element
        final = shard_name(self._directory, self._prefix, index, n, self._suffix)
        payloads = (payload for present, payload in tagged if present)
        write_atomically(final, lambda handle: self._write_payloads(handle, payloads))
        return final


class _AvroWriter:
    """Writes rows with the packaged schema; a class so that it pickles by name."""

    def __init__(self, schema_name: str):
        self._schema_name = schema_name

    def __call__(self, handle, rows: Iterable[dict], sync_marker: bytes | None = None) -> None:
        """Write `rows`; a given 16-byte `sync_marker` (else a random one) makes the file's bytes repeatable."""
        fastavro.writer(handle, load_schema(self._schema_name), rows, codec="deflate", sync_marker=sync_marker)


class WriteAvro(beam.PTransform):
    """Rows -> OUT/<name>/<name>-SSSSS-of-NNNNN.avro with the packaged schema `schema_name`."""

    def __init__(
        self, output: str, name: str, schema_name: str, key: Callable[[dict], str], rows_per_shard: int, run_tag: str = ""
    ):
        super().__init__()
        self._output = output
        self._name = name
        self._prefix = shard_prefix(name, run_tag)
        self._schema_name = schema_name
        self._key = key
        self._per_shard = rows_per_shard

    def expand(self, rows):
        key = self._key
        return (
            rows
            | "Key" >> beam.Map(lambda row: (key(row), 1, row))
            | "Write" >> _WriteShards(
                join(self._output, self._name),
                self._prefix,
                ".avro",
                self._per_shard,
                _AvroWriter(self._schema_name),
            )
        )


def _write_json_lines(handle, rows: Iterable[dict]) -> None:
    for row in rows:
        handle.write(json.dumps(row, sort_keys=True).encode("utf-8") + b"\n")


class WriteJsonLines(beam.PTransform):
    """Rows -> OUT/<name>/<name>-SSSSS-of-NNNNN.jsonl, one JSON object a line."""

    def __init__(self, output: str, name: str, rows_per_shard: int = 1_000_000, run_tag: str = ""):
        super().__init__()
        self._output = output
        self._name = name
        self._prefix = shard_prefix(name, run_tag)
        self._per_shard = rows_per_shard

    def expand(self, rows):
        return (
            rows
            | "Key" >> beam.Map(lambda row: (json.dumps(row, sort_keys=True), 1, row))
            | "Write" >> _WriteShards(
                join(self._output, self._name), self._prefix, ".jsonl", self._per_shard, _write_json_lines
            )
        )


def _record_key(row: dict) -> str:
    return str(row["record_id"])


class WriteRecords(WriteAvro):
    """records/ rows -> OUT/records/records-SSSSS-of-NNNNN.avro."""

    def __init__(self, output: str, run_tag: str = "", rows_per_shard: int = 10_000):
        super().__init__(output, "records", "record", _record_key, rows_per_shard, run_tag)


class WriteErrors(WriteJsonLines):
    """error rows -> OUT/errors/errors-SSSSS-of-NNNNN.jsonl."""

    def __init__(self, output: str, run_tag: str = "", rows_per_shard: int = 1_000_000):
        super().__init__(output, "errors", rows_per_shard, run_tag)


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
