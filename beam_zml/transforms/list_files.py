"""ListRepositoryFiles: each record's repository read member by member, one element per file."""

from __future__ import annotations

import apache_beam as beam
from apache_beam import pvalue

from beam_zml.errors import error_row
from beam_zml.records import RecordSource
from beam_zml.repository import Limits, RepositoryError, read_repository
from beam_zml.transforms.counters import inc

OUTCOMES = "outcomes"  # (record_id, (RecordSource, status, error)): exactly one per record
ERRORS = "errors"


class _ListFilesFn(beam.DoFn):
    def __init__(self, limits: Limits):
        self._limits = limits

    def process(self, source: RecordSource):
        try:
            members = read_repository(source.location, self._limits)
        except Exception as error:  # one bad record never stops the run
            message = str(error) if isinstance(error, RepositoryError) else f"{type(error).__name__}: {error}"
            inc("records_failed")
            yield pvalue.TaggedOutput(OUTCOMES, (source.record_id, (source, "failed", message)))
            yield pvalue.TaggedOutput(
                ERRORS, error_row("list_files", source.record_id, message, error_type=type(error).__name__)
            )
            return
        for member in members:
            if member.error is not None:
                yield pvalue.TaggedOutput(
                    ERRORS,
                    error_row("list_files", source.record_id, member.error, error_type=member.skip_reason, path=member.path),
                )
            yield source.record_id, member
        inc("records_ok")
        yield pvalue.TaggedOutput(OUTCOMES, (source.record_id, (source, "ok", None)))


class ListRepositoryFiles(beam.PTransform):
    """RecordSource -> (record_id, Member) per file, plus tagged `outcomes` and `errors`.

    The files are reshuffled so that one big repository's files spread over all workers.
    """

    def __init__(self, limits: Limits):
        super().__init__()
        self._limits = limits

    def expand(self, sources):
        listed = (
            sources
            | "SpreadRecords" >> beam.Reshuffle()
            | "ReadMembers" >> beam.ParDo(_ListFilesFn(self._limits)).with_outputs(OUTCOMES, ERRORS, main="files")
        )
        files = listed.files | "SpreadFiles" >> beam.Reshuffle()
        return {"files": files, OUTCOMES: listed[OUTCOMES], ERRORS: listed[ERRORS]}
