"""ReadRecords: the build's records, from local code, a list of ids, a harvested JSON-lines file or a Zenodo search."""

from __future__ import annotations

import json
from dataclasses import dataclass

import apache_beam as beam

from beam_zml import storage
from beam_zml.core.records import RecordSource
from beam_zml.sources.harvest import SearchQuery, harvest
from beam_zml.sources.zenodo import ZenodoClient, ZenodoSettings
from beam_zml.transforms.counters import inc


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
        for record in harvest(
            self._client.search, query, page_size=self._client.page_size, max_records=self._max_records, cap=self._cap
        ):
            inc("records_harvested")
            yield zenodo_source(record)

    def teardown(self):
        self._client.close()


@dataclass(frozen=True)
class RecordsToRead:
    """Where a build's records come from: exactly one of `local`, `ids`, `records_jsonl` or `search` is set.

    `local` are local sources (beam_zml.core.records.local_sources); `ids` Zenodo record ids; `records_jsonl`
    the path or URL of `zml harvest`'s output; `search` a Zenodo search, with `max_records` and the search API's
    hit `cap`. `done` holds the record ids a resumed dataset has already, which are not read again.
    """

    local: tuple[RecordSource, ...] = ()
    ids: tuple[int, ...] = ()
    records_jsonl: str | None = None
    search: SearchQuery | None = None
    max_records: int | None = None
    cap: int = 10_000
    done: frozenset = frozenset()

    def expected_records(self) -> int:
        """About how many records the build reads (to size the records/ sink before it runs): exact for
        `local`, `ids` and `records_jsonl` (its lines are counted), `max_records` or the hit cap for a search."""
        if self.local:
            return len(self.local)
        if self.ids:
            return len(self.ids)
        if self.records_jsonl:
            with storage.open_read(self.records_jsonl) as handle:
                return sum(1 for line in handle if line.strip())
        return self.max_records or self.cap

    def description(self) -> dict:
        """What dataset.json records of the sources."""
        if self.local:
            return {"local": [source.location for source in self.local]}
        if self.ids:
            return {"ids": len(self.ids)}
        if self.records_jsonl:
            return {"records_jsonl": self.records_jsonl}
        return {"search": {k: str(v) for k, v in self.search.__dict__.items() if v not in (None, False)}}


@dataclass
class ReadRecords(beam.PTransform):
    """The pipeline's start -> a RecordSource per record to build, from `records`; `zenodo` is needed for a search."""

    records: RecordsToRead
    zenodo: ZenodoSettings | None = None

    def expand(self, pipeline):
        records = self.records
        if records.local:
            sources = pipeline | "Local" >> beam.Create(list(records.local))
        elif records.ids:
            sources = pipeline | "Ids" >> beam.Create(list(records.ids)) | "IdToSource" >> beam.Map(zenodo_source)
        elif records.records_jsonl:
            sources = (
                pipeline
                | "ReadLines" >> beam.io.ReadFromText(records.records_jsonl)
                | "Parse" >> beam.Map(json.loads)
                | "JsonToSource" >> beam.Map(zenodo_source)
            )
        else:
            sources = (
                pipeline
                | "Query" >> beam.Create([records.search])
                | "Search" >> beam.ParDo(_HarvestFn(self.zenodo, records.max_records, records.cap))
            )
        if records.done:
            sources = sources | "SkipRecordsDone" >> beam.Filter(_not_done, records.done)
        return sources


def _not_done(source: RecordSource, done: frozenset) -> bool:
    return source.record_id not in done
