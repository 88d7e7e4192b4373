"""ListRepositoryFiles: each record's code fetched if need be, read member by member, one element per file."""

from __future__ import annotations

import dataclasses
import re
import tempfile
from typing import Callable

import apache_beam as beam
from apache_beam import pvalue

from beam_zml.core.errors import error_row
from beam_zml.core.records import RecordSource, metadata_problem
from beam_zml.sources.fetch import NoCode, record_members, scrub_token
from beam_zml.sources.harvest import is_excluded
from beam_zml.sources.local import read_selected
from beam_zml.sources.repository import Limits, Member, RepositoryError
from beam_zml.sources.zenodo import ZenodoError
from beam_zml.transforms.counters import inc
from beam_zml.transforms.zenodo_clients import ZenodoClients

OUTCOMES = "outcomes"  # (record_id, (RecordSource, status, error)): exactly one per record
ERRORS = "errors"


class _Excluded(Exception):
    """The record matches --exclude-pattern: it is dropped, not failed."""


class RecordShapeError(Exception):
    """The record's JSON does not fit the records schema (docs/design.md#faults-and-limits): the record fails with the reason."""


class _ListFilesFn(beam.DoFn):
    def __init__(self, limits: Limits, zenodo: ZenodoClients | None, exclude_pattern: str | None):
        self._limits = limits
        self._zenodo = zenodo
        self._exclude_pattern = exclude_pattern

    def setup(self):
        self._client = self._zenodo.acquire() if self._zenodo is not None else None  # the process's client
        self._excluded = re.compile(self._exclude_pattern) if self._exclude_pattern else None

    def process(self, source: RecordSource):
        attempt = _Attempt(source)
        warnings = []  # (error_type, message) of a repository read whole but not cleanly
        try:
            members = self._members(attempt, warn=lambda *warning: warnings.append(warning))
        except _Excluded:
            inc("records_excluded")
            return
        except Exception as error:  # one bad record never stops the run
            known = (RepositoryError, ZenodoError, NoCode, RecordShapeError)
            message = str(error) if isinstance(error, known) else f"{type(error).__name__}: {error}"
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

    def _members(self, attempt: "_Attempt", warn: Callable[[str, str], None]) -> list[Member]:
        """The record's files: its local directory or archive, or a Zenodo record's code fetched into a
        temporary folder that is removed once read. `attempt` learns the metadata and where the code came from.
        """
        source = attempt.source
        if source.source == "local":
            return read_selected(source.location, self._limits, source.selection, warn=warn)
        raw = source.raw if source.raw is not None else self._client.record(source.record_id)
        raw = scrub_token(raw, self._zenodo.settings.token)
        attempt.source = dataclasses.replace(source, raw=raw)
        if self._excluded is not None and is_excluded(raw, self._excluded):
            raise _Excluded()
        problem = metadata_problem(raw)
        if problem is not None:  # fail before any download: the row could not be written as it is
            raise RecordShapeError(problem)
        settings = self._zenodo.settings
        with tempfile.TemporaryDirectory(prefix="beam_zml-") as workdir:
            code = record_members(self._client, raw, workdir, zenodo_url=settings.zenodo_url,
                                  github_base=settings.github_url, limits=self._limits, warn=warn)
        attempt.problems.extend(code.problems)
        attempt.source = dataclasses.replace(attempt.source, location=code.url, source=code.source)
        return code.members


@dataclasses.dataclass
class _Attempt:
    """What one record's listing has learnt so far, kept for its row even when it fails."""

    source: RecordSource
    problems: list[str] = dataclasses.field(default_factory=list)


class ListRepositoryFiles(beam.PTransform):
    """RecordSource -> (record_id, Member) per file, plus tagged `outcomes` and `errors`.

    Zenodo records are fetched first (metadata if missing, then all of the record's files, or else its
    GitHub release: beam_zml.sources.fetch.record_members), through the process's client from `zenodo`.
    A record whose JSON would not fit its records row fails before any download. The files are
    reshuffled so that one big repository's files spread over all workers.
    """

    def __init__(self, limits: Limits, zenodo: ZenodoClients | None = None, exclude_pattern: str | None = None):
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
