"""ImagifyFiles: each file to its files/ row and, if imaged, its compressed images."""

from __future__ import annotations

import apache_beam as beam
from apache_beam import pvalue

from beam_zml.core.counts import file_counts
from beam_zml.core.errors import error_row
from beam_zml.core.imaging import ImageSettings, file_row, image_file
from beam_zml.transforms.counters import inc_all

ROWS = "rows"  # (record_id, files/ row)
ERRORS = "errors"


class _ImagifyFn(beam.DoFn):
    def __init__(self, settings: ImageSettings):
        self._settings = settings

    def process(self, element):
        record_id, member = element
        try:
            row, blob = image_file(record_id, member, self._settings)
        except Exception as error:  # one bad file never stops its record
            message = f"{type(error).__name__}: {error}"
            row, blob = file_row(record_id, member, reason="error"), None
            yield pvalue.TaggedOutput(
                ERRORS, error_row("imagify", record_id, message, error_type=type(error).__name__, path=member.path)
            )
        inc_all(file_counts(row))
        if blob is not None:
            yield f"{record_id}/{member.path}", blob, row["n_segments"]
        yield pvalue.TaggedOutput(ROWS, (record_id, row))


class ImagifyFiles(beam.PTransform):
    """(record_id, Member) -> (key, gzip member of Examples, n_images), plus tagged `rows` and `errors`."""

    def __init__(self, settings: ImageSettings):
        super().__init__()
        self._settings = settings

    def expand(self, files):
        imaged = files | "Imagify" >> beam.ParDo(_ImagifyFn(self._settings)).with_outputs(ROWS, ERRORS, main="images")
        return {"images": imaged.images, ROWS: imaged[ROWS], ERRORS: imaged[ERRORS]}
