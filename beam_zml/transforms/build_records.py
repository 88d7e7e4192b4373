"""BuildRecordRows: each record's outcome and file rows joined into its records/ row."""

from __future__ import annotations

import apache_beam as beam

from beam_zml.core.counts import record_counts
from beam_zml.core.records import record_row
from beam_zml.transforms.counters import CountShuffledBytes, inc_all


def _to_record_row(element) -> dict:
    record_id, grouped = element
    (source, status, error), = grouped["outcome"]  # exactly one outcome per record, by construction
    row = record_row(source, status=status, error=error, file_rows=grouped["files"])
    inc_all(record_counts(row))
    return row


class BuildRecordRows(beam.PTransform):
    """outcomes (record_id, (source, status, error)) + file rows (record_id, row) -> records/ rows."""

    def __init__(self, file_rows):
        super().__init__()
        self._file_rows = file_rows

    def expand(self, outcomes):
        return (
            {
                "outcome": outcomes | "Outcomes" >> CountShuffledBytes("JoinFilesToRecords.outcomes"),
                "files": self._file_rows | "FileRows" >> CountShuffledBytes("JoinFilesToRecords.files"),
            }
            | "JoinFilesToRecords" >> beam.CoGroupByKey()
            | "MakeRecordRow" >> beam.Map(_to_record_row)
        )
