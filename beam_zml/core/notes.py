"""The kinds of the small elements that flow down the build's one line of steps after the listing.

The build's graph has no branch that joins again (on Flink each such join costs a blocking exchange
and its network buffers), so what the sinks need travels as one stream of tagged notes:

- before the records are grouped, `(record_id, (KIND, value))` with KIND one of OUTCOME, ROWS, ERROR, SHARD;
- after, `(KIND, value)` with KIND one of RECORDS, FILES, ERRORS, COUNTS, SHARD.
"""

OUTCOME = "outcome"  # (RecordSource, status, error): exactly one per record listed
ROWS = "rows"  # the files/ rows of one work item, as one list: one element per item, not per file
ERROR = "error"  # an error row, before the records are grouped
SHARD = "shard"  # the final path of a shard written
RECORDS = "records"  # a records/ row (the sink's folder name)
ERRORS = "errors"  # an error row, after the records are grouped (the sink's folder name)
FILES = "files"  # a files/ row, after the records are grouped (the sink's folder name)
COUNTS = "counts"  # {name: count} of beam_zml.core.counts, summed into dataset.json


def error_note(row: dict) -> tuple[int | None, tuple[str, dict]]:
    """An errors/ row as a note of its record (None for an error of no record, such as a search that failed)."""
    return row["record_id"], (ERROR, row)
