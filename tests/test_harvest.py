"""The harvest (sources/harvest.py) against a fake search function, and the export's filters (sources/export.py):
plain pytest, no server, no Beam."""

from __future__ import annotations

import collections
import datetime as dt
import re

from beam_zml.sources.export import select_records
from beam_zml.sources.harvest import SearchQuery, harvest

START = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
RANGE = re.compile(r"created:\[(\S+) TO (\S+)\}")


class FakeSearch:
    """Zenodo's search over `records`: created-range queries, pages, and a deep-paging cap that answers 400."""

    def __init__(self, records: list[dict], cap: int):
        self.records = records
        self.cap = cap
        self.calls: list[dict] = []

    def __call__(self, params: dict) -> dict:
        self.calls.append(params)
        low, high = (dt.datetime.fromisoformat(t).replace(tzinfo=dt.timezone.utc) for t in RANGE.search(params["q"]).groups())
        hits = sorted((r for r in self.records if low <= r["created"] < high), key=lambda r: r["created"])
        page, size = params["page"], params["size"]
        assert (page - 1) * size < self.cap, "a request past the deep-paging cap"
        return {"hits": {"hits": hits[(page - 1) * size: page * size], "total": len(hits)}}


def records(n: int) -> list[dict]:
    return [{"id": i, "created": START + dt.timedelta(hours=5 * i), "metadata": {"title": f"org/r{i}: v1"}} for i in range(n)]


def test_slicing_reaches_every_record_once_past_the_cap():
    search = FakeSearch(records(250), cap=40)
    totals = []
    found = list(harvest(search, SearchQuery(since=START), page_size=10, cap=40, now=START + dt.timedelta(days=60),
                         on_total=totals.append))
    assert sorted(r["id"] for r in found) == list(range(250)) and totals == [250]
    assert [r["created"] for r in found] == sorted(r["created"] for r in found), "oldest first"
    assert all(call["sort"] == "oldest" and call["type"] == "software" for call in search.calls)


def test_exclusion_and_max_records():
    search = FakeSearch(records(30) + [{"id": 99, "created": START, "metadata": {"title": "gcube/core: v1"}}], cap=100)
    found = list(harvest(search, SearchQuery(since=START, exclude_pattern="gcube"), page_size=10,
                         max_records=12, now=START + dt.timedelta(days=30)))
    assert len(found) == 12 and 99 not in {r["id"] for r in found}


def test_export_filters_keep_the_latest_version_even_without_flags():
    flagged = [{"id": str(i), "parent": {"id": "c1"}, "versions": {"index": i, "is_latest": i == 3},
                "created": "2021-01-01T00:00:00+00:00", "metadata": {"resource_type": {"id": "software"}, "title": "a"}} for i in (1, 2, 3)]
    unflagged = [{"id": str(i), "parent": {"id": "c2"}, "versions": {"index": i - 10},
                  "created": "2021-01-01T00:00:00+00:00", "metadata": {"resource_type": {"id": "software"}, "title": "b"}} for i in (12, 11)]
    dataset = [{"id": "20", "created": "2021-01-01T00:00:00+00:00", "metadata": {"resource_type": {"id": "dataset"}}}]
    counts = collections.Counter()
    chosen = [r["id"] for r in select_records(iter(flagged + unflagged + dataset + flagged[:1]), SearchQuery(), counts=counts)]
    assert chosen == ["3", "12"]
    assert counts == {"skipped:not_latest": 4, "skipped:type": 1}
    every = [r["id"] for r in select_records(iter(flagged + flagged), SearchQuery(all_versions=True))]
    assert every == ["1", "2", "3"], "each id once"
