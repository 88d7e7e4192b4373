"""ListRepositoryFiles: each record's code fetched if need be and listed, then cut into work items.

What is read where (the heavy bytes never cross a shuffle):

- A local directory or zip (random access, readable by any worker): the listing worker lists it
  (names and sizes only) and cuts the listing into work items of at most `item_bytes` to read;
  the items are spread over the workers, each of which reads its own files from the repository.
- A local tar (a stream: each item would decompress it from its start): read and imaged by the
  listing worker itself, item after item, one file at a time, so its memory stays bounded but
  the record is not spread, and its rows cross the next shuffle (SpreadItems).
- A Zenodo record's code: all of its files (beam_zml.sources.fetch.record_members), downloaded
  into a temporary folder that only the listing worker sees and read there, then imaged by that
  worker as one item. Its readable files are held in memory at once (each at most
  --max-file-bytes), so a Zenodo record is bounded by its files' count, not spread.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from typing import Callable

import apache_beam as beam

from beam_zml.core.errors import error_row
from beam_zml.core.notes import ERROR, OUTCOME
from beam_zml.core.records import RecordSource, metadata_problem
from beam_zml.sources.fetch import NoCode, record_members, scrub_token
from beam_zml.sources.harvest import is_excluded
from beam_zml.sources.local import list_selected
from beam_zml.sources.repository import Listing, Member, RepositoryError, split_entries
from beam_zml.sources.zenodo import ZenodoError
from beam_zml.transforms.counters import CountShuffledBytes, inc
from beam_zml.transforms.image_files import ItemImager, WorkItem
from beam_zml.transforms.zenodo_clients import ZenodoClients

ITEM_BYTES = 16 * 2**20  # bytes to read per work item: small enough to spread, large enough to amortise


class _Excluded(Exception):
    """The record matches --exclude-pattern: it is dropped, not failed."""


class RecordShapeError(Exception):
    """The record's JSON does not fit the records schema (docs/design.md#faults-and-limits): the record fails with the reason."""


class _ListFilesFn(beam.DoFn):
    def __init__(self, imager: ItemImager, zenodo: ZenodoClients | None, exclude_pattern: str | None, item_bytes: int):
        self._imager = imager
        self._zenodo = zenodo
        self._exclude_pattern = exclude_pattern
        self._item_bytes = item_bytes

    def setup(self):
        self._client = self._zenodo.acquire() if self._zenodo is not None else None  # the process's client
        self._excluded = re.compile(self._exclude_pattern) if self._exclude_pattern else None

    def process(self, source: RecordSource):
        attempt = _Attempt(source)
        warnings = []  # (error_type, message) of a repository read whole but not cleanly
        warn = lambda *warning: warnings.append(warning)  # noqa: E731
        try:
            if source.source == "local":
                code: Listing | list[Member] = list_selected(source.location, self._imager.limits, source.selection, warn)
            else:
                code = self._zenodo_members(attempt, warn)
        except _Excluded:
            inc("records_excluded")
            return
        except Exception as error:  # one bad record never stops the run
            known = (RepositoryError, ZenodoError, NoCode, RecordShapeError)
            message = str(error) if isinstance(error, known) else f"{type(error).__name__}: {error}"
            attempts = getattr(error, "attempts", 1) or 1
            source = attempt.source  # with the metadata, if it was fetched
            inc("records_listed")  # read, if only to fail: progress counts it
            yield source.record_id, (OUTCOME, (source, "failed", message))
            yield source.record_id, (
                ERROR,
                error_row("list_files", source.record_id, message, error_type=type(error).__name__, attempts=attempts),
            )
            return
        source = attempt.source
        for problem in attempt.problems:  # sources that failed before one served the code
            yield source.record_id, (ERROR, error_row("fetch", source.record_id, problem, error_type="SourceFailed"))
        for error_type, message in warnings:
            yield source.record_id, (ERROR, error_row("list_files", source.record_id, message, error_type=error_type))
        if isinstance(code, Listing):
            runs = split_entries(code.entries, self._item_bytes, self._imager.limits)
            items = [
                WorkItem(source.record_id, dataclasses.replace(code, entries=run), index, len(runs))
                for index, run in enumerate(runs)
            ]
            if code.kind in ("dir", "zip"):
                yield from items  # read again by the workers that image them
            else:  # a tar: a stream, read once, here
                for item in items:
                    yield from self._imager.notes(item)
        else:
            yield from self._imager.member_notes(source.record_id, code)
        inc("records_listed")
        yield source.record_id, (OUTCOME, (source, "ok", None))

    def _zenodo_members(self, attempt: "_Attempt", warn: Callable[[str, str], None]) -> list[Member]:
        """A Zenodo record's files, fetched into a temporary folder that is removed once read.

        `attempt` learns the metadata and where the code came from.
        """
        source = attempt.source
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
                                  github_base=settings.github_url, limits=self._imager.limits, warn=warn)
        attempt.problems.extend(code.problems)
        attempt.source = dataclasses.replace(attempt.source, location=code.url, source=code.source)
        return code.members


@dataclasses.dataclass
class _Attempt:
    """What one record's listing has learnt so far, kept for its row even when it fails."""

    source: RecordSource
    problems: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ListRepositoryFiles(beam.PTransform):
    """RecordSource -> WorkItems and notes (beam_zml.transforms.image_files): each record's outcome and errors,
    and the notes of the records imaged by the listing worker itself (see the module's docstring).

    Zenodo records are fetched first (metadata if missing, then all of the record's files, or else its
    GitHub release: beam_zml.sources.fetch.record_members), through the process's client from `zenodo`.
    A record whose JSON would not fit its records row fails before any download. The records are
    reshuffled first, so that they spread over the workers.
    """

    imager: ItemImager
    zenodo: ZenodoClients | None = None
    exclude_pattern: str | None = None
    item_bytes: int = ITEM_BYTES

    def expand(self, sources):
        return (
            sources
            | CountShuffledBytes("SpreadRecords")
            | "SpreadRecords" >> beam.Reshuffle()
            | "ListFiles" >> beam.ParDo(_ListFilesFn(self.imager, self.zenodo, self.exclude_pattern, self.item_bytes))
        )
