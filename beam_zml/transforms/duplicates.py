"""MarkCopies: files/ rows -> the same rows with n_copies, n_records_sharing and is_canonical.

Only the small files/ rows are grouped, by SWHID, never the image bytes: the images are
written where they are made, before this global view exists, which is why the facts
live in files/ and not in the Examples (README "Duplicates").
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam import pvalue

from beam_zml.core.duplicates import annotate_copies, is_copy_candidate
from beam_zml.transforms.counters import inc

_OTHERS = "others"


class _KeyByContent(beam.DoFn):
    """Copy candidates keyed by SWHID; every other row (skipped, no SWHID) straight to `others`, facts empty."""

    def process(self, row: dict):
        if is_copy_candidate(row):
            yield row["swhid"], row
        else:
            yield pvalue.TaggedOutput(_OTHERS, annotate_copies([row])[0])


def _annotate_group(element) -> list[dict]:
    _, rows = element
    annotated = annotate_copies(rows)
    if len(annotated) > 1:
        inc("duplicate_files", len(annotated) - 1)
    return annotated


class MarkCopies(beam.PTransform):
    """files/ rows -> files/ rows with the copy facts of beam_zml.core.duplicates.copy_facts."""

    def expand(self, rows):
        keyed = rows | "KeyByContent" >> beam.ParDo(_KeyByContent()).with_outputs(_OTHERS, main="candidates")
        marked = (
            keyed.candidates
            | "GroupByContent" >> beam.GroupByKey()
            | "Annotate" >> beam.FlatMap(_annotate_group)
        )
        return (marked, keyed[_OTHERS]) | "AllRows" >> beam.Flatten()
