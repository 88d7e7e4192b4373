"""The kinds of the small elements that flow down the build's one line of steps after the listing.

The build's graph has no branch that joins again (on Flink each such join costs a blocking exchange
and its network buffers), so what the sinks need travels as one stream of tagged notes:

- before the records are grouped, `(record_id, (KIND, value))` with KIND one of OUTCOME, ROWS, ERROR, SHARD;
- after, `(KIND, value)` with KIND one of RECORDS, FILES, ERRORS, COUNTS, SHARD;
- after the row shards are written, also COPIES: what the images/ shards' copies must carry.
"""

OUTCOME = "outcome"  # (RecordSource, status, error): exactly one per record listed
ROWS = "rows"  # the files/ rows of one work item, as one list: one element per item, not per file
ERROR = "error"  # an error row, before the records are grouped
SHARD = "shard"  # the final path of a shard written
RECORDS = "records"  # a records/ row (the sink's folder name)
ERRORS = "errors"  # an error row, after the records are grouped (the sink's folder name)
FILES = "files"  # a files/ row, after the records are grouped (the sink's folder name)
COUNTS = "counts"  # {name: count} of beam_zml.core.counts, summed into dataset.json
COPIES = "copies"  # (images shard, offset, length, facts in COPY_FACTS' order): a file's gzip member and its facts

# The key of an imaged files/ row that says where its Examples are until its facts reach them:
# (images shard, byte offset, byte length) of the file's gzip member. Not a files/ field: the
# files/ sink drops it (fastavro writes the schema's fields only), as offsets move when copies are rewritten.
IMAGE_MEMBER = "_image_member"


def error_note(row: dict) -> tuple[int | None, tuple[str, dict]]:
    """An errors/ row as a note of its record (None for an error of no record, such as a search that failed)."""
    return row["record_id"], (ERROR, row)
