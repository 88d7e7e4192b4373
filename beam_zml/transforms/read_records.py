"""Where record ids come from: a Zenodo search, a list of ids, or a harvested JSON-lines file."""

from __future__ import annotations

import json

import apache_beam as beam
from apache_beam import pvalue

from beam_zml.core.errors import error_row
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


class HarvestRecords(beam.PTransform):
    """A SearchQuery -> {"records": a RecordSource per record found, "errors": an errors/ row if the search failed}."""

    def __init__(self, query: SearchQuery, settings: ZenodoSettings, max_records: int | None, cap: int):
        super().__init__()
        self._query = query
        self._settings = settings
        self._max_records = max_records
        self._cap = cap

    def expand(self, pipeline):
        found = (
            pipeline
            | "Query" >> beam.Create([self._query])
            | "Search"
            >> beam.ParDo(_HarvestFn(self._settings, self._max_records, self._cap)).with_outputs(SOURCE_ERRORS, main="records")
        )
        return {"records": found.records, SOURCE_ERRORS: found[SOURCE_ERRORS]}


class ReadRecordIds(beam.PTransform):
    """Ids -> a RecordSource each, whose metadata is fetched with its code."""

    def __init__(self, ids: list[int]):
        super().__init__()
        self._ids = ids

    def expand(self, pipeline):
        return pipeline | "Ids" >> beam.Create(self._ids) | "ToSource" >> beam.Map(zenodo_source)


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


class ReadRecordsJsonl(beam.PTransform):
    """The output of `zml harvest` (one record JSON a line) -> {"records": a RecordSource each, "errors": a row per bad line}."""

    def __init__(self, path: str):
        super().__init__()
        self._path = path

    def expand(self, pipeline):
        parsed = (
            pipeline
            | "ReadLines" >> beam.io.ReadFromText(self._path)
            | "Parse" >> beam.ParDo(_ParseRecordFn()).with_outputs(SOURCE_ERRORS, main="records")
        )
        return {"records": parsed.records, SOURCE_ERRORS: parsed[SOURCE_ERRORS]}


def _not_done(source: RecordSource, done: frozenset) -> bool:
    return source.record_id not in done


class SkipRecordsDone(beam.PTransform):
    """Drops the records that a resumed dataset already holds."""

    def __init__(self, done: frozenset):
        super().__init__()
        self._done = done

    def expand(self, sources):
        return sources | "NotDone" >> beam.Filter(_not_done, self._done)
