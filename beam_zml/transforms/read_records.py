"""ReadRecords: the build's records, from local code, a list of ids, a harvested JSON-lines file or a Zenodo search."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import apache_beam as beam
from apache_beam import pvalue

from beam_zml import storage
from beam_zml.core.errors import error_row
from beam_zml.core.names import printable
from beam_zml.core.records import RecordSource, record_id_of
from beam_zml.sources.harvest import SearchQuery, harvest
from beam_zml.sources.zenodo import ZenodoError
from beam_zml.transforms.counters import inc
from beam_zml.transforms.zenodo_clients import ZenodoClients

SOURCE_ERRORS = "errors"  # errors/ rows of a search that failed: the run then ends with status 1
SOURCE_STAGES = ("search",)  # their `stage`


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

    A records file's lines that are no JSON object, or have no usable id, still become records (which fail with
    the reason); a record id listed twice in it becomes one record (counter records_duplicate).
    """

    records: RecordsToRead
    zenodo: ZenodoClients | None = None

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
                | "NotBlank" >> beam.Filter(str.strip)
                | "Parse" >> beam.Map(parse_record_line)
                | "JsonToSource" >> beam.Map(zenodo_source)
                | "KeyById" >> beam.Map(lambda source: (source.record_id, source))
                | "GroupById" >> beam.GroupByKey()
                | "OncePerId" >> beam.Map(_one_per_id)
            )
            read = {"records": parsed, SOURCE_ERRORS: pipeline | "NoErrors" >> beam.Create([])}
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


def _one_per_id(element) -> RecordSource:
    """A records file may list a record twice (merged harvests): one row per record id, the same one on every run."""
    _, sources = element
    sources = sorted(sources, key=lambda source: json.dumps(source.raw, sort_keys=True, default=repr))
    if len(sources) > 1:
        inc("records_duplicate", len(sources) - 1)
    return sources[0]


def _not_done(source: RecordSource, done: frozenset) -> bool:
    return source.record_id not in done
