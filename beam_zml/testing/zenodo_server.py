"""A real HTTP server on loopback that speaks Zenodo's API (https://developers.zenodo.org) and GitHub's archive endpoint.

Tests talk to it over real sockets instead of mocking `requests`, so the client's retries, pacing, streaming
and redirects meet the same bytes they would meet in production. Everything a test needs to set up is an
attribute or a method:

    with ZenodoServer() as server:
        server.add_record({"id": 2, "conceptrecid": "1", "title": "x"}, {"owner/repo-v1.zip": data})
        server.add_github_archive("owner", "repo", "v1", data)
        server.limits = {"search": 30, "other": 60}   # requests per `server.window` seconds
        server.window = 1.0                           # scale the window: 60 a second is 3600/min
        server.max_results = 50                       # the deep-paging cap (Zenodo: 10,000)
        server.inject("/api/records/2", "503", times=2)
        ...
        server.log                                    # every request, in order
        server.injected_429s, server.earned_429s

What it imitates of the real service besides the endpoints: `X-RateLimit-*` and `Retry-After` headers on every
API answer, JSON sent chunked without Content-Length, file links with Zenodo's escaping (`()` kept as they are),
GitHub's archive link redirecting to another host (codeload; here `localhost` instead of `127.0.0.1`), records
with every link Zenodo gives, restricted records (`files: []`, `access_right: restricted`), file entries in the
shapes of saved data (`file_style`: "pre-2023" /api/files/<bucket>/<key> links that now answer 404, "migration"
`filename`/`filesize`, a bare hex checksum and a dead `links.self` next to a working `links.download`), and
InvenioRDM's JSON shape for `Accept: application/vnd.inveniordm.v1+json` (records are stored in the legacy shape
and converted by `to_inveniordm`).

Faults (`inject`): "429" (Retry-After: seconds), "429-reset" (only X-RateLimit-Reset, seconds from now),
"500", "503", "html" (an HTML error page with `status`, 502 by default), "drop" (close without a response),
"truncate" (Content-Length promises more than is sent), "slow" (sleep seconds, then answer), "wrong-bytes"
(the right length, the wrong content), "410" (a deleted record), "404".
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import math
import re
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

TOKEN = "zenodo-test-token"  # the server's one valid personal access token, unless a test passes others
FAULTS = {"429", "429-reset", "500", "503", "html", "drop", "truncate", "slow", "wrong-bytes", "410", "404"}
SORTS = {  # Zenodo's sort values: the field they order by and whether descending; None keeps id order
    "bestmatch": None,
    "newest": ("created", True),
    "oldest": ("created", False),
    "mostrecent": ("created", True),
    "-mostrecent": ("created", False),
    "updated-desc": ("updated", True),
    "updated-asc": ("updated", False),
    "publication-desc": ("metadata.publication_date", True),
    "publication-asc": ("metadata.publication_date", False),
    "version": None,
    "mostviewed": None,
    "mostdownloaded": None,
}
FIELD_ALIASES = {"type": "metadata.resource_type.type", "resource_type.type": "metadata.resource_type.type"}
RANGE = re.compile(r"^([\w.]+):([\[{])\s*(\S+)\s+TO\s+(\S+)\s*([\]}])$")
FIELD_TERM = re.compile(r'^([\w.]+):"?([^"]*)"?$')
INVENIORDM = "application/vnd.inveniordm.v1+json"
LINK_SAFE = "/()"  # Zenodo leaves these unescaped in its file links
HTML_PAGE = "<html><head><title>{0} {1}</title></head><body><center><h1>{0} {1}</h1></center><hr><center>nginx</center></body></html>"
REASONS = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 500: "Internal Server Error"}


@dataclass
class LoggedRequest:
    """One request as the server saw it: `target` is the raw request line's URL, exactly as sent."""

    method: str
    target: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    time: float  # time.monotonic() when it arrived, for pacing assertions
    status: int | None = None  # None when the connection was dropped without an answer
    shape: str = "legacy"  # the JSON shape the request asked for


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    matches: Callable[[str], bool]
    kind: str
    times: int
    seconds: float
    status: int


def json_reply(status: int, payload: dict, headers: dict | None = None) -> Reply:
    return Reply(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})


def parse_time(text: str) -> datetime:
    """An ISO date or datetime as an aware UTC datetime (Zenodo's `created` carries +00:00)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def lookup(record: dict, name: str):
    """A field by its (legacy) dotted name, at the top level or under `metadata`."""
    name = FIELD_ALIASES.get(name, name)
    for root in (record, record.get("metadata", {})):
        value = root
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            return value
    return None


def in_range(value, low: str, high: str, low_inclusive: bool, high_inclusive: bool) -> bool:
    """Elasticsearch's `[A TO B}` on dates; a date-only inclusive upper bound takes in that whole day."""
    if value is None:
        return False
    moment = parse_time(str(value))
    if low != "*":
        start = parse_time(low)
        if moment < start or (moment == start and not low_inclusive):
            return False
    if high != "*":
        end = parse_time(high)
        if high_inclusive and "T" not in high:
            return moment < end + timedelta(days=1)
        if moment > end or (moment == end and not high_inclusive):
            return False
    return True


def matches_query(record: dict, q: str) -> bool:
    """Terms joined by AND: `field:[A TO B}` ranges, `field:value`, or free text found in the title."""
    for term in (t.strip().removeprefix("(").removesuffix(")") for t in re.split(r"\s+AND\s+", q)):
        if not term:
            continue
        if found := RANGE.match(term):
            name, opening, low, high, closing = found.groups()
            if not in_range(lookup(record, name), low, high, opening == "[", closing == "]"):
                return False
        elif found := FIELD_TERM.match(term):
            name, value = found.groups()
            if str(lookup(record, name)).lower() != value.lower():
                return False
        elif term.strip('"').lower() not in str(lookup(record, "title") or "").lower():
            return False
    return True


class ZenodoServer:
    """Zenodo and GitHub on 127.0.0.1, on a free port, for as long as the `with` block lasts."""

    def __init__(self, tokens: tuple[str, ...] = (TOKEN,)):
        self.tokens = set(tokens)
        self.limits: dict[str, int] | None = {"search": 30, "other": 60}  # Zenodo's documented guest limits
        self.window = 60.0
        self.max_results = 10_000
        self.records: dict[int, dict] = {}
        self.files: dict[tuple[int, str], bytes] = {}
        self.deleted: dict[int, dict] = {}  # record id -> tombstone
        self.hidden: set[int] = set()
        self.archives: dict[tuple[str, str, str], bytes] = {}
        self.exports: dict[str, bytes] = {}  # /api/exporter/<name>: the monthly dumps, e.g. records-json.tar.gz
        self.log: list[LoggedRequest] = []
        self.injected_429s = 0
        self.earned_429s = 0
        self._faults: list[Fault] = []
        self._hits: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()
        self._http = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._http.app = self
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> ZenodoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()

    # --- what tests set up -----------------------------------------------------------------------------------

    def add_record(self, record: dict, files: dict[str, bytes] | None = None, *, file_style: str = "current",
                   restricted: bool = False) -> dict:
        """Store a legacy-JSON record; `files` (key -> bytes) become its `files` list with md5s and links.

        `file_style`: "current" (links.self = the content link), "pre-2023" (/api/files/<bucket>/<key>, which
        answers 404 now) or "migration" (filename/filesize, bare hex checksum, dead links.self, working
        links.download). `restricted`: the files are kept but not listed (`files: []`), as Zenodo shows them.
        """
        record = json.loads(json.dumps(record))
        record_id = int(record["id"])
        record.setdefault("recid", str(record_id))
        record.setdefault("created", datetime.now(timezone.utc).isoformat())
        record.setdefault("updated", record["created"])
        record.setdefault("metadata", {})
        record["links"] = {**self._record_links(record), **record.get("links", {})}
        if restricted:
            record["metadata"]["access_right"] = "restricted"
        if files is not None:
            self.files.update({(record_id, key): data for key, data in files.items()})
            if not restricted:
                record["files"] = [self._file_entry(record_id, key, data, file_style) for key, data in files.items()]
        record.setdefault("files", [])
        self.records[record_id] = record
        return record

    def add_github_archive(self, owner: str, repo: str, tag: str, data: bytes) -> None:
        self.archives[(owner, repo, tag)] = data

    def delete_record(self, record_id: int, tombstone: dict | None = None) -> None:
        self.deleted[record_id] = tombstone or {"removal_reason": {"id": "spam"}, "note": "", "is_visible": True}

    def hide_record(self, record_id: int) -> None:
        self.hidden.add(record_id)

    def inject(self, path: str | Callable[[str], bool], fault: str, times: int = 1, *, seconds: float = 1.0, status: int = 502) -> None:
        """Answer the next `times` requests to `path` (exact, or a predicate on the decoded path) with `fault`."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {sorted(FAULTS)}")
        matches = path if callable(path) else path.__eq__
        with self._lock:
            self._faults.append(Fault(matches, fault, times, seconds, status))

    def requests_to(self, path: str) -> list[LoggedRequest]:
        return [entry for entry in self.log if entry.path == path]

    def file_url(self, record_id: int, key: str) -> str:
        return f"{self.url}/api/records/{record_id}/files/{quote(key, safe=LINK_SAFE)}/content"

    # --- serving -----------------------------------------------------------------------------------------------

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        """Log the request, apply the rate limit, then any injected fault, then route it."""
        target = urlsplit(handler.path)
        path = unquote(target.path)
        entry = LoggedRequest(handler.command, handler.path, path, parse_qs(target.query, keep_blank_values=True),
                              dict(handler.headers.items()), time.monotonic())
        with self._lock:
            self.log.append(entry)
        bucket = ("search" if path == "/api/records" else "other") if path.startswith("/api/") else None
        admitted, limit_headers = self._admit(bucket)
        entry.shape = INVENIORDM if INVENIORDM in entry.headers.get("Accept", "") else "legacy"
        fault = self._take_fault(path) if admitted else None
        if not admitted:
            reply = json_reply(429, {"status": 429, "message": "Too many requests."})
        elif fault and fault.kind == "drop":
            handler.close_connection = True
            return
        else:
            if fault and fault.kind == "slow":
                time.sleep(fault.seconds)
            reply = self._faulty_reply(fault, path, entry) if fault else self._route(path, entry)
        reply.headers = {**limit_headers, **reply.headers}
        if fault and fault.kind == "429-reset":  # the fault is a 429 that says when only by X-RateLimit-Reset
            reply.headers.pop("Retry-After", None)
        entry.status = reply.status
        if reply.status == 429:
            with self._lock:
                if admitted:
                    self.injected_429s += 1
                else:
                    self.earned_429s += 1
        _send(handler, reply, truncate=fault is not None and fault.kind == "truncate")

    def _admit(self, bucket: str | None) -> tuple[bool, dict[str, str]]:
        """A moving window per bucket, as Zenodo counts: admitted or not, and the X-RateLimit headers."""
        limit = (self.limits or {}).get(bucket) if bucket else None
        if limit is None:
            return True, {}
        with self._lock:
            now = time.time()
            hits = self._hits[bucket]
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            admitted = len(hits) < limit
            if admitted:
                hits.append(now)
            reset = hits[0] + self.window if hits else now
        # Zenodo sends all four on every answer; Retry-After is the seconds until the window resets.
        return admitted, {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(limit - len(hits)),
                          "X-RateLimit-Reset": str(math.ceil(reset)), "Retry-After": str(max(1, math.ceil(reset - now)))}

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.matches(path):
                    fault.times -= 1
                    return fault
        return None

    def _faulty_reply(self, fault: Fault, path: str, entry: LoggedRequest) -> Reply:
        """The reply a fault stands for; after "slow" (already slept), "truncate" and "wrong-bytes" the real one, spoilt."""
        kind = fault.kind
        if kind == "429":
            return json_reply(429, {"status": 429, "message": "Too many requests."}, {"Retry-After": f"{fault.seconds:g}"})
        if kind == "429-reset":
            reset = str(math.ceil(time.time() + fault.seconds))
            return json_reply(429, {"status": 429, "message": "Too many requests."},
                              {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
        if kind in ("500", "503"):
            return json_reply(int(kind), {"status": int(kind), "message": "Internal server error."})
        if kind == "html":
            page = HTML_PAGE.format(fault.status, REASONS.get(fault.status, "Error"))
            return Reply(fault.status, page.encode(), {"Content-Type": "text/html"})
        if kind == "410":
            return json_reply(410, {"status": 410, "message": "Record deleted", "tombstone": {"removal_reason": {"id": "spam"}}})
        if kind == "404":
            return json_reply(404, {"status": 404, "message": "The persistent identifier does not exist."})
        reply = self._route(path, entry)
        if kind == "wrong-bytes":
            reply.body = bytes(byte ^ 0xFF for byte in reply.body)
        return reply

    def _route(self, path: str, entry: LoggedRequest) -> Reply:
        authenticated = entry.headers.get("Authorization", "").removeprefix("Bearer ") in self.tokens
        if path == "/api/records":
            return self._search(entry.query, authenticated, entry.shape)
        if found := re.fullmatch(r"/api/records/([^/]+)", path):
            return self._record(found.group(1), entry.shape)
        if found := re.fullmatch(r"/api/records/([^/]+)/files/(.+)/content", path):
            return self._file(found.group(1), found.group(2))
        if found := re.fullmatch(r"/api/exporter/(.+)", path):
            data = self.exports.get(found.group(1))
            return Reply(200, data, {"Content-Type": "application/octet-stream"}) if data is not None else json_reply(404, {"status": 404})
        if found := re.fullmatch(r"/records/([^/]+)/files/(.+)", path):  # links.download: ?download=1
            return self._file(found.group(1), found.group(2))
        if found := re.fullmatch(r"/([^/]+)/([^/]+)/archive/refs/tags/(.+)\.zip", path):
            owner, repo, tag = found.groups()
            codeload = self.url.replace("127.0.0.1", "localhost")  # another host, as GitHub's is
            return Reply(302, headers={"Location": f"{codeload}/codeload/{owner}/{repo}/zip/refs/tags/{quote(tag, safe='/')}"})
        if found := re.fullmatch(r"/codeload/([^/]+)/([^/]+)/zip/refs/tags/(.+)", path):
            data = self.archives.get(found.groups())
            return Reply(200, data, {"Content-Type": "application/zip"}) if data is not None else Reply(404, b"Not Found")
        return json_reply(404, {"status": 404, "message": "The requested URL was not found on the server."})

    # --- Zenodo's endpoints ---------------------------------------------------------------------------------------

    def _search(self, query: dict[str, list[str]], authenticated: bool, shape: str) -> Reply:
        params = {name: values[-1] for name, values in query.items()}
        invalid = json_reply(400, {"status": 400, "message": "Invalid querystring parameters."})
        try:
            page, size = int(params.get("page", 1)), int(params.get("size", 10))
        except ValueError:
            return invalid
        max_size = 100 if authenticated else 25
        if size > max_size:
            return json_reply(400, {"status": 400, "message": "A validation error occurred.", "errors": [
                {"field": "size", "messages": [f"Page size cannot be greater than {max_size}. ..."]}]})
        sort = params.get("sort", "bestmatch" if params.get("q") else "newest")
        if page < 1 or size < 1 or sort not in SORTS or (page - 1) * size >= self.max_results:
            return invalid
        hits = self._find(params, sort)
        page_hits = [self._shaped(hit, shape) for hit in hits[(page - 1) * size: page * size]]
        envelope = {"hits": {"hits": page_hits, "total": len(hits)}, "aggregations": {},
                    "links": self._page_links(params, page, size, len(hits))}
        return json_reply(200, envelope)

    def _find(self, params: dict[str, str], sort: str) -> list[dict]:
        visible = [r for i, r in sorted(self.records.items()) if i not in self.deleted and i not in self.hidden]
        if params.get("all_versions", "false").lower() in ("false", "0"):
            latest = {int(r["id"]) for r in self._latest_versions(visible).values()}
            visible = [r for r in visible if int(r["id"]) in latest]
        if params.get("type"):
            visible = [r for r in visible if lookup(r, "type") == params["type"]]
        if params.get("q"):
            visible = [r for r in visible if matches_query(r, params["q"])]
        if SORTS[sort]:
            name, descending = SORTS[sort]
            visible.sort(key=lambda r: str(lookup(r, name) or ""), reverse=descending)
        return visible

    def _page_links(self, params: dict[str, str], page: int, size: int, total: int) -> dict[str, str]:
        """Zenodo computes `next` from the true total, even past the deep-paging cap (ZENODO.md's trap)."""
        def link(number: int) -> str:
            return f"{self.url}/api/records?{urlencode({**params, 'page': number, 'size': size})}"
        links = {"self": link(page)}
        if page * size < total:
            links["next"] = link(page + 1)
        if page > 1:
            links["prev"] = link(page - 1)
        return links

    @staticmethod
    def _latest_versions(records: list[dict]) -> dict[str, dict]:
        """Concept id -> its latest version: the one marked is_last, else the highest id."""
        concepts: dict[str, list[dict]] = collections.defaultdict(list)
        for record in records:
            concepts[str(record.get("conceptrecid") or f"record:{record['id']}")].append(record)
        def latest(versions: list[dict]) -> dict:
            marked = [r for r in versions if ((lookup(r, "relations.version") or [{}])[0]).get("is_last")]
            return max(marked or versions, key=lambda r: int(r["id"]))
        return {concept: latest(versions) for concept, versions in concepts.items()}

    def _record(self, record_id: str, shape: str) -> Reply:
        """A record; a concept id redirects to its latest live version."""
        number = int(record_id) if record_id.isdigit() else None
        if number in self.deleted:
            return json_reply(410, {"status": 410, "message": "Record deleted", "tombstone": self.deleted[number]})
        if number in self.records and number not in self.hidden:
            return json_reply(200, self._shaped(self.records[number], shape), {"Content-Type": "application/json" if shape == "legacy" else INVENIORDM})
        live = [r for i, r in self.records.items() if i not in self.deleted and i not in self.hidden]
        latest = None if number in self.hidden else self._latest_versions(live).get(record_id)
        if latest is not None:
            return Reply(302, headers={"Location": f"{self.url}/api/records/{latest['id']}"})
        return json_reply(404, {"status": 404, "message": "The persistent identifier does not exist."})

    def _file(self, record_id: str, key: str) -> Reply:
        number = int(record_id) if record_id.isdigit() else None
        data = self.files.get((number, key))
        if data is None or number in self.deleted or number in self.hidden:
            return json_reply(404, {"status": 404, "message": "The persistent identifier does not exist."})
        return Reply(200, data, {"Content-Type": "application/octet-stream"})

    def _shaped(self, record: dict, shape: str) -> dict:
        if shape != INVENIORDM:
            return record
        live = [r for i, r in self.records.items() if i not in self.deleted and i not in self.hidden]
        latest = {int(r["id"]) for r in self._latest_versions(live).values()}
        return to_inveniordm(record, is_latest=int(record["id"]) in latest)

    def _record_links(self, record: dict) -> dict:
        """Every link Zenodo gives a record (legacy shape)."""
        record_id, concept = record["id"], record.get("conceptrecid", record["id"])
        api, html = f"{self.url}/api/records", f"{self.url}/records"
        doi = record.get("doi") or f"10.5281/zenodo.{record_id}"
        bucket = uuid.uuid5(uuid.NAMESPACE_URL, f"bucket/{record_id}")
        return {"self": f"{api}/{record_id}", "self_html": f"{html}/{record_id}", "html": f"{html}/{record_id}",
                "doi": f"https://doi.org/{doi}", "self_doi": f"https://doi.org/{doi}", "parent": f"{api}/{concept}",
                "parent_html": f"{html}/{concept}", "badge": f"{self.url}/badge/doi/{doi}.svg",
                "files": f"{api}/{record_id}/files", "bucket": f"{self.url}/api/files/{bucket}",
                "latest": f"{api}/{concept}/versions/latest", "latest_html": f"{html}/{concept}/latest",
                "versions": f"{api}/{concept}/versions", "archive": f"{api}/{record_id}/files-archive"}

    def _file_entry(self, record_id: int, key: str, data: bytes, style: str = "current") -> dict:
        file_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{record_id}/{key}"))
        md5 = hashlib.md5(data).hexdigest()
        if style == "pre-2023":
            bucket = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bucket/{record_id}"))
            return {"id": file_id, "key": key, "size": len(data), "checksum": f"md5:{md5}", "bucket": bucket, "type": key.rsplit(".", 1)[-1],
                    "links": {"self": f"{self.url}/api/files/{bucket}/{quote(key, safe=LINK_SAFE)}"}}
        if style == "migration":
            return {"id": file_id, "filename": key, "filesize": len(data), "checksum": md5,
                    "links": {"self": f"{self.url}/api/files/{file_id}",
                              "download": f"{self.url}/records/{record_id}/files/{quote(key, safe=LINK_SAFE)}?download=1"}}
        return {"id": file_id, "key": key, "size": len(data), "checksum": f"md5:{md5}", "links": {"self": self.file_url(record_id, key)}}


def to_inveniordm(record: dict, *, is_latest: bool = True) -> dict:
    """A legacy-shape record as InvenioRDM writes it (Accept: application/vnd.inveniordm.v1+json; Zenodo's export).

    Fields missing from the legacy record are missing here too.
    """
    meta = record.get("metadata") or {}
    out_meta = {name: meta[name] for name in ("title", "description", "publication_date", "version") if name in meta}
    if "title" not in out_meta and "title" in record:
        out_meta["title"] = record["title"]
    if "resource_type" in meta:
        kind = meta["resource_type"]
        out_meta["resource_type"] = {"id": "-".join(filter(None, [kind.get("type"), kind.get("subtype")])),
                                     "title": {"en": kind.get("title", "")}}
    if "creators" in meta:
        out_meta["creators"] = []
        for creator in meta["creators"]:
            person = {"name": creator.get("name"), "type": "personal"}
            if creator.get("orcid"):
                person["identifiers"] = [{"scheme": "orcid", "identifier": creator["orcid"]}]
            entry = {"person_or_org": person}
            if creator.get("affiliation"):
                entry["affiliations"] = [{"name": creator["affiliation"]}]
            out_meta["creators"].append(entry)
    if "license" in meta:
        out_meta["rights"] = [{"id": meta["license"]["id"] if isinstance(meta["license"], dict) else meta["license"]}]
    if "keywords" in meta:
        out_meta["subjects"] = [{"subject": keyword} for keyword in meta["keywords"]]
    if "language" in meta:
        out_meta["languages"] = [{"id": meta["language"]}]
    if "related_identifiers" in meta:
        out_meta["related_identifiers"] = [
            {"identifier": item["identifier"], "scheme": item.get("scheme"),
             "relation_type": {"id": (item.get("relation") or "").lower()},
             **({"resource_type": {"id": item["resource_type"]}} if item.get("resource_type") else {})}
            for item in meta["related_identifiers"]]
    parent = {"id": record.get("conceptrecid")}
    if record.get("conceptdoi"):
        parent["pids"] = {"doi": {"identifier": record["conceptdoi"], "provider": "datacite"}}
    if meta.get("communities"):
        parent["communities"] = {"entries": [{"slug": community["id"]} for community in meta["communities"]]}
    files = record.get("files") or []
    result = {
        "id": str(record["id"]),
        "created": record.get("created"),
        "updated": record.get("updated"),
        "parent": parent,
        "pids": {"doi": {"identifier": record["doi"], "provider": "datacite"}} if record.get("doi") else {},
        "versions": {"is_latest": is_latest, "index": ((meta.get("relations") or {}).get("version") or [{}])[0].get("index", 0) + 1},
        "metadata": out_meta,
        "files": {"enabled": bool(files), "entries": {
            (entry.get("key") or entry.get("filename")): {
                "id": entry.get("id"), "key": entry.get("key") or entry.get("filename"),
                "size": entry.get("size", entry.get("filesize")), "checksum": entry.get("checksum"),
                "links": _inveniordm_file_links(entry.get("links") or {})}
            for entry in files}},
        "links": dict(record.get("links") or {}),
    }
    if "access_right" in meta:
        files_access = {"open": "public"}.get(meta["access_right"], "restricted")
        result["access"] = {"record": "public", "files": files_access,
                            "embargo": {"active": meta["access_right"] == "embargoed"}}
    return result


def _inveniordm_file_links(links: dict) -> dict:
    """InvenioRDM names the content link `content` and the entry's own `self`."""
    content = links.get("self", "")
    if content.endswith("/content"):
        return {**links, "self": content.removesuffix("/content"), "content": content}
    return dict(links)


def _send(handler: BaseHTTPRequestHandler, reply: Reply, *, truncate: bool) -> None:
    """Write the reply: JSON chunked without Content-Length, as Zenodo sends it; a truncated one promises its
    full length, sends half, and closes."""
    handler.send_response(reply.status)
    for name, value in reply.headers.items():
        handler.send_header(name, value)
    chunked = "json" in reply.headers.get("Content-Type", "") and not truncate
    if chunked:
        handler.send_header("Transfer-Encoding", "chunked")
    else:
        handler.send_header("Content-Length", str(len(reply.body)))
    handler.end_headers()
    if chunked:
        for start in range(0, len(reply.body), 4096):
            piece = reply.body[start: start + 4096]
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        handler.wfile.write(b"0\r\n\r\n")
    else:
        handler.wfile.write(reply.body[: len(reply.body) // 2] if truncate else reply.body)
    if truncate:
        handler.close_connection = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's pooled session expects
    # Headers and body go out in separate writes: with Nagle's algorithm on, the body waits for the client's
    # delayed ACK of the headers (about 20-40 ms a request), which Zenodo's nginx (tcp_nodelay) does not do.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.server.app.serve(self)

    def log_message(self, format: str, *args) -> None:
        """Quiet: the server keeps its own log in `ZenodoServer.log`."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    app: ZenodoServer

    def handle_error(self, request, client_address) -> None:
        """A client that timed out and hung up is expected (the "slow" fault); anything else is a server bug."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def zipball(top: str, files: dict[str, bytes]) -> bytes:
    """A zip as GitHub's zipball writes one: every file of `files` ({path: bytes}) under the single folder `top`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(f"{top}/{name}", data)
    return buffer.getvalue()
