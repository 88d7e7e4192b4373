"""List Zenodo records past the search API's 10,000-result cap, by slicing the query into date ranges.

The search API refuses any page beyond the first 10,000 hits of a query, so a
query is run over ranges of `created`, oldest first; a range whose hit count is
over the cap is cut in two until each part fits (ZENODO.md). The ranges are
half-open, so no record falls into two of them, and ids seen are remembered, so
a record that moves between pages while we read is still listed once.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Callable, Iterator

from beam_zml.core.records import zenodo_metadata

EARLIEST = dt.datetime(2013, 1, 1, tzinfo=dt.timezone.utc)  # before Zenodo's first record
SEARCH_CAP = 10_000


@dataclass(frozen=True)
class SearchQuery:
    """What to harvest: the user's query and filters (README.md#records-from-zenodo)."""

    query: str | None = None
    type: str | None = "software"
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    all_versions: bool = False
    exclude_pattern: str | None = None


def harvest(
    search: Callable[[dict], dict],
    query: SearchQuery,
    *,
    page_size: int,
    max_records: int | None = None,
    cap: int = SEARCH_CAP,
    now: dt.datetime | None = None,
    on_total: Callable[[int], None] | None = None,
) -> Iterator[dict]:
    """Every record matching `query`, each once, oldest first; `search(params)` returns one result page.

    `on_total` is told the number of hits once it is known (for a progress bar).
    """
    start = (query.since or EARLIEST).replace(microsecond=0)
    end = (query.until or (now or dt.datetime.now(dt.timezone.utc)) + dt.timedelta(days=1)).replace(microsecond=0)
    excluded = re.compile(query.exclude_pattern) if query.exclude_pattern else None
    seen: set[int] = set()
    first = search(_params(query, start, end, page=1, size=page_size))
    if on_total is not None:
        on_total(first["hits"]["total"])
    for hit in _slice(search, query, start, end, first, page_size, cap):
        if hit["id"] in seen or (excluded is not None and is_excluded(hit, excluded)):
            continue
        seen.add(hit["id"])
        yield hit
        if max_records is not None and len(seen) >= max_records:
            return


def is_excluded(record: dict, pattern: re.Pattern) -> bool:
    """zenodo-ml dropped records whose title or repository URL matches (it dropped "gcube")."""
    meta = zenodo_metadata(record)[0]  # either JSON shape; a field of the wrong type counts as absent
    return any(pattern.search(text) for text in (meta.get("title"), meta.get("github_url")) if text)


def _slice(search, query, start, end, first_page, page_size, cap) -> Iterator[dict]:
    """Hits of [start, end), cutting the range in two while it holds more than `cap` hits.

    Bounds are whole seconds; a one-second range over the cap can only give its first `cap` hits.
    """
    pending = [(start, end, first_page)]
    while pending:
        low, high, page = pending.pop()
        if page is None:
            page = search(_params(query, low, high, page=1, size=page_size))
        total = page["hits"]["total"]
        middle = low + dt.timedelta(seconds=(high - low).total_seconds() // 2)
        if total > cap and low < middle < high:
            pending += [(middle, high, None), (low, middle, None)]  # popped oldest first
            continue
        yield from _pages(search, query, low, high, page, page_size, min(total, cap))


def _pages(search, query, low, high, first_page, page_size, total) -> Iterator[dict]:
    """All pages of one range. Pages are counted from the hit total, not from links.next,
    which Zenodo computes from the true total and so points past the cap."""
    yield from first_page["hits"]["hits"]
    for page in range(2, math.ceil(total / page_size) + 1):
        yield from search(_params(query, low, high, page=page, size=page_size))["hits"]["hits"]


def _params(query: SearchQuery, low: dt.datetime, high: dt.datetime, *, page: int, size: int) -> dict:
    created = f"created:[{_iso(low)} TO {_iso(high)}}}"
    params = {
        "q": f"({query.query}) AND {created}" if query.query else created,
        "sort": "oldest",
        "page": page,
        "size": size,
    }
    if query.type:
        params["type"] = query.type
    if query.all_versions:
        params["all_versions"] = "true"
    return params


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
