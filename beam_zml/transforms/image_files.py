"""ImageWorkItems: each work item (some files of one repository) read, imaged and written where it runs.

A work item names the files; the worker that images it reads them from the repository itself,
one at a time, and writes the item's images as its own shard
(beam_zml.sinks.write_shards.ItemShards). So the file bytes and the images never cross a shuffle:
what leaves the worker is notes, small (record_id, (kind, value)) pairs: the files/ rows, the
error rows and the two shard paths. Notes from earlier steps pass through unchanged, so that the
graph stays one line (each branch that joins again costs a blocking exchange on Flink).
"""

from __future__ import annotations

import collections
import dataclasses
import typing
from collections.abc import Iterator

import apache_beam as beam

from beam_zml.core.counts import file_counts
from beam_zml.core.errors import error_row
from beam_zml.core.examples import empty_gzip
from beam_zml.core.imaging import ImageSettings, file_row, image_file
from beam_zml.core.notes import ERROR, IMAGE_MEMBER, ROWS, SHARD, image_member
from beam_zml.sources.repository import (
    Limits,
    Listing,
    Member,
    RepositoryError,
    read_entries,
)
from beam_zml.transforms.counters import CountShuffledBytes, inc_all

if typing.TYPE_CHECKING:  # the sinks use this package's counters: no import cycle at run time
    from beam_zml.sinks.write_shards import ItemShards


@dataclasses.dataclass(frozen=True)
class WorkItem:
    """Item `index` of `count` of one record: the entries of its listing that it reads (`listing.entries`)."""

    record_id: int
    listing: Listing
    index: int
    count: int


@dataclasses.dataclass(frozen=True)
class ItemImager:
    """Reads, images and writes one work item; used by ImageWorkItems and, for the items of a record that only
    the listing worker can read (a Zenodo download, a tar), by the listing worker itself."""

    settings: ImageSettings
    limits: Limits
    shards: ItemShards

    def notes(self, item: WorkItem) -> list[tuple[int, tuple[str, object]]]:
        """Write the item's images shard; return its notes: the shard's path, its files/ rows (one list) and error rows.

        Nothing is returned before the shard is in place, so a failed attempt emits nothing. The files/ rows
        are written later, sharded by content (beam_zml.sinks.write_shards.files_sink).
        """
        return self._notes(item.record_id, item.index, item.count, _members(item, self.limits))

    def member_notes(self, record_id: int, members: list[Member]) -> list[tuple[int, tuple[str, object]]]:
        """`notes` of a record whose members were read already (a Zenodo record's files), as its one item."""
        return self._notes(record_id, 0, 1, iter(members))

    def _notes(self, record_id: int, index: int, count: int, members: Iterator[Member]) -> list[tuple[int, tuple[str, object]]]:
        rows: list[dict] = []
        errors: list[dict] = []
        written: list[tuple[dict, int, int]] = []  # (row, offset, length) of each imaged file's gzip member

        def write_images(handle) -> None:
            offset = 0
            for member in members:
                try:
                    row, blob = image_file(record_id, member, self.settings)
                except Exception as error:  # one bad file never stops its record
                    row, blob = file_row(record_id, member, reason="error"), None
                    errors.append(error_row("imagify", record_id, f"{type(error).__name__}: {error}",
                                            error_type=type(error).__name__, path=member.path))
                if member.error is not None:
                    errors.append(error_row("list_files", record_id, member.error, error_type=member.skip_reason,
                                            path=member.path))
                rows.append(row)
                if blob is not None:
                    handle.write(blob)
                    written.append((row, offset, len(blob)))
                    offset += len(blob)
            if not written:
                handle.write(empty_gzip())  # still a valid (empty) gzip file

        images = self.shards.write_images(record_id, index, count, write_images)
        for row, offset, length in written:
            row[IMAGE_MEMBER] = image_member(index, count, offset, length)
        counts: collections.Counter = collections.Counter()
        for row in rows:
            counts.update(file_counts(row))
        inc_all(counts)  # once per name and item: a counter costs more than a file's counts
        return [
            (record_id, (SHARD, images)),
            (record_id, (ROWS, rows)),
            *((record_id, (ERROR, row)) for row in errors),
        ]


def _members(item: WorkItem, limits: Limits) -> Iterator[Member]:
    """The item's members; if the archive can no longer be read, the rest as read_error members."""
    done = set()
    try:
        for member in read_entries(item.listing, item.listing.entries, limits):
            done.add(member.path)
            yield member
    except RepositoryError as error:
        for entry in item.listing.entries:
            if entry.path not in done:
                yield Member(entry.path, entry.size, None, None, "read_error", f"{entry.path}: {error}")


class _ImageItemFn(beam.DoFn):
    def __init__(self, imager: ItemImager):
        self._imager = imager

    def process(self, element):
        if isinstance(element, WorkItem):
            yield from self._imager.notes(element)
        else:  # a note from the listing
            yield element


@dataclasses.dataclass
class ImageWorkItems(beam.PTransform):
    """WorkItems and notes -> notes: each item imaged into its notes, other notes passed through.

    The input is reshuffled first, so that one big repository's items spread over all workers.
    """

    imager: ItemImager

    def expand(self, elements):
        return (
            elements
            | CountShuffledBytes("SpreadItems")
            | "SpreadItems" >> beam.Reshuffle()
            | "ImageItems" >> beam.ParDo(_ImageItemFn(self.imager))
        )
