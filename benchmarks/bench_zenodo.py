"""How close to Zenodo's rate limits do harvesting and building run, and do faults cost anything but time?

    python benchmarks/bench_zenodo.py [--records 10000] [--build-records 300]

Everything runs against beam_zml.testing.zenodo_server.ZenodoServer on 127.0.0.1, in this process, with
Zenodo's documented token limits (30 search requests and 100 other requests per window) and the
window scaled from 60 s down to --harvest-window (20 s: 90 searches/min) for the harvests and
--build-window (10 s: 600 requests/min) for the builds, so that a run takes minutes instead of
hours. (The harvest's window is the longer because the test server scans every record on each
search, 0.2-0.4 s for 10,000 records on a quiet machine: a shorter interval would measure the
server, not the client.) The client is told the same scaled limits (--search-requests-per-minute,
--requests-per-minute), as a user who knows Zenodo's numbers would tell it (--pace tells it less).
Phases, each after the server's window has drained so that no phase inherits another's requests:

1. Harvest (`pipelines.harvest_records.run`) of --records GitHub-style software records: created
   dates spread over 2016-2025, about one concept in six with several versions (only the latest
   is listed), a few titled "gcube" (dropped by --exclude-pattern gcube); the server's deep-paging
   cap at --cap (Zenodo's 10,000); with a token, so pages hold 100 records.
   a. clean; b. the same with a 429 (Retry-After), a 503 and a dropped connection on search;
   c. with the cap scaled down to --slice-cap, so the harvest must slice the query by date.
2. Build (`pipelines.build_dataset.run`, DirectRunner default) of --build-records records, each
   a small real zipball of a few Python standard-library files, plus two deleted records (which
   must fail): a. `--ids` (2 requests a record: metadata, archive); b. the same with faults on
   downloads and metadata (503, dropped connection, truncated body, wrong bytes once, 429,
   HTML 502); c. a harvest of the same server into JSON lines, then `--records-jsonl`
   (1 request a record); with --workers N, also d. `--ids` on N DirectRunner workers
   (multi_processing) with `--zenodo-workers N`, and e. the same without it (a misconfiguration,
   shown for its earned 429s).

For each phase it reports wall time, requests made, the request rate achieved (over the span
from the first to the last request of the bucket) beside the limit (target: at least 90%), the
most requests seen in any one window (the server's count: at most the limit), 429s injected and
earned (target: 0 earned), and records listed or built against those expected (target: 0 lost,
0 duplicated), then where the time between requests went (the server's search time, the client's
time, waits for X-RateLimit-Reset after X-RateLimit-Remaining: 0), what the faults cost, and the
time the same work would take against Zenodo's real limits. Exit status 1 if a target is missed.
Not part of the tests; a run takes about 7 minutes.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import datetime as dt
import hashlib
import io
import itertools
import json
import math
import os
import random
import shlex
import shutil
import sys
import sysconfig
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from beam_zml.consume.dataset import read_errors, read_rows  # noqa: E402
from beam_zml.testing.zenodo_server import TOKEN, ZenodoServer  # noqa: E402
from pipelines import build_dataset, harvest_records  # noqa: E402

# Zenodo's documented limits (https://developers.zenodo.org), per minute
ZENODO_SEARCH_PER_MIN = 30
ZENODO_TOKEN_PER_MIN, ZENODO_TOKEN_PER_HOUR = 100, 5_000
ZENODO_GUEST_PER_MIN, ZENODO_GUEST_PER_HOUR = 60, 2_000
TARGET_SHARE = 0.90
EXCLUDE = "gcube"
FIRST_CREATED = dt.datetime(2016, 1, 1, tzinfo=dt.timezone.utc)
LAST_CREATED = dt.datetime(2025, 6, 30, tzinfo=dt.timezone.utc)
RETRY_AFTER = 2.0  # seconds, in injected 429s (a fifth of the default scaled window)


# ---------------------------------------------------------------------------------------------
# The records


def bucket_of(path: str) -> str | None:
    """The server's rate-limit bucket for a request path (as ZenodoServer.serve counts)."""
    if not path.startswith("/api/"):
        return None
    return "search" if path == "/api/records" else "other"


def github_record(record_id: int, concept_id: int, owner: str, repo: str, tag: str, created: dt.datetime,
                  *, index: int = 0, is_last: bool = True) -> dict:
    """A record as Zenodo's GitHub integration makes it (ZENODO.md)."""
    title = f"{owner}/{repo}: {tag}"
    return {
        "id": record_id,
        "conceptrecid": str(concept_id),
        "doi": f"10.5281/zenodo.{record_id}",
        "conceptdoi": f"10.5281/zenodo.{concept_id}",
        "title": title,
        "created": created.isoformat(),
        "updated": created.isoformat(),
        "owners": [{"id": "48746"}],
        "status": "published",
        "metadata": {
            "title": title,
            "doi": f"10.5281/zenodo.{record_id}",
            "description": f"<p>Release {tag} of {owner}/{repo}, a tool for reproducible analysis of code.</p>",
            "publication_date": created.date().isoformat(),
            "access_right": "open",
            "version": tag,
            "language": "eng",
            "resource_type": {"type": "software", "title": "Software"},
            "creators": [{"name": "Doe, Jane", "affiliation": "University of Somewhere"}],
            "license": {"id": "mit"},
            "related_identifiers": [{
                "identifier": f"https://github.com/{owner}/{repo}/tree/{tag}",
                "relation": "isSupplementTo", "scheme": "url", "resource_type": "software",
            }],
            "relations": {"version": [{"index": index, "is_last": is_last,
                                       "parent": {"pid_type": "recid", "pid_value": str(concept_id)}}]},
        },
    }


def harvest_records_for(n: int, seed: int) -> tuple[list[tuple[dict, str]], set[int], dict]:
    """`n` records (with their archive key) over several years, and the ids a latest-version,
    gcube-excluding harvest must list; ids grow with `created`, and a concept's id comes just before
    its first version's, as on Zenodo."""
    rng = random.Random(seed)
    span = (LAST_CREATED - FIRST_CREATED).total_seconds()
    plans = []  # (owner, repo, [created of each version])
    made = 0
    while made < n:
        versions = rng.choices([1, 2, 3, 5], weights=[84, 10, 4, 2])[0]
        versions = min(versions, n - made)
        first = FIRST_CREATED + dt.timedelta(seconds=rng.uniform(0, span * 0.9), microseconds=rng.randrange(10**6))
        dates = [first]
        for _ in range(versions - 1):
            dates.append(min(dates[-1] + dt.timedelta(days=rng.uniform(1, 200), seconds=rng.uniform(0, 86400)),
                             LAST_CREATED))
        index = len(plans)
        owner = "gcube-team" if index % 331 == 17 else f"org{index % 97}"  # about 0.3% of concepts are gcube
        repo = f"gcube-{index}" if owner == "gcube-team" else f"tool{index}"
        plans.append((owner, repo, dates))
        made += versions
    # ids in order of creation: each concept takes the id before its first version
    events = sorted((date, p, v) for p, (_, _, dates) in enumerate(plans) for v, date in enumerate(dates))
    next_id, concept_ids, records, expected = 1_000_001, {}, [], set()
    for date, p, v in events:
        owner, repo, dates = plans[p]
        if v == 0:
            concept_ids[p] = next_id
            next_id += 1
        is_last = v == len(dates) - 1
        record = github_record(next_id, concept_ids[p], owner, repo, f"v{v + 1}.0", date, index=v, is_last=is_last)
        records.append((record, f"{owner}/{repo}-v{v + 1}.0.zip"))
        if is_last and owner != "gcube-team":
            expected.add(next_id)
        next_id += 1
    facts = {
        "records": len(records),
        "concepts": len(plans),
        "older_versions": len(records) - len(plans),
        "gcube_latest": sum(1 for owner, _, _ in plans if owner == "gcube-team"),
        "latest": len(plans),
    }
    return records, expected, facts


def stdlib_files() -> list[Path]:
    """Real source files: the standard library's top-level modules of 2-20 KB, in a stable order."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.glob("*.py") if 2_000 <= p.stat().st_size <= 20_000)
    if len(files) < 5:
        raise SystemExit(f"too few standard-library files under {stdlib}")
    return files


def zipball(top: str, files: list[Path]) -> bytes:
    """A GitHub-style zipball: every member under one OWNER-REPO-sha/ folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{top}/README.md", f"# {top}\n\nFiles from the Python standard library.\n")
        for path in files:
            archive.writestr(f"{top}/src/{path.name}", path.read_bytes())
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Measuring a phase


@dataclass
class Phase:
    name: str
    kind: str  # harvest or build
    bucket: str  # the bucket whose rate is the point of the phase
    argv: list[str] = field(default_factory=list)
    wall: float = 0.0
    requests: dict = field(default_factory=dict)  # bucket -> count
    rate: float = 0.0  # per minute, over the bucket's span
    limit: float = 0.0  # per minute
    peak: int = 0  # most requests of the bucket in one window, as the server counts
    gaps: list = field(default_factory=list)  # seconds between successive requests of the bucket
    full: list = field(default_factory=list)  # per gap: did the request before it fill the window (Remaining: 0)?
    span: tuple = (0.0, 0.0)  # first and last request of the bucket, seconds from the phase's start
    load: tuple = (0.0, 0.0)  # the machine's 1-minute load average at the start and the end
    served: list = field(default_factory=list)  # per request of the bucket: seconds the server took to answer
    window_limit: int = 0
    injected_429s: int = 0
    earned_429s: int = 0
    faults: int = 0  # faults injected into the phase
    faults_fired: int = 0
    fault_wait: tuple = (0.0, 0.0)  # the least and most waiting the faults ask for (Retry-After; first backoff 1-2 s)
    expected: int = 0
    listed: int = 0  # records listed (harvest) or rows written (build)
    ok: int = 0
    failed: int = 0
    expected_failed: int = 0
    lost: int = 0
    duplicates: int = 0
    extra: int = 0
    wrong: int = 0  # build: rows whose status or source is not the expected one
    unexpected_errors: int = 0  # build: errors/ lines for records that should have none
    minimum_requests: int = 0
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    demo: bool = False  # a demonstration of a misconfiguration: earned 429s are its expected outcome
    workers: int = 1  # DirectRunner workers, each with its own client and pacer

    @property
    def share(self) -> float:
        return self.rate / self.limit if self.limit else 0.0


def rate_and_peak(entries, window: float) -> tuple[float, int]:
    """Requests per minute from the first request to the last, and the most in any window (t - window, t]."""
    times = [entry.time for entry in entries]
    if len(times) < 2:
        return 0.0, len(times)
    rate = (len(times) - 1) / (times[-1] - times[0]) * 60
    peak, low = 0, 0
    for high, moment in enumerate(times):
        while times[low] <= moment - window:
            low += 1
        peak = max(peak, high - low + 1)
    return rate, peak


def time_serving(server: ZenodoServer) -> None:
    """Record how long the server takes over each request (its search scans every record), to tell the
    server's time from the client's in the gaps between requests."""
    serve = server.serve
    server.serving = []  # (monotonic start, end, target), in order

    def timed(handler):
        start = time.monotonic()
        try:
            serve(handler)
        finally:
            server.serving.append((start, time.monotonic(), handler.path))

    server.serve = timed


def served_seconds(serving: list[tuple[float, float, str]], entries) -> list[float | None]:
    """The time the server spent on each logged request, matched by arrival time and target;
    `serving` is ZenodoServer.serving sorted."""
    starts = [start for start, _, _ in serving]
    out = []
    for entry in entries:
        index = bisect.bisect_right(starts, entry.time) - 1
        start, end, target = serving[index] if index >= 0 else (0.0, -1.0, "")
        out.append(end - start if target == entry.target and start <= entry.time <= end else None)
    return out


def window_counts(entries, window: float) -> list[int]:
    """For each request, the requests in (t - window, t]: the server's count once it is admitted."""
    counts, low = [], 0
    times = [entry.time for entry in entries]
    for moment in times:
        while times[low] <= moment - window:
            low += 1
        counts.append(len(counts) + 1 - low)
    return counts


@contextlib.contextmanager
def stderr_to(path: Path):
    """Send this process's stderr (progress bars, Beam's and TensorFlow's logs) to a file for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path):
        self.args = args
        self.work = work
        self.log = work / "phases.log"
        self.phases: list[Phase] = []

    def client_flags(self, server: ZenodoServer) -> list[str]:
        """The client told the server's scaled limits, as a user told Zenodo's would be."""
        per_minute = {name: limit * 60 / server.window * self.args.pace for name, limit in server.limits.items()}
        return [
            "--zenodo-url", server.url, "--github-url", server.url,
            "--search-requests-per-minute", f"{per_minute['search']:g}",
            "--requests-per-minute", f"{per_minute['other']:g}",
        ]

    def drain(self, server: ZenodoServer) -> None:
        """Wait until the server's moving window holds none of the previous phase's requests."""
        last = max((entry.time for entry in server.log), default=None)
        if last is not None:
            time.sleep(max(0.0, last + server.window + 0.2 - time.monotonic()))

    @contextlib.contextmanager
    def measure(self, phase: Phase, server: ZenodoServer):
        self.drain(server)
        print(f"  {phase.name} ...", end="", flush=True)
        start_log, injected, earned = len(server.log), server.injected_429s, server.earned_429s
        load_before = os.getloadavg()[0]
        started, started_mono = time.perf_counter(), time.monotonic()
        try:
            with stderr_to(self.log):
                yield
        except SystemExit as error:  # arguments.fail: the run gave up
            phase.error = f"exit {error.code}"
        except Exception as error:  # noqa: BLE001 - a benchmark reports, it does not stop
            phase.error = f"{type(error).__name__}: {error}"
        phase.wall = time.perf_counter() - started
        phase.load = (load_before, os.getloadavg()[0])
        entries = server.log[start_log:]
        for entry in entries:
            name = bucket_of(entry.path) or "github"
            phase.requests[name] = phase.requests.get(name, 0) + 1
        paced = [e for e in entries if bucket_of(e.path) == phase.bucket]
        phase.served = served_seconds(sorted(server.serving), paced) if hasattr(server, "serving") else []
        phase.rate, phase.peak = rate_and_peak(paced, server.window)
        phase.gaps = [b.time - a.time for a, b in itertools.pairwise(paced)]
        in_window = window_counts(paced, server.window)
        phase.full = [count >= server.limits[phase.bucket] for count in in_window[:-1]]
        if paced:
            phase.span = (paced[0].time - started_mono, paced[-1].time - started_mono)
        limit = server.limits[phase.bucket]
        phase.window_limit = limit
        phase.limit = limit * 60 / server.window
        phase.injected_429s = server.injected_429s - injected
        phase.earned_429s = server.earned_429s - earned
        self.phases.append(phase)
        print(f" {phase.wall:.1f} s" + (f"  ERROR {phase.error} (see {self.log})" if phase.error else ""), flush=True)

    # --- 1. harvest ---------------------------------------------------------------------------------------

    def harvest(self, server: ZenodoServer, expected: set[int], name: str, *, cap: int,
                faults: list[tuple[str, int, float]] = ()) -> Phase:
        phase = Phase(name, "harvest", "search", expected=len(expected))
        server.max_results = cap
        output = self.work / f"harvest-{len(self.phases)}.jsonl"
        phase.argv = ["--output", str(output), "--exclude-pattern", EXCLUDE, "--search-cap", str(cap),
                      *self.client_flags(server)]
        fired, predicates = [], []
        for kind, nth, seconds in faults:  # on the nth search request (counted among those the fault sees)
            predicates.append(NthRequest("/api/records", nth, fired))
            server.inject(predicates[-1], kind, seconds=seconds)
        phase.faults = len(faults)
        phase.fault_wait = expected_wait([kind for kind, _, _ in faults])
        with self.measure(phase, server):
            harvest_records.run(phase.argv)
        for predicate in predicates:
            predicate.active = False
        phase.faults_fired = len(fired)
        ids = [int(json.loads(line)["id"]) for line in output.read_text().splitlines()] if output.exists() else []
        phase.listed, phase.ok = len(ids), len(set(ids) & expected)
        phase.lost = len(expected - set(ids))
        phase.duplicates = len(ids) - len(set(ids))
        phase.extra = len(set(ids) - expected)
        phase.minimum_requests = math.ceil((len(expected) + self.harvest_facts["gcube_latest"]) / 100)
        return phase

    # --- 2. build -----------------------------------------------------------------------------------------

    def build(self, server: ZenodoServer, name: str, *, ok_ids: list[int], failed_ids: list[int],
              source_argv: list[str], faults: list[tuple[str, str, dict]] = (), extra_argv: list[str] = (),
              demo: bool = False) -> Phase:
        phase = Phase(name, "build", "other", expected=len(ok_ids) + len(failed_ids), expected_failed=len(failed_ids), demo=demo)
        if "--direct_num_workers" in extra_argv:
            phase.workers = int(extra_argv[list(extra_argv).index("--direct_num_workers") + 1])
        output = self.work / f"build-{len(self.phases)}"
        phase.argv = [*source_argv, "--output", str(output), *self.client_flags(server), *extra_argv]
        fired, predicates = [], []
        for path, kind, options in faults:
            predicates.append(NthRequest(path, 1, fired))
            server.inject(predicates[-1], kind, **options)
        phase.faults = len(faults)
        phase.fault_wait = expected_wait([kind for _, kind, _ in faults])
        with self.measure(phase, server):
            build_dataset.run(phase.argv)
        for predicate in predicates:
            predicate.active = False
        phase.faults_fired = len(fired)
        if phase.error:
            return phase
        rows = list(read_rows(str(output), "records"))
        ids = [row["record_id"] for row in rows]
        expected = set(ok_ids) | set(failed_ids)
        phase.listed = len(rows)
        phase.ok = sum(row["status"] == "ok" for row in rows)
        phase.failed = sum(row["status"] == "failed" for row in rows)
        phase.lost = len(expected - set(ids))
        phase.duplicates = len(ids) - len(set(ids))
        phase.extra = len(set(ids) - expected)
        ok, failed = set(ok_ids), set(failed_ids)
        phase.wrong = sum(1 for row in rows if (row["record_id"] in ok and (row["status"] != "ok" or row["source"] != "zenodo_archive"))
                          or (row["record_id"] in failed and row["status"] != "failed"))
        errors = list(read_errors(str(output)))
        phase.unexpected_errors = sum(1 for e in errors if e["record_id"] not in failed)
        if phase.unexpected_errors:
            phase.notes.append("; ".join(sorted({f"{e['stage']}/{e['error_type']}: {e['message'][:120]}" for e in errors
                                                if e["record_id"] not in failed}))[:600])
        per_record = 2 if "--ids" in source_argv else 1
        phase.minimum_requests = per_record * len(ok_ids) + len(failed_ids)
        return phase


def expected_wait(kinds: list[str]) -> tuple[float, float]:
    """What the faults ask the client to wait: a 429's Retry-After, else a first jittered backoff of 1-2 s
    (ZenodoSettings.backoff_initial = 1, tenacity's wait_exponential_jitter)."""
    low = sum(RETRY_AFTER if kind == "429" else 1.0 for kind in kinds)
    high = sum(RETRY_AFTER if kind == "429" else 2.0 for kind in kinds)
    return low, high


class NthRequest:
    """A fault predicate that matches the nth request to `path` it is asked about, while its phase lasts
    (a fault that did not fire must not spill into the next phase)."""

    def __init__(self, path: str, nth: int, fired: list):
        self.path, self.nth, self.fired = path, nth, fired
        self.seen = 0
        self.active = True

    def __call__(self, candidate: str) -> bool:
        if not self.active or candidate != self.path:
            return False
        self.seen += 1
        if self.seen == self.nth:
            self.fired.append(self.nth)
            return True
        return False


# ---------------------------------------------------------------------------------------------
# Reporting


def fmt_rate(phase: Phase) -> str:
    return f"{phase.rate:,.0f} / {phase.limit:,.0f} ({phase.share:.0%})"


def harvest_table(phases: list[Phase]) -> str:
    lines = [
        ("| harvest phase | wall s | search requests (minimum) | search req/min achieved / limit | most in one window / limit "
         "| 429 injected / earned | faults fired | listed / expected | lost | duplicates | extra |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in phases:
        lines.append(
            f"| {p.name} | {p.wall:.1f} | {p.requests.get('search', 0)} ({p.minimum_requests}) | {fmt_rate(p)} "
            f"| {p.peak} / {p.window_limit} | {p.injected_429s} / {p.earned_429s} | {p.faults_fired}/{p.faults} "
            f"| {p.listed:,} / {p.expected:,} | {p.lost} | {p.duplicates} | {p.extra} |"
        )
    return "\n".join(lines)


def build_table(phases: list[Phase]) -> str:
    lines = [
        ("| build phase | wall s | other requests (minimum) | other req/min achieved / limit | most in one window / limit "
         "| 429 injected / earned | faults fired | rows / expected | ok | failed (expected) | lost | duplicates "
         "| wrong status or source | unexpected errors |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in phases:
        lines.append(
            f"| {p.name} | {p.wall:.1f} | {p.requests.get('other', 0)} ({p.minimum_requests}) | {fmt_rate(p)} "
            f"| {p.peak} / {p.window_limit} | {p.injected_429s} / {p.earned_429s} | {p.faults_fired}/{p.faults} "
            f"| {p.listed} / {p.expected} | {p.ok} | {p.failed} ({p.expected_failed}) | {p.lost} | {p.duplicates} "
            f"| {p.wrong} | {p.unexpected_errors} |"
        )
    return "\n".join(lines)


def pacing_table(phases: list[Phase], pace: float) -> str:
    """Where the time between requests went: the gaps beside the interval the client paces at, the server's
    time per request, and the client's time from a response to its next request when that made a gap long."""
    lines = [("| phase | bucket | requests from .. to (s of the wall) | client's interval ms | gap ms median / p90 / max "
              "| time over the interval s | of it after a window-filling request (Remaining: 0) s, n "
              "| server ms per request median / p90 | long gaps (> interval + 10%): n, server ms median, client ms median "
              "| load average start, end |"),
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in phases:
        if not p.gaps:
            continue
        interval = 60 / (p.limit * pace)  # the client's
        if p.workers > 1:  # several pacers interleave: the gaps of the merged stream say little
            lines.append(f"| {p.name.split('.')[0]} | {p.bucket} | {p.span[0]:.1f} .. {p.span[1]:.1f} ({p.wall:.1f}) "
                         f"| {interval * 1000 * p.workers:.0f} per worker | {p.workers} workers interleaved | - | - | - | - "
                         f"| {p.load[0]:.1f}, {p.load[1]:.1f} |")
            continue
        gaps = sorted(p.gaps)
        over = sum(max(0.0, g - interval) for g in gaps)
        held = [max(0.0, g - interval) for g, full in zip(p.gaps, p.full) if full]
        served = sorted(x for x in p.served if x is not None)
        long = [(g, p.served[i]) for i, (g, full) in enumerate(zip(p.gaps, p.full))
                if g > interval * 1.1 and not full and p.served and p.served[i] is not None]
        long_server = sorted(srv for _, srv in long)
        long_client = sorted(g - srv for g, srv in long)
        lines.append(
            f"| {p.name.split('.')[0]} | {p.bucket} | {p.span[0]:.1f} .. {p.span[1]:.1f} ({p.wall:.1f}) | {interval * 1000:.0f} "
            f"| {ms(gaps, 0.5)} / {ms(gaps, 0.9)} / {ms(gaps, 1.0)} | {over:.1f} | {sum(held):.1f}, {len(held)} "
            f"| {ms(served, 0.5)} / {ms(served, 0.9)} | {len(long)}, {ms(long_server, 0.5)}, {ms(long_client, 0.5)} "
            f"| {p.load[0]:.1f}, {p.load[1]:.1f} |")
    return "\n".join(lines)


def ms(values: list[float], quantile: float) -> str:
    if not values:
        return "-"
    return f"{values[min(len(values) - 1, int(len(values) * quantile))] * 1000:.0f}"


def minutes_at(requests: int, per_minute: float, per_hour: float | None = None) -> float:
    """Minutes to send `requests` evenly at `per_minute`, holding also to `per_hour` (a moving hour)."""
    if per_hour is None or requests <= per_hour:
        return requests / per_minute
    full_hours = math.ceil(requests / per_hour) - 1
    return full_hours * 60 + (requests - full_hours * per_hour) / per_minute


def hours(minutes: float) -> str:
    return f"{minutes:,.0f} min" if minutes < 90 else f"{minutes / 60:,.1f} h"


def extrapolate(bench: Bench, n: int) -> str:
    """Zenodo's real limits for the same work at `n` records, from the requests this run made per record."""
    harvests = [p for p in bench.phases if p.kind == "harvest" and not p.error]
    builds = {p.name: p for p in bench.phases if p.kind == "build" and not p.error}
    lines = [f"| work for {n:,} records | requests | at Zenodo's documented limits | at this run's achieved share of the limit |",
             "|---|---:|---:|---:|"]
    if harvests:
        clean = harvests[0]
        per_record = clean.requests.get("search", 0) / max(1, clean.listed)
        search = math.ceil(per_record * n)
        ideal = minutes_at(search, ZENODO_SEARCH_PER_MIN)
        lines.append(f"| harvest, token (100 a page), 30 search/min | {search:,} | {hours(ideal)} | {hours(ideal / max(clean.share, 1e-9))} |")
        guest = math.ceil(per_record * n * 4)
        lines.append(f"| harvest, guest (25 a page), 30 search/min | {guest:,} | {hours(minutes_at(guest, ZENODO_SEARCH_PER_MIN))} | "
                     f"{hours(minutes_at(guest, ZENODO_SEARCH_PER_MIN) / max(clean.share, 1e-9))} |")
    for name, per in (("ids", 2), ("jsonl", 1)):
        phase = next((p for key, p in builds.items() if name in key), None)
        share = phase.share if phase else 1.0
        requests = per * n
        label = "`--ids` (metadata + archive)" if per == 2 else "`--records-jsonl` (archive only)"
        token = minutes_at(requests, ZENODO_TOKEN_PER_MIN)
        token_hourly = minutes_at(requests, ZENODO_TOKEN_PER_MIN, ZENODO_TOKEN_PER_HOUR)
        guest_hourly = minutes_at(requests, ZENODO_GUEST_PER_MIN, ZENODO_GUEST_PER_HOUR)
        lines.append(f"| build {label}, token, 100/min | {requests:,} | {hours(token)} | {hours(token / max(share, 1e-9))} |")
        lines.append(f"| build {label}, token, 100/min and 5,000/h | {requests:,} | {hours(token_hourly)} | "
                     f"{hours(token_hourly / max(share, 1e-9))} |")
        lines.append(f"| build {label}, guest, 60/min and 2,000/h | {requests:,} | {hours(guest_hourly)} | "
                     f"{hours(guest_hourly / max(share, 1e-9))} |")
    return "\n".join(lines)


def fault_costs(bench: Bench) -> list[str]:
    out = []
    clean = None
    for p in bench.phases:
        if not p.faults:
            clean = p
            continue
        if clean is None or clean.kind != p.kind:
            continue
        extra_requests = p.requests.get(p.bucket, 0) - clean.requests.get(p.bucket, 0)
        spent = (p.span[1] - p.span[0]) - (clean.span[1] - clean.span[0])
        out.append(f"- {p.name.split('.')[0]}: {p.faults_fired} faults cost {extra_requests} extra requests and {spent:+.1f} s "
                   f"(they ask for {p.fault_wait[0]:.0f}-{p.fault_wait[1]:.0f} s of waiting); records: "
                   f"{p.ok if p.kind == 'build' else p.listed} as in the clean phase ({clean.ok if p.kind == 'build' else clean.listed}), "
                   f"lost {p.lost}, earned 429s {p.earned_429s}")
    return out


def verdict(bench: Bench) -> list[str]:
    """The targets: clean phases at >= 90% of the limit; no earned 429s; nothing lost, duplicated or wrong."""
    out = []
    for p in bench.phases:
        problems = []
        if p.error:
            problems.append(f"failed: {p.error}")
        if p.faults == 0 and p.share < TARGET_SHARE:
            problems.append(f"rate {p.share:.0%} of the limit (< {TARGET_SHARE:.0%})")
        if p.earned_429s and not p.demo:
            problems.append(f"{p.earned_429s} earned 429s")
        if p.lost or p.duplicates or p.extra or p.wrong:
            problems.append(f"lost {p.lost}, duplicated {p.duplicates}, extra {p.extra}, wrong {p.wrong}")
        if p.unexpected_errors:
            problems.append(f"{p.unexpected_errors} unexpected errors/ lines")
        if p.faults and p.faults_fired != p.faults:
            problems.append(f"only {p.faults_fired} of {p.faults} faults fired")
        if p.demo:
            problems = [x for x in problems if not x.startswith("rate ")]
            out.append(f"- {p.name}: demonstration, {p.earned_429s} earned 429s (expected: more than 0); "
                       + ("otherwise met" if not problems else "NOT met: " + "; ".join(problems)))
            continue
        out.append(f"- {p.name}: " + ("met" if not problems else "NOT met: " + "; ".join(problems)))
    return out


# ---------------------------------------------------------------------------------------------
# The run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000, help="records on the server to harvest (default: %(default)s)")
    parser.add_argument("--build-records", type=int, default=300, help="records to build (default: %(default)s)")
    parser.add_argument("--harvest-window", type=float, default=20.0,
                        help="the harvest server's rate-limit window in seconds (Zenodo: 60; default: %(default)s)")
    parser.add_argument("--build-window", type=float, default=10.0,
                        help="the build server's rate-limit window in seconds (Zenodo: 60; default: %(default)s)")
    parser.add_argument("--search-limit", type=int, default=ZENODO_SEARCH_PER_MIN,
                        help="search requests per window (default: %(default)s, Zenodo's per minute)")
    parser.add_argument("--other-limit", type=int, default=ZENODO_TOKEN_PER_MIN,
                        help="other requests per window (default: %(default)s, Zenodo's per minute with a token)")
    parser.add_argument("--pace", type=float, default=1.0,
                        help="share of the server's limits the client is told (default: %(default)s, the limits themselves)")
    parser.add_argument("--cap", type=int, default=10_000, help="the search deep-paging cap (Zenodo's: %(default)s)")
    parser.add_argument("--slice-cap", type=int, default=1_000,
                        help="a scaled cap for one more harvest that must slice by date (0: skip; default: %(default)s)")
    parser.add_argument("--workers", type=int, default=0,
                        help="also build with this many DirectRunner workers (multi_processing), with and without "
                        "--zenodo-workers (default: 0, skip)")
    parser.add_argument("--only", choices=["harvest", "build"], help="run only the harvests or only the builds")
    parser.add_argument("--seed", type=int, default=20251126)
    parser.add_argument("--keep", action="store_true", help="keep the working folder (outputs, phases.log)")
    args = parser.parse_args(argv)

    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, ROOT), *sys.argv[1:]])
    os.environ["ZENODO_ACCESS_TOKEN"] = TOKEN  # with a token, pages hold 100 and the other limit is 100/min
    work = Path(tempfile.mkdtemp(prefix="bench_zenodo-"))
    bench = Bench(args, work)
    started = time.perf_counter()
    print(f"# bench_zenodo\n\n`{command}`\n")
    print(f"Limits: {args.search_limit} search and {args.other_limit} other requests per window (Zenodo's per minute, with a "
          f"token); windows scaled from 60 s to {args.harvest_window:g} s for the harvests "
          f"({args.search_limit * 60 / args.harvest_window:g} searches/min) and {args.build_window:g} s for the builds "
          f"({args.other_limit * 60 / args.build_window:g} requests/min). The client is told {args.pace:.0%} of them. "
          f"Token set (page size 100). Working folder {work}.\n", flush=True)
    try:
        if args.only != "build":
            run_harvests(bench, args)
        if args.only != "harvest":
            run_builds(bench, args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - started

    print()
    facts = getattr(bench, "harvest_facts", None)
    if facts:
        print(f"Harvest server: {facts['records']:,} records, {facts['concepts']:,} concepts ({facts['older_versions']:,} older "
              f"versions that a latest-version search hides), {facts['gcube_latest']} gcube concepts excluded; cap {args.cap:,}"
              + (f", then {args.slice_cap:,}." if args.slice_cap else "."))
    if hasattr(bench, "build_bytes"):
        print(f"Build server: {args.build_records} records with zipballs of 3-5 standard-library files "
              f"({bench.build_bytes / 1e6:.1f} MB in all), plus 2 deleted records (expected to fail).")
    print()
    for kind, table in (("harvest", harvest_table), ("build", build_table)):
        phases = [p for p in bench.phases if p.kind == kind]
        if phases:
            print(table(phases))
            print()
    print(pacing_table(bench.phases, args.pace))
    print()
    for p in bench.phases:
        if p.notes:
            print(f"Note, {p.name}: " + " ".join(p.notes))
    print("\nTargets (clean phases >= 90% of the limit; 0 earned 429s; 0 lost, duplicated or wrong):")
    print("\n".join(verdict(bench)))
    print(f"\nFault costs (request span of the faulted phase minus the clean one's; the expected cost is the waits "
          f"the faults ask for: Retry-After {RETRY_AFTER:g} s, and 1-2 s of first backoff per other fault):")
    print("\n".join(fault_costs(bench)))
    print("\nFor 10,000 records against Zenodo's documented limits (requests per record as measured above):\n")
    print(extrapolate(bench, 10_000))
    print("\nCommands (SERVER = the loopback server's URL, WORK = the working folder):\n")
    for p in bench.phases:
        module = "pipelines.harvest_records" if p.kind == "harvest" else "pipelines.build_dataset"
        shown = [a.replace(str(work), "WORK") for a in p.argv]
        shown = ["SERVER" if a.startswith("http://127.0.0.1:") else a for a in shown]
        if "--ids" in shown:
            ids = shown[shown.index("--ids") + 1].split(",")
            shown[shown.index("--ids") + 1] = f"{ids[0]},...,{ids[-1]}"  # {len(ids)} ids
        print(f"- {p.name}: `ZENODO_ACCESS_TOKEN=… python -m {module} {' '.join(shlex.quote(a) for a in shown)}`")
    print(f"\nTotal {total:.0f} s.")
    failed = any("NOT met" in line for line in verdict(bench))
    return 1 if failed else 0


def run_harvests(bench: Bench, args: argparse.Namespace) -> None:
    records, expected, facts = harvest_records_for(args.records, args.seed)
    bench.harvest_facts = facts
    tiny = zipball("org-tool-0000000", stdlib_files()[:1])
    print(f"Harvest: {len(records):,} records on the server, {len(expected):,} expected ...", flush=True)
    with ZenodoServer() as server:
        time_serving(server)
        server.window = args.harvest_window
        server.limits = {"search": args.search_limit, "other": args.other_limit}
        for record, key in records:
            server.add_record(record, {key: tiny})
        bench.harvest(server, expected, f"1a. clean, cap {args.cap:,}", cap=args.cap)
        pages = math.ceil((len(expected) + facts["gcube_latest"]) / 100)
        faults = [("429", max(2, pages // 4), RETRY_AFTER), ("503", max(3, pages // 2), 0.0), ("drop", max(4, 3 * pages // 4), 0.0)]
        bench.harvest(server, expected, f"1b. 429 (Retry-After {RETRY_AFTER:g} s), 503, drop on search, cap {args.cap:,}",
                      cap=args.cap, faults=faults)
        if args.slice_cap:
            bench.harvest(server, expected, f"1c. clean, cap {args.slice_cap:,} (sliced by date)", cap=args.slice_cap)


def run_builds(bench: Bench, args: argparse.Namespace) -> None:
    sources = stdlib_files()
    print(f"Build: {args.build_records} records ...", flush=True)
    with ZenodoServer() as server:
        time_serving(server)
        server.window = args.build_window
        server.limits = {"search": args.search_limit, "other": args.other_limit}
        start = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
        ok_ids, total_bytes, archive_paths = [], 0, []
        for i in range(args.build_records):
            record_id = 2_000_001 + 2 * i
            chosen = [sources[(i * 7 + j * 13) % len(sources)] for j in range(3 + i % 3)]
            sha = hashlib.sha1(str(i).encode()).hexdigest()[:7]
            data = zipball(f"bench-repo{i}-{sha}", chosen)
            key = f"bench/repo{i}-v1.0.zip"
            server.add_record(github_record(record_id, record_id - 1, "bench", f"repo{i}", "v1.0",
                                            start + dt.timedelta(hours=i)), {key: data})
            ok_ids.append(record_id)
            total_bytes += len(data)
            archive_paths.append(server.file_url(record_id, key).removeprefix(server.url))
        bench.build_bytes = total_bytes
        failed_ids = [2_000_000 + 2 * args.build_records + 11, 2_000_000 + 2 * args.build_records + 13]
        for record_id in failed_ids:
            server.add_record(github_record(record_id, record_id - 1, "bench", f"gone{record_id}", "v1.0", start))
            server.delete_record(record_id)
        ids = ",".join(str(i) for i in sorted(ok_ids + failed_ids))

        bench.build(server, "2a. `--ids`, clean", ok_ids=ok_ids, failed_ids=failed_ids, source_argv=["--ids", ids])

        def nth_archive(k: int) -> str:
            return archive_paths[min(k, len(archive_paths) - 1)]

        def metadata(k: int) -> str:
            return f"/api/records/{ok_ids[min(k, len(ok_ids) - 1)]}"

        faults = [
            (nth_archive(10), "503", {}),
            (nth_archive(20), "drop", {}),
            (nth_archive(30), "truncate", {}),
            (nth_archive(40), "wrong-bytes", {}),
            (metadata(50), "429", {"seconds": RETRY_AFTER}),
            (metadata(60), "html", {"status": 502}),
        ]
        bench.build(server, "2b. `--ids`, faults: 503, drop, truncate, wrong bytes (md5) on archives; 429, HTML 502 on metadata",
                    ok_ids=ok_ids, failed_ids=failed_ids, source_argv=["--ids", ids], faults=faults)

        # 2c: the same records from a harvest of this server, so the build fetches archives only
        jsonl = bench.work / "build-records.jsonl"
        harvest_phase = Phase("2c. harvest for `--records-jsonl`", "harvest", "search")
        harvest_phase.argv = ["--output", str(jsonl), *bench.client_flags(server)]
        bench.drain(server)
        with stderr_to(bench.log):
            harvest_records.run(harvest_phase.argv)
        bench.build(server, "2c. `--records-jsonl` from a harvest", ok_ids=ok_ids, failed_ids=[],
                    source_argv=["--records-jsonl", str(jsonl)])
        if args.workers > 1:
            workers = ["--direct_num_workers", str(args.workers), "--direct_running_mode", "multi_processing"]
            bench.build(server, f"2d. `--ids`, {args.workers} workers, `--zenodo-workers {args.workers}`", ok_ids=ok_ids,
                        failed_ids=failed_ids, source_argv=["--ids", ids],
                        extra_argv=[*workers, "--zenodo-workers", str(args.workers)])
            bench.build(server, f"2e. `--ids`, {args.workers} workers, no `--zenodo-workers`", ok_ids=ok_ids,
                        failed_ids=failed_ids, source_argv=["--ids", ids], extra_argv=workers, demo=True)


if __name__ == "__main__":
    sys.exit(main())
