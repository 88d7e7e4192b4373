"""The Zenodo client against a real HTTP server on loopback (tests/zenodo_server.py), fault by fault.

Waiting is done on a fake clock wherever the test is about what the client decided to wait, and on the real
clock only where the server has to see the pacing (a few seconds in all).
"""

from __future__ import annotations

import hashlib
import pickle
import time

import pytest
import requests

from beam_zml.sources.zenodo import (
    PACING_MARGIN,
    RecordGone,
    ZenodoClient,
    ZenodoError,
    ZenodoSettings,
)
from beam_zml.testing.zenodo_server import TOKEN, ZenodoServer

ARCHIVE = bytes(range(256)) * 400  # 100 KiB: several chunks on the wire
ARCHIVE_KEY = "owner/repo-v1.0.zip"  # GitHub-made records keep a "/" in the key


class FakeTime:
    """A clock that only moves when the client sleeps, so waits are instant and recorded."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def server():
    with ZenodoServer() as running:
        running.add_record({"id": 2, "conceptrecid": "1", "title": "owner/repo: v1.0", "created": "2019-01-15T10:00:00+00:00",
                            "metadata": {"resource_type": {"type": "software"}}}, {ARCHIVE_KEY: ARCHIVE})
        yield running


@pytest.fixture
def fake_time():
    return FakeTime()


def make_client(server: ZenodoServer, fake_time: FakeTime | None = None, **settings) -> ZenodoClient:
    """A client of `server` that retries quickly and, with `fake_time`, never really waits."""
    settings = {"zenodo_url": server.url, "github_url": server.url, "requests_per_minute": 1e6,
                "search_requests_per_minute": 1e6, "max_attempts": 4, "backoff_initial": 0.01, "timeout": 5, **settings}
    if fake_time is None:
        return ZenodoClient(ZenodoSettings(**settings))
    return ZenodoClient(ZenodoSettings(**settings), sleep=fake_time.sleep, clock=fake_time.clock)


def archive_url(server: ZenodoServer) -> str:
    return server.file_url(2, ARCHIVE_KEY)


def md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


# --- faults: each call succeeds after the injected faults, or fails clearly after bounded attempts ---------

TRANSIENT_FAULTS = ["429", "429-reset", "500", "503", "html", "drop", "truncate", "slow"]


@pytest.mark.parametrize("fault", TRANSIENT_FAULTS)
def test_record_survives_transient_faults(server, fake_time, fault):
    server.inject("/api/records/2", fault, times=2, seconds=0.5)
    client = make_client(server, fake_time, timeout=0.2)

    assert client.record(2)["metadata"]["title"] == "owner/repo: v1.0"
    assert client.last_attempts == 3
    assert [entry.status for entry in server.requests_to("/api/records/2")][-1] == 200


@pytest.mark.parametrize("fault", TRANSIENT_FAULTS + ["wrong-bytes"])
def test_download_survives_transient_faults(server, fake_time, tmp_path, fault):
    server.inject(lambda path: path.endswith("/content"), fault, times=2, seconds=0.5)
    client = make_client(server, fake_time, timeout=0.2)

    written = client.download(archive_url(server), str(tmp_path / "repo.zip"), md5=md5(ARCHIVE))

    assert written == len(ARCHIVE) and (tmp_path / "repo.zip").read_bytes() == ARCHIVE
    assert client.last_attempts == 3
    assert [path.name for path in tmp_path.iterdir()] == ["repo.zip"]  # no partial file left behind


@pytest.mark.parametrize("fault, reason", [
    ("503", "HTTP 503"),
    ("html", "HTTP 502 from"),
    ("drop", "ConnectionError"),
    ("truncate", "ChunkedEncodingError"),
    ("slow", "Timeout"),
    ("wrong-bytes", "md5 mismatch"),
])
def test_download_gives_up_after_max_attempts_without_partial_files(server, fake_time, tmp_path, fault, reason):
    server.inject(lambda path: path.endswith("/content"), fault, times=10, seconds=0.5)
    client = make_client(server, fake_time, max_attempts=3, timeout=0.2)

    with pytest.raises(ZenodoError, match=reason) as failure:
        client.download(archive_url(server), str(tmp_path / "repo.zip"), md5=md5(ARCHIVE))

    assert failure.value.attempts == client.last_attempts == 3
    assert failure.value.url == archive_url(server)
    assert list(tmp_path.iterdir()) == []
    assert len(fake_time.sleeps) == 2  # backoff between attempts, none after the last


def test_html_error_page_is_reported_with_status_and_snippet(server, fake_time):
    server.inject("/api/records/2", "html", times=10, status=503)

    with pytest.raises(ZenodoError) as failure:
        make_client(server, fake_time, max_attempts=2).record(2)

    assert failure.value.status == 503
    assert str(failure.value).endswith("503 Service Temporarily Unavailable 503 Service Temporarily Unavailable nginx")


def test_backoff_grows_exponentially_and_is_capped(server, fake_time):
    server.inject("/api/records/2", "500", times=10)

    with pytest.raises(ZenodoError):
        make_client(server, fake_time, max_attempts=6, backoff_initial=1.0, backoff_max=5.0).record(2)

    assert len(fake_time.sleeps) == 5
    assert 1.0 <= fake_time.sleeps[0] <= 2.0 and 2.0 <= fake_time.sleeps[1] <= 3.0
    assert all(sleep <= 5.0 for sleep in fake_time.sleeps)


def test_429_waits_as_long_as_retry_after_says(server, fake_time):
    server.inject("/api/records/2", "429", times=1, seconds=7)

    make_client(server, fake_time).record(2)

    assert fake_time.sleeps == [7.0]
    assert server.injected_429s == 1 and server.earned_429s == 0


def test_429_without_retry_after_waits_until_rate_limit_reset(server, fake_time):
    server.inject("/api/records/2", "429-reset", times=1, seconds=20)

    make_client(server, fake_time).record(2)

    assert len(fake_time.sleeps) == 1 and 19.0 <= fake_time.sleeps[0] <= 21.0


@pytest.mark.parametrize("setup, status", [
    (lambda server: server.delete_record(2), 410),
    (lambda server: server.hide_record(2), 404),
    (lambda server: server.inject("/api/records/2", "410"), 410),
    (lambda server: server.inject("/api/records/2", "404"), 404),
])
def test_gone_records_fail_at_once(server, fake_time, setup, status):
    setup(server)

    with pytest.raises(RecordGone) as failure:
        make_client(server, fake_time).record(2)

    assert failure.value.status == status and failure.value.attempts == 1
    assert fake_time.sleeps == []


@pytest.mark.parametrize("fault, status", [("404", 404), ("410", 410)])
def test_missing_file_fails_at_once_without_partial_file(server, fake_time, tmp_path, fault, status):
    server.inject(lambda path: path.endswith("/content"), fault)

    with pytest.raises(RecordGone) as failure:
        make_client(server, fake_time).download(archive_url(server), str(tmp_path / "repo.zip"))

    assert failure.value.status == status and failure.value.attempts == 1
    assert list(tmp_path.iterdir()) == []


def test_download_over_the_size_cap_is_refused_without_retry(server, fake_time, tmp_path):
    client = make_client(server, fake_time, max_archive_bytes=1000)

    with pytest.raises(ZenodoError, match="archive larger than 1000 bytes") as failure:
        client.download(archive_url(server), str(tmp_path / "repo.zip"))

    assert failure.value.attempts == 1
    assert list(tmp_path.iterdir()) == []


def test_download_replaces_nothing_until_complete(server, fake_time, tmp_path):
    destination = tmp_path / "repo.zip"
    destination.write_bytes(b"previous")
    server.inject(lambda path: path.endswith("/content"), "truncate", times=10)

    with pytest.raises(ZenodoError):
        make_client(server, fake_time, max_attempts=2).download(archive_url(server), str(destination))

    assert destination.read_bytes() == b"previous"
    assert [path.name for path in tmp_path.iterdir()] == ["repo.zip"]


# --- records, redirects and GitHub -----------------------------------------------------------------------------

def test_concept_id_redirects_to_latest_version(server, fake_time):
    server.add_record({"id": 3, "conceptrecid": "1", "title": "owner/repo: v2.0"})

    assert make_client(server, fake_time).record(1)["id"] == "3"
    assert [(entry.path, entry.status) for entry in server.log] == [("/api/records/1", 302), ("/api/records/3", 200)]


def test_github_archive_follows_redirect_to_codeload(server, fake_time, tmp_path):
    server.add_github_archive("owner", "repo", "release/v1.0", b"PK zipball")
    url = f"{server.url}/owner/repo/archive/refs/tags/release/v1.0.zip"

    assert make_client(server, fake_time).download(url, str(tmp_path / "gh.zip")) == len(b"PK zipball")
    assert [(entry.path, entry.status) for entry in server.log] == [
        ("/owner/repo/archive/refs/tags/release/v1.0.zip", 302),
        ("/codeload/owner/repo/zip/refs/tags/release/v1.0", 200),
    ]


def test_record_and_search_ask_for_the_inveniordm_shape_and_return_it_as_it_is(server, fake_time, tmp_path):
    server.add_record({"id": 5, "title": "no files"}, {})
    server.add_record({"id": 6, "title": "old shape", "files": [{"filename": "a.zip", "filesize": 3}]})
    client = make_client(server, fake_time)

    assert client.record(5)["files"] == {"enabled": False, "entries": {}}
    assert client.record(6)["files"]["entries"]["a.zip"]["size"] == 3
    assert client.search({"q": "shape"})["hits"]["hits"][0]["id"] == "6"
    asked = {entry.headers.get("Accept") for entry in server.log}
    assert asked == {"application/vnd.inveniordm.v1+json"}, "an explicit Accept, so a new server default cannot switch it"
    assert client.download(archive_url(server), str(tmp_path / "a.zip")) == len(ARCHIVE)
    assert server.log[-1].headers.get("Accept") != "application/vnd.inveniordm.v1+json", "files are not asked for as JSON"


# --- the token ---------------------------------------------------------------------------------------------

def test_token_goes_only_to_zenodo_and_only_as_a_bearer_header(server, fake_time, tmp_path):
    server.add_github_archive("owner", "repo", "v1.0", b"PK zipball")
    client = make_client(server, fake_time, token=TOKEN)

    client.search({"q": "repo"})
    client.record(1)
    client.download(archive_url(server), str(tmp_path / "zenodo.zip"))
    client.download(f"{server.url}/owner/repo/archive/refs/tags/v1.0.zip", str(tmp_path / "github.zip"))

    zenodo = [entry for entry in server.log if entry.path.startswith("/api/")]
    github = [entry for entry in server.log if not entry.path.startswith("/api/")]
    assert len(zenodo) == 4 and len(github) == 2
    assert all(entry.headers.get("Authorization") == f"Bearer {TOKEN}" for entry in zenodo)
    assert all("Authorization" not in entry.headers for entry in github)
    assert all(TOKEN not in entry.target for entry in server.log)
    assert all(entry.headers["User-Agent"].startswith("beam_zml/") for entry in server.log)


def test_token_never_printed(server, fake_time):
    settings = ZenodoSettings(zenodo_url=server.url, token=TOKEN, max_attempts=2, backoff_initial=0.01)
    server.inject("/api/records/2", "503", times=10)

    with pytest.raises(ZenodoError) as failure:
        ZenodoClient(settings, sleep=fake_time.sleep, clock=fake_time.clock).record(2)

    assert TOKEN not in repr(settings) and TOKEN not in str(settings)
    assert TOKEN not in str(failure.value) and TOKEN not in repr(failure.value) and TOKEN not in failure.value.url


def test_settings_pickle_and_default_to_zenodo_numbers():
    anonymous, member = ZenodoSettings(), ZenodoSettings(token="t")

    assert pickle.loads(pickle.dumps(member)) == member
    assert (anonymous.effective_requests_per_minute, anonymous.effective_page_size) == (60, 25)
    assert (member.effective_requests_per_minute, member.effective_page_size) == (100, 100)
    with pytest.raises(ValueError):
        ZenodoSettings(workers=0)


# --- search ------------------------------------------------------------------------------------------------

def test_search_page_size_defaults_to_the_most_allowed(server, fake_time):
    anonymous, member = make_client(server, fake_time), make_client(server, fake_time, token=TOKEN)
    anonymous.search({"q": "repo"})
    member.search({"q": "repo"})

    assert (anonymous.page_size, member.page_size) == (25, 100)

    assert [entry.query["size"] for entry in server.log] == [["25"], ["100"]]
    assert [entry.status for entry in server.log] == [200, 200]


def test_search_over_the_page_size_limit_is_a_validation_error_not_retried(server, fake_time):
    with pytest.raises(ZenodoError, match="A validation error occurred") as failure:
        make_client(server, fake_time).search({"size": 100})

    assert failure.value.status == 400 and failure.value.attempts == 1


def test_search_filters_latest_versions_by_date_type_and_text(server, fake_time):
    server.add_record({"id": 3, "conceptrecid": "1", "title": "owner/repo: v2.0", "created": "2019-02-10T00:00:00+00:00",
                       "metadata": {"resource_type": {"type": "software"}}})
    server.add_record({"id": 4, "title": "A dataset", "created": "2019-01-20T00:00:00+00:00",
                       "metadata": {"resource_type": {"type": "dataset"}}})
    client = make_client(server, fake_time)

    def ids(**params) -> list[int]:
        return [int(hit["id"]) for hit in client.search(params)["hits"]["hits"]]

    assert ids(sort="oldest") == [4, 3]  # only the latest version of concept 1
    assert ids(sort="oldest", all_versions="true") == [2, 4, 3]
    assert ids(sort="newest", all_versions="true") == [3, 4, 2]
    assert ids(type="software", all_versions="true", sort="oldest") == [2, 3]
    assert ids(q="created:[2019-01-01 TO 2019-02-01}", all_versions="true", sort="oldest") == [2, 4]
    assert ids(q="created:[2019-01-20T00:00:00 TO *] AND REPO", all_versions="true") == [3]
    with pytest.raises(ZenodoError, match="HTTP 400"):
        client.search({"sort": "sideways"})


def test_links_next_walks_into_the_deep_paging_cap_but_date_slices_do_not(server, fake_time):
    server.max_results = 50
    for day in range(1, 31):
        for hour in range(2):
            server.add_record({"id": 100 + day * 2 + hour, "title": "t", "created": f"2020-04-{day:02}T{hour:02}:00:00+00:00"})
    client = make_client(server, fake_time)

    second = client.search({"q": "created:[2020-01-01 TO 2021-01-01}", "sort": "oldest", "page": 2})
    assert second["hits"]["total"] == 60 and "page=3" in second["links"]["next"]
    with pytest.raises(ZenodoError, match="Invalid querystring parameters") as failure:
        client.search({"q": "created:[2020-01-01 TO 2021-01-01}", "sort": "oldest", "page": 3})
    assert failure.value.attempts == 1

    halves = ["created:[2020-04-01 TO 2020-04-16}", "created:[2020-04-16 TO 2020-05-01}"]
    seen = [int(hit["id"]) for q in halves for page in (1, 2)
            for hit in client.search({"q": q, "sort": "oldest", "page": page})["hits"]["hits"]]
    assert sorted(seen) == list(range(102, 162))


# --- pacing ------------------------------------------------------------------------------------------------

def test_requests_are_spaced_by_the_rate_divided_across_workers(server, fake_time):
    server.limits = None
    client = make_client(server, fake_time, requests_per_minute=120, search_requests_per_minute=30, workers=2)

    for _ in range(3):
        client.record(2)
    for _ in range(3):
        client.search({})

    # 60/(120/2) s apart, and searches 60/(30/2) s apart, each at 97% of its share (PACING_MARGIN)
    assert fake_time.sleeps == pytest.approx([1.0 / PACING_MARGIN] * 2 + [4.0 / PACING_MARGIN] * 2)


def test_paced_client_stays_under_the_servers_limit(server):
    server.limits, server.window = {"other": 11}, 1.0  # the client's 600/min, with room for arrival jitter
    client = make_client(server, requests_per_minute=600)

    for _ in range(30):
        client.record(2)

    times = [entry.time for entry in server.log]
    assert server.earned_429s == 0 and all(entry.status == 200 for entry in server.log)
    assert times[-1] - times[0] >= 29 * 0.1 - 0.05
    assert all(sum(start <= t < start + 0.95 for t in times) <= 10 for start in times)  # 10 a second, give or take jitter


def test_client_waits_for_reset_when_remaining_hits_zero(server):
    server.limits, server.window = {"other": 3}, 1.0
    client = make_client(server)

    started = time.monotonic()
    for _ in range(4):
        client.record(2)

    assert server.earned_429s == 0
    assert time.monotonic() - started >= 1.0  # the fourth waited for the first to leave the window
    assert [entry.status for entry in server.log] == [200] * 4


def test_server_counts_earned_429s_apart_from_injected_ones(server):
    server.limits = {"other": 2}
    server.inject("/api/records/2", "429", seconds=3)

    responses = [requests.get(f"{server.url}/api/records/2", timeout=5) for _ in range(4)]

    assert [response.status_code for response in responses] == [429, 200, 429, 429]  # an injected 429 still counts
    assert [response.headers["X-RateLimit-Remaining"] for response in responses] == ["1", "0", "0", "0"]
    assert responses[0].headers["Retry-After"] == "3" and responses[3].headers["Retry-After"] == "60"
    assert (server.injected_429s, server.earned_429s) == (1, 2)
