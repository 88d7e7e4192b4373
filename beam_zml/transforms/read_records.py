"""ReadRecords: the build's records, from local code, a list of ids, a harvested JSON-lines file or a Zenodo search."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import apache_beam as beam
from apache_beam import pvalue

from beam_zml.core.errors import error_row
from beam_zml.core.names import printable
from beam_zml.core.records import RecordSource
from beam_zml.sources.harvest import SearchQuery, harvest
from beam_zml.sources.zenodo import ZenodoClient, ZenodoError, ZenodoSettings
from beam_zml.transforms.counters import inc

SOURCE_ERRORS = "errors"  # errors/ rows of records that could not be read: the run then ends with status 1
SOURCE_STAGES = ("search", "read_records")  # their `stage`


def zenodo_source(record: int | dict) -> RecordSource:
    """A record to fetch: an id (its metadata is fetched later) or the record's JSON."""
    if isinstance(record, dict):
        title = (record.get("metadata") or {}).get("title") or record.get("title")
        return RecordSource(int(record["id"]), "", None, title=title, raw=record)
    return RecordSource(int(record), "", None)


class _HarvestFn(beam.DoFn):
    """The whole search, in one place: it is sequential anyway, paced at the search limit."""

    def __init__(self, settings: ZenodoSettings, max_records: int | None, cap: int):
        self._settings = settings
        self._max_records = max_records
        self._cap = cap

    def setup(self):
        self._client = ZenodoClient(self._settings)

    def process(self, query: SearchQuery):
        found = 0
        try:
            for record in harvest(
                self._client.search, query, page_size=self._client.page_size, max_records=self._max_records, cap=self._cap
            ):
                inc("records_harvested")
                found += 1
                yield zenodo_source(record)
        except ZenodoError as error:  # the records found so far are still built; the run ends with this error
            inc("search_failed")
            message = f"the search failed after {found:,} records: {error}"
            yield pvalue.TaggedOutput(
                SOURCE_ERRORS, error_row("search", None, message, error_type=type(error).__name__, attempts=error.attempts)
            )

    def teardown(self):
        self._client.close()


@dataclass(frozen=True)
class RecordsToRead:
    """Where a build's records come from: exactly one of `local`, `ids`, `records_jsonl` or `search` is set.

    `local` are local sources (beam_zml.core.records / beam_zml.sources.local), with `local_description` saying
    how they were chosen; `ids` Zenodo record ids; `records_jsonl` the path or URL of `zml harvest`'s output;
    `search` a Zenodo search, with `max_records` and the search API's hit `cap`. `done` holds the record ids a
    resumed dataset has already, which are not read again.
    """

    local: tuple[RecordSource, ...] = ()
    local_description: dict = field(default_factory=dict)
    ids: tuple[int, ...] = ()
    records_jsonl: str | None = None
    search: SearchQuery | None = None
    max_records: int | None = None
    cap: int = 10_000
    done: frozenset = frozenset()

    def total(self) -> int | None:
        """How many records this run builds, where that is known before it starts (local code, ids)."""
        if self.local:
            return sum(source.record_id not in self.done for source in self.local)
        if self.ids:
            return sum(record_id not in self.done for record_id in self.ids)
        return None

    def description(self) -> dict:
        """What dataset.json records of the sources."""
        if self.local:
            return self.local_description or {"local": [printable(source.location) for source in self.local]}
        if self.ids:
            return {"ids": len(self.ids)}
        if self.records_jsonl:
            return {"records_jsonl": self.records_jsonl}
        return {"search": {k: str(v) for k, v in self.search.__dict__.items() if v not in (None, False)}}


@dataclass
class ReadRecords(beam.PTransform):
    """The pipeline's start -> {"records": a RecordSource per record to build, "errors": errors/ rows of the
    records that could not be read (a search that failed, a line of --records-jsonl that is no record)}.

    `zenodo` is needed for a search.
    """

    records: RecordsToRead
    zenodo: ZenodoSettings | None = None

    def expand(self, pipeline):
        records = self.records
        if records.local or records.ids:
            sources = pipeline | "Records" >> beam.Create(list(records.local or records.ids))
            if records.ids:
                sources = sources | "IdToSource" >> beam.Map(zenodo_source)
            read = {"records": sources, SOURCE_ERRORS: pipeline | "NoErrors" >> beam.Create([])}
        elif records.records_jsonl:
            parsed = (
                pipeline
                | "ReadLines" >> beam.io.ReadFromText(records.records_jsonl)
                | "Parse" >> beam.ParDo(_ParseRecordFn()).with_outputs(SOURCE_ERRORS, main="records")
            )
            read = {"records": parsed.records, SOURCE_ERRORS: parsed[SOURCE_ERRORS]}
        else:
            found = (
                pipeline
                | "Query" >> beam.Create([records.search])
                | "Search"
                >> beam.ParDo(_HarvestFn(self.zenodo, records.max_records, records.cap)).with_outputs(
                    SOURCE_ERRORS, main="records"
                )
            )
            read = {"records": found.records, SOURCE_ERRORS: found[SOURCE_ERRORS]}
        if records.done:
            read["records"] = read["records"] | "SkipRecordsDone" >> beam.Filter(_not_done, records.done)
        return read


class _ParseRecordFn(beam.DoFn):
    """A line of JSON -> a RecordSource, or an errors/ row when it is no record; blank lines are nothing."""

    def process(self, line: str):
        if not line.strip():
            return
        try:
            yield zenodo_source(json.loads(line))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            inc("records_unreadable")
            message = f"not a Zenodo record ({type(error).__name__}: {error}): {line[:100]!r}"
            yield pvalue.TaggedOutput(SOURCE_ERRORS, error_row("read_records", None, message, error_type=type(error).__name__))


def _not_done(source: RecordSource, done: frozenset) -> bool:
    return source.record_id not in done
