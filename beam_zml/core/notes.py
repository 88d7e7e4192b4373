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
COPIES = "copies"  # (record_id, IMAGE_MEMBER value, facts in COPY_FACTS' order): a copied file's member and its facts

# The key of an imaged files/ row that says where its Examples are until its facts reach them: its work
# item (index, count: which images/ shard) and the byte offset and length of its gzip member there, packed
# into one int by `image_member`. Not a files/ field: the files/ sink drops it (fastavro writes the schema's
# fields only). One int, because every row carries it through two shuffles: decoded, a tuple of the shard's
# path and two ints costs a row about 290 bytes, this int about 100.
IMAGE_MEMBER = "_image_member"
_BITS = (24, 24, 40, 32)  # index, count, offset, length: items per record, bytes of a shard and of a member


def image_member(index: int, count: int, offset: int, length: int) -> int:
    """(work item index, item count, member offset, member length) as one int; ValueError if one does not fit."""
    packed = 0
    for value, bits in zip((index, count, offset, length), _BITS):
        if not 0 <= value < 1 << bits:
            raise ValueError(f"{value} does not fit in {bits} bits")
        packed = packed << bits | value
    return packed


def unpack_image_member(packed: int) -> tuple[int, int, int, int]:
    """`image_member`'s (index, count, offset, length) back."""
    values = []
    for bits in reversed(_BITS):
        values.append(packed & ((1 << bits) - 1))
        packed >>= bits
    return tuple(reversed(values))  # type: ignore[return-value]


def error_note(row: dict) -> tuple[int | None, tuple[str, dict]]:
    """An errors/ row as a note of its record (None for an error of no record, such as a search that failed)."""
    return row["record_id"], (ERROR, row)
