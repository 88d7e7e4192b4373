"""ListRepositoryFiles: each record's code fetched if need be and listed, then cut into work items.

What is read where (the heavy bytes never cross a shuffle):

- A local directory or zip (random access, readable by any worker): the listing worker lists it
  (names and sizes only) and cuts the listing into work items of at most `item_bytes` to read;
  the items are spread over the workers, each of which reads its own files from the repository.
- A Zenodo record's code (downloaded into a temporary folder that only the listing worker sees)
  and a local tar (a stream: each item would decompress it from its start): read and imaged
  by the listing worker itself, item after item, one file at a time, so its memory stays
  bounded but the record is not spread, and its rows cross the next shuffle (SpreadItems).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import tempfile

import apache_beam as beam

from beam_zml.core.errors import error_row
from beam_zml.core.notes import ERROR, OUTCOME
from beam_zml.core.records import RecordSource
from beam_zml.sources.fetch import NoCode, fetch_code, scrub_token
from beam_zml.sources.harvest import is_excluded
from beam_zml.sources.repository import RepositoryError, list_repository, split_entries
from beam_zml.sources.zenodo import ZenodoClient, ZenodoError, ZenodoSettings
from beam_zml.transforms.counters import CountShuffledBytes, inc
from beam_zml.transforms.image_files import ItemImager, WorkItem

ITEM_BYTES = 16 * 2**20  # bytes to read per work item: small enough to spread, large enough to amortise


class _Excluded(Exception):
    """The record matches --exclude-pattern: it is dropped, not failed."""


class _ListFilesFn(beam.DoFn):
    def __init__(self, imager: ItemImager, zenodo: ZenodoSettings | None, exclude_pattern: str | None, item_bytes: int):
        self._imager = imager
        self._zenodo = zenodo
        self._exclude_pattern = exclude_pattern
        self._item_bytes = item_bytes

    def setup(self):
        self._client = ZenodoClient(self._zenodo) if self._zenodo is not None else None
        self._excluded = re.compile(self._exclude_pattern) if self._exclude_pattern else None

    def teardown(self):
        if self._client is not None:
            self._client.close()

    def process(self, source: RecordSource):
        attempt = _Attempt(source)
        with contextlib.ExitStack() as stack:
            try:
                location = stack.enter_context(self._code(attempt))
                listing = list_repository(location, self._imager.limits)
            except _Excluded:
                inc("records_excluded")
                return
            except Exception as error:  # one bad record never stops the run
                message = str(error) if isinstance(error, (RepositoryError, ZenodoError, NoCode)) else f"{type(error).__name__}: {error}"
                attempts = getattr(error, "attempts", 1) or 1
                source = attempt.source  # with the metadata, if it was fetched
                yield source.record_id, (OUTCOME, (source, "failed", message))
                yield source.record_id, (
                    ERROR,
                    error_row("list_files", source.record_id, message, error_type=type(error).__name__, attempts=attempts),
                )
                return
            source = attempt.source
            for problem in attempt.problems:  # sources that failed before one served the code
                yield source.record_id, (ERROR, error_row("fetch", source.record_id, problem, error_type="SourceFailed"))
            runs = split_entries(listing.entries, self._item_bytes, self._imager.limits)
            items = [
                WorkItem(source.record_id, dataclasses.replace(listing, entries=run), index, len(runs))
                for index, run in enumerate(runs)
            ]
            if source.source == "local" and listing.kind in ("dir", "zip"):
                yield from items  # read again by the workers that image them
            else:  # the code is here only (or cannot be read in parts): image it here, in this temporary folder
                for item in items:
                    yield from self._imager.notes(item)
        inc("records_listed")
        yield source.record_id, (OUTCOME, (source, "ok", None))

    @contextlib.contextmanager
    def _code(self, attempt: _Attempt):
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


@dataclasses.dataclass
class ListRepositoryFiles(beam.PTransform):
    """RecordSource -> WorkItems and notes (beam_zml.transforms.image_files): each record's outcome and errors,
    and the notes of the records imaged by the listing worker itself (see the module's docstring).

    Zenodo records are fetched first (metadata if missing, then the code, into a temporary
    folder removed once read). The records are reshuffled first, so that they spread over the workers.
    """

    imager: ItemImager
    zenodo: ZenodoSettings | None = None
    exclude_pattern: str | None = None
    item_bytes: int = ITEM_BYTES

    def expand(self, sources):
        return (
            sources
            | CountShuffledBytes("SpreadRecords")
            | "SpreadRecords" >> beam.Reshuffle()
            | "ListFiles" >> beam.ParDo(_ListFilesFn(self.imager, self.zenodo, self.exclude_pattern, self.item_bytes))
        )
