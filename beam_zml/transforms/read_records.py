"""ReadRecords: the build's records, from local code, a list of ids, a harvested JSON-lines file or a Zenodo search."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import apache_beam as beam

from beam_zml.core.records import RecordSource, record_id_of
from beam_zml.sources.harvest import SearchQuery, harvest
from beam_zml.transforms.counters import inc
from beam_zml.transforms.zenodo_clients import ZenodoClients


def zenodo_source(record: int | dict) -> RecordSource:
    """A record to fetch: an id (its metadata is fetched later) or the record's JSON.

    A JSON without a usable id still becomes a record (so that it is counted and fails with the reason):
    its id is a stable positive number made from its JSON text.
    """
    if isinstance(record, dict):
        record_id = record_id_of(record)
        if record_id is None:
            digest = hashlib.sha1(json.dumps(record, sort_keys=True, default=repr).encode("utf-8")).digest()
            record_id = int.from_bytes(digest[:7], "big")
        return RecordSource(record_id, "", None, raw=record)
    return RecordSource(int(record), "", None)


def parse_record_line(line: str) -> dict:
    """One line of a records JSON-lines file; a line that is not a JSON object is kept as the value of
    "unparsed", so that its record fails with the reason instead of stopping the run."""
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    return record if isinstance(record, dict) else {"unparsed": line[:10_000]}


class _HarvestFn(beam.DoFn):
    """The whole search, in one place: it is sequential anyway, paced at the search limit."""

    def __init__(self, clients: ZenodoClients, max_records: int | None, cap: int):
        self._clients = clients
        self._max_records = max_records
        self._cap = cap

    def setup(self):
        self._client = self._clients.acquire()  # the process's client, shared with the other stages

    def process(self, query: SearchQuery):
        for record in harvest(
            self._client.search, query, page_size=self._client.page_size, max_records=self._max_records, cap=self._cap
        ):
            inc("records_harvested")
            yield zenodo_source(record)


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
    """The pipeline's start -> a RecordSource per record to build, from `records`; `zenodo` is needed for a search.

    A records file's lines that are no JSON object, or have no usable id, still become records (which fail with
    the reason); a record id listed twice in it becomes one record (counter records_duplicate).
    """

    records: RecordsToRead
    zenodo: ZenodoClients | None = None

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
                | "Parse" >> beam.Map(parse_record_line)
                | "JsonToSource" >> beam.Map(zenodo_source)
                | "KeyById" >> beam.Map(lambda source: (source.record_id, source))
                | "GroupById" >> beam.GroupByKey()
                | "OncePerId" >> beam.Map(_one_per_id)
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


def _one_per_id(element) -> RecordSource:
    """A records file may list a record twice (merged harvests): one row per record id, the same one on every run."""
    _, sources = element
    sources = sorted(sources, key=lambda source: json.dumps(source.raw, sort_keys=True, default=repr))
    if len(sources) > 1:
        inc("records_duplicate", len(sources) - 1)
    return sources[0]


def _not_done(source: RecordSource, done: frozenset) -> bool:
    return source.record_id not in done
