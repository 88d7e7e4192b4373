"""BuildRecordRows: each record's notes grouped, its outcome and file rows joined into its records/ row."""

from __future__ import annotations

import collections

import apache_beam as beam

from beam_zml.core.counts import file_counts, record_counts
from beam_zml.core.notes import (
    COUNTS,
    ERROR,
    ERRORS,
    FILES,
    OUTCOME,
    RECORDS,
    ROWS,
    SHARD,
)
from beam_zml.core.records import record_row
from beam_zml.transforms.counters import CountShuffledBytes, inc_all


def _record_notes(element):
    """One record's notes -> (RECORDS, its row), (ERRORS, row) each, (SHARD, path) each, (COUNTS, its counts)."""
    record_id, notes = element
    by_kind = collections.defaultdict(list)
    for kind, value in notes:
        by_kind[kind].append(value)
    if not by_kind[OUTCOME]:  # errors of no record (record_id None: a search that failed) pass on alone
        yield from ((ERRORS, error_row) for error_row in by_kind[ERROR])
        yield COUNTS, {"errors": len(by_kind[ERROR])}
        return
    (source, status, error), = by_kind[OUTCOME]  # exactly one outcome per record, by construction
    files = [row for rows in by_kind[ROWS] for row in rows]
    row = record_row(source, status=status, error=error, file_rows=files)
    inc_all(record_counts(row))
    counts = collections.Counter(record_counts(row))
    for file in files:
        counts.update(file_counts(file))
    counts["errors"] += len(by_kind[ERROR])
    yield RECORDS, row
    yield from ((FILES, file) for file in files)
    yield from ((ERRORS, error_row) for error_row in by_kind[ERROR])
    yield from ((SHARD, path) for path in by_kind[SHARD])
    yield COUNTS, dict(counts)


class BuildRecordRows(beam.PTransform):
    """(record_id, (kind, value)) notes -> (RECORDS, records/ row), (ERRORS, error row), (SHARD, path), (COUNTS, counts).

    One GroupByKey by record: a record's rows meet its outcome, and every note of the record leaves in one step.
    """

    def expand(self, notes):
        return (
            notes
            | CountShuffledBytes("GroupByRecord")
            | "GroupByRecord" >> beam.GroupByKey()
            | "MakeRecordRow" >> beam.FlatMap(_record_notes)
        )
