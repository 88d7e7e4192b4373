"""ListRepositoryFiles: each record's code fetched if need be, read member by member, one element per file."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import tempfile

import apache_beam as beam
from apache_beam import pvalue

from beam_zml.core.errors import error_row
from beam_zml.core.records import RecordSource
from beam_zml.sources.fetch import NoCode, fetch_code, scrub_token
from beam_zml.sources.harvest import is_excluded
from beam_zml.sources.local import read_selected
from beam_zml.sources.repository import Limits, RepositoryError
from beam_zml.sources.zenodo import ZenodoClient, ZenodoError, ZenodoSettings
from beam_zml.transforms.counters import inc

OUTCOMES = "outcomes"  # (record_id, (RecordSource, status, error)): exactly one per record
ERRORS = "errors"


class _Excluded(Exception):
    """The record matches --exclude-pattern: it is dropped, not failed."""


class _ListFilesFn(beam.DoFn):
    def __init__(self, limits: Limits, zenodo: ZenodoSettings | None, exclude_pattern: str | None):
        self._limits = limits
        self._zenodo = zenodo
        self._exclude_pattern = exclude_pattern

    def setup(self):
        self._client = ZenodoClient(self._zenodo) if self._zenodo is not None else None
        self._excluded = re.compile(self._exclude_pattern) if self._exclude_pattern else None

    def teardown(self):
        if self._client is not None:
            self._client.close()

    def process(self, source: RecordSource):
        attempt = _Attempt(source)
        warnings = []  # (error_type, message) of a repository read whole but not cleanly
        try:
            with self._code(attempt) as location:
                members = read_selected(
                    location, self._limits, attempt.source.selection, warn=lambda *warning: warnings.append(warning)
                )
        except _Excluded:
            inc("records_excluded")
            return
        except Exception as error:  # one bad record never stops the run
            message = str(error) if isinstance(error, (RepositoryError, ZenodoError, NoCode)) else f"{type(error).__name__}: {error}"
            attempts = getattr(error, "attempts", 1) or 1
            source = attempt.source  # with the metadata, if it was fetched
            inc("records_listed")  # read, if only to fail: progress counts it
            yield pvalue.TaggedOutput(OUTCOMES, (source.record_id, (source, "failed", message)))
            yield pvalue.TaggedOutput(
                ERRORS,
                error_row("list_files", source.record_id, message, error_type=type(error).__name__, attempts=attempts),
            )
            return
        source = attempt.source
        for problem in attempt.problems:  # sources that failed before one served the code
            yield pvalue.TaggedOutput(ERRORS, error_row("fetch", source.record_id, problem, error_type="SourceFailed"))
        for error_type, message in warnings:
            yield pvalue.TaggedOutput(ERRORS, error_row("list_files", source.record_id, message, error_type=error_type))
        for member in members:
            if member.error is not None:
                yield pvalue.TaggedOutput(
                    ERRORS,
                    error_row("list_files", source.record_id, member.error, error_type=member.skip_reason, path=member.path),
                )
            yield source.record_id, member
        inc("records_listed")
        yield pvalue.TaggedOutput(OUTCOMES, (source.record_id, (source, "ok", None)))

    @contextlib.contextmanager
    def _code(self, attempt: "_Attempt"):
        """A local path to the record's code, fetched into a temporary folder that is removed afterwards.

        `attempt.source` is updated with what was learnt (metadata, where the code came from).
        """
        source = attempt.source
        if source.source == "local":
            yield source.location
            return
        raw = source.raw if source.raw is not None else self._client.record(source.record_id)
        raw = scrub_token(raw, self._zenodo.token)
        attempt.source = dataclasses.replace(source, raw=raw)
        if self._excluded is not None and is_excluded(raw, self._excluded):
            raise _Excluded()
        with tempfile.TemporaryDirectory(prefix="beam_zml-") as workdir:
            fetched = fetch_code(self._client, raw, workdir, self._zenodo.github_url, self._zenodo.max_archive_bytes)
            attempt.problems.extend(fetched.problems)
            attempt.source = dataclasses.replace(attempt.source, location=fetched.url, source=fetched.source)
            yield fetched.location


@dataclasses.dataclass
class _Attempt:
    """What one record's listing has learnt so far, kept for its row even when it fails."""

    source: RecordSource
    problems: list[str] = dataclasses.field(default_factory=list)


class ListRepositoryFiles(beam.PTransform):
    """RecordSource -> (record_id, Member) per file, plus tagged `outcomes` and `errors`.

    Zenodo records are fetched first (metadata if missing, then the code, into a
    temporary folder removed once read). The files are reshuffled so that one big
    repository's files spread over all workers.
    """

    def __init__(self, limits: Limits, zenodo: ZenodoSettings | None = None, exclude_pattern: str | None = None):
        super().__init__()
        self._limits = limits
        self._zenodo = zenodo
        self._exclude_pattern = exclude_pattern

    def expand(self, sources):
        listed = (
            sources
            | "SpreadRecords" >> beam.Reshuffle()
            | "ReadMembers"
            >> beam.ParDo(_ListFilesFn(self._limits, self._zenodo, self._exclude_pattern)).with_outputs(
                OUTCOMES, ERRORS, main="files"
            )
        )
        files = listed.files | "SpreadFiles" >> beam.Reshuffle()
        return {"files": files, OUTCOMES: listed[OUTCOMES], ERRORS: listed[ERRORS]}
