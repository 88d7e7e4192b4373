"""WriteCopyFacts: each copied file's Examples given its copy facts, in the images/ shard that holds them.

An images/ shard is written where its files are imaged, before the build has seen every file, so
every file's Examples are written as the only copy of their content (n_copies 1, n_records_sharing 1,
is_canonical 1: beam_zml.core.duplicates.ONE_COPY). The files/ writer, which sees every copy of a
content, then sends a COPIES note for each file whose facts differ; this step groups those notes by
images/ shard (small tuples, never image bytes) and rewrites each such shard once, streaming it: the
gzip members of the other files are copied as they are, and only the copies' members are
decompressed, given their facts and compressed again (beam_zml.core.examples.with_copy_facts). A
shard with no copy is not touched, so the cost follows the duplicated images, not the dataset.

A retry is safe: the shard is replaced whole (storage.write_atomically), and a shard whose first
copy no longer reads as written with ONE_COPY was rewritten by an earlier attempt and is left alone.
"""

from __future__ import annotations

import dataclasses
from typing import IO

import apache_beam as beam

from beam_zml.core.duplicates import COPY_FACTS, ONE_COPY
from beam_zml.core.examples import copy_facts_of, with_copy_facts
from beam_zml.core.notes import COPIES, unpack_image_member
from beam_zml.sinks.write_shards import ItemShards
from beam_zml.storage import join, open_read, write_atomically
from beam_zml.transforms.counters import CountShuffledBytes, inc

_PASS = ""  # the group of the notes that are not COPIES (no shard path is empty)


def already_rewritten(shard: IO[bytes], copies: list[tuple[int, int, dict]]) -> bool:
    """Whether an earlier attempt rewrote this images/ shard: its first listed member (by offset) no longer
    reads as a member written with ONE_COPY (beam_zml.core.examples.copy_facts_of)."""
    offset, length, _ = min(copies, key=lambda copy: copy[0])
    shard.seek(offset)
    try:
        written = copy_facts_of(shard.read(length))
    except Exception:  # a member moved by an earlier rewrite: these bytes are no longer one member
        return True
    return written != {name: int(value) for name, value in ONE_COPY.items()}


def write_rewritten(shard: IO[bytes], copies: list[tuple[int, int, dict]], out: IO[bytes]) -> None:
    """Copy the images/ shard `shard` to `out` with each (offset, length, facts) member given its copy facts
    (beam_zml.core.examples.with_copy_facts), streaming: one member in memory at a time."""
    shard.seek(0)
    position = 0
    for offset, length, facts in sorted(copies, key=lambda copy: copy[0]):
        _copy_bytes(shard, out, offset - position)
        out.write(with_copy_facts(shard.read(length), facts))
        position = offset + length
    _copy_bytes(shard, out, None)


def _copy_bytes(source: IO[bytes], target: IO[bytes], n_bytes: int | None, chunk: int = 1 << 20) -> None:
    """Copy `n_bytes` (None: all that is left) from `source` to `target`, a chunk at a time."""
    while n_bytes is None or n_bytes > 0:
        data = source.read(chunk if n_bytes is None else min(chunk, n_bytes))
        if not data:
            if n_bytes is not None:
                raise ValueError("an images/ shard ended before a member its files/ row names")
            return
        target.write(data)
        if n_bytes is not None:
            n_bytes -= len(data)


@dataclasses.dataclass
class WriteCopyFacts(beam.PTransform):
    """(kind, value) notes -> the same notes without the COPIES, once every copy's Examples carry its facts.

    One GroupByKey, by images/ shard; the other notes pass through in one group, so that what follows
    (the manifest) runs after every shard is final.
    """

    shards: ItemShards

    def expand(self, notes):
        return (
            notes
            | "KeyByImagesShard" >> beam.Map(self._key)
            | CountShuffledBytes("GroupByImagesShard")
            | "GroupByImagesShard" >> beam.GroupByKey()
            | "RewriteCopies" >> beam.FlatMap(self._rewrite)
        )

    def _key(self, element):
        kind, value = element
        if kind != COPIES:
            return _PASS, element
        record_id, member, facts = value
        index, count, offset, length = unpack_image_member(member)
        return self.shards.name(record_id, index, count), (offset, length, dict(zip(COPY_FACTS, facts)))

    def _rewrite(self, element):
        shard, values = element
        if shard == _PASS:
            yield from values
            return
        copies = list(values)
        path = join(self.shards.output, shard)
        with open_read(path) as handle:
            if not already_rewritten(handle, copies):
                write_atomically(path, lambda out: write_rewritten(handle, copies, out))
                inc("files_given_copy_facts", len(copies))
