"""Zenodo and GitHub as sources, end to end, against a real server on loopback.

The rules: README.md#records-from-zenodo, docs/design.md#faults-and-limits."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from beam_zml.consume.dataset import read_errors, read_manifest, read_rows
from beam_zml.testing.zenodo_server import TOKEN, ZenodoServer, zipball
from pipelines import build_dataset, harvest_records

SOURCE = b"import numpy as np\n\n\ndef mean(values):\n    return np.mean(values)\n"


def github_record(record_id: int, owner: str, repo: str, tag: str, *, created: str | None = None, title: str | None = None) -> dict:
    """A record as the GitHub integration makes it (ZENODO.md)."""
    record = {
        "id": record_id,
        "conceptrecid": str(record_id - 1000),
        "doi": f"10.5281/zenodo.{record_id}",
        "title": title or f"{owner}/{repo}: {tag}",
        "metadata": {
            "title": title or f"{owner}/{repo}: {tag}",
            "version": tag,
            "resource_type": {"type": "software", "title": "Software"},
            "creators": [{"name": "Doe, Jane", "affiliation": None}],
            "license": {"id": "mit"},
            "related_identifiers": [
                {
                    "identifier": f"https://github.com/{owner}/{repo}/tree/{tag}",
                    "relation": "isSupplementTo",
                    "scheme": "url",
                    "resource_type": "software",
                }
            ],
        },
    }
    if created:
        record["created"] = created
    return record


def plain_record(record_id: int, title: str) -> dict:
    return {"id": record_id, "conceptrecid": str(record_id - 1000), "title": title,
            "metadata": {"title": title, "resource_type": {"type": "software"}}}


@pytest.fixture
def server():
    with ZenodoServer() as server:
        server.window = 1.0  # Zenodo's limits per second instead of per minute: the pacing is still real
        server.limits = {"search": 100, "other": 100}
        yield server


def fast(server: ZenodoServer) -> list[str]:
    return [
        "--zenodo-url", server.url, "--github-url", server.url,
        "--requests-per-minute", "3000", "--search-requests-per-minute", "3000",
        "--retry-initial-seconds", "0.05", "--requests-per-hour", "180000",
    ]


def add_records(server: ZenodoServer) -> dict[str, int]:
    """One record per way a record can get or fail to get its code."""
    repo_zip = zipball("owner-repo-abc1234", {"src/stats.py": SOURCE, "README.md": b"# repo\n"})
    server.add_record(github_record(101, "owner", "repo", "v1"), {"owner/repo-v1.zip": repo_zip})
    server.add_record(github_record(102, "owner", "tool", "release/v2"))
    server.add_github_archive("owner", "tool", "release/v2", zipball("owner-tool-def5678", {"tool.py": SOURCE}))
    server.add_record(plain_record(103, "Analysis scripts"), {"analysis.py": SOURCE, "data/notes.txt": b"notes\n"})
    server.add_record(plain_record(104, "Deleted"))
    server.delete_record(104)
    server.add_record(plain_record(105, "Nothing to image"))
    server.add_record(plain_record(106, "Not an archive"), {"code.zip": b"this is not a zip\n"})
    server.add_record(github_record(107, "owner", "mirror", "v3"), {"owner/mirror-v3.zip": repo_zip})
    server.add_github_archive("owner", "mirror", "v3", zipball("owner-mirror-0a0a0a0", {"mirror.py": SOURCE}))
    server.inject(server.file_url(107, "owner/mirror-v3.zip").removeprefix(server.url), "wrong-bytes", times=100)
    server.add_record(github_record(108, "owner", "flaky", "v1"), {"owner/flaky-v1.zip": repo_zip})
    archive_108 = server.file_url(108, "owner/flaky-v1.zip").removeprefix(server.url)
    server.inject(archive_108, "503", times=2)
    server.inject(archive_108, "drop")
    server.inject(archive_108, "truncate")
    server.add_record(github_record(109, "owner", "busy", "v1"), {"owner/busy-v1.zip": repo_zip})
    server.inject("/api/records/109", "429", seconds=0.2)
    server.inject("/api/records/109", "html", status=502)
    server.inject("/api/records/109", "slow", seconds=0.3)
    server.add_record(github_record(110, "gcube-team", "gcube-core", "v1"), {"gcube/core.zip": repo_zip})
    return {"ok": [101, 102, 103, 107, 108, 109], "failed": [104, 105, 106], "excluded": [110]}


def test_build_from_ids_gets_code_from_each_source_and_loses_nothing(server, tmp_path, monkeypatch):
    expected = add_records(server)
    monkeypatch.setenv("ZENODO_ACCESS_TOKEN", TOKEN)
    output = tmp_path / "out"
    ids = ",".join(str(i) for i in range(101, 111))
    build_dataset.run(["--ids", ids, "--output", str(output), "--exclude-pattern", "gcube", *fast(server)])

    rows = {row["record_id"]: row for row in read_rows(str(output), "records")}
    assert sorted(rows) == sorted(expected["ok"] + expected["failed"]), "each record once, excluded ones dropped"
    assert {i: rows[i]["status"] for i in rows} == {**{i: "ok" for i in expected["ok"]}, **{i: "failed" for i in expected["failed"]}}
    assert {i: rows[i]["source"] for i in expected["ok"]} == {
        101: "zenodo_archive", 102: "github", 103: "zenodo_files", 107: "github", 108: "zenodo_archive", 109: "zenodo_archive"
    }
    assert "Record deleted" in rows[104]["error"] or "410" in rows[104]["error"]
    assert "no source" in rows[105]["error"]
    assert "not an archive" in rows[106]["error"]
    assert rows[101]["github_url"] == "https://github.com/owner/repo/tree/v1" and rows[101]["license"] == "mit"
    assert json.loads(rows[101]["raw_json"])["id"] == "101"  # as the API returned it: InvenioRDM's shape
    assert rows[102]["archive_url"] == f"{server.url}/owner/tool/archive/refs/tags/release/v2.zip"

    files = {(row["record_id"], row["path"]): row for row in read_rows(str(output), "files")}
    assert files[(101, "src/stats.py")]["status"] == "imaged"  # the zipball's top folder is gone
    assert files[(103, "data/notes.txt")]["status"] == "imaged"
    assert files[(107, "mirror.py")]["status"] == "imaged"

    errors = list(read_errors(str(output)))
    assert {e["record_id"] for e in errors if e["stage"] == "list_files"} == set(expected["failed"])
    md5_errors = [e for e in errors if e["record_id"] == 107]
    assert len(md5_errors) == 1 and "md5" in md5_errors[0]["message"]
    assert read_manifest(str(output))["counts"]["records"] == {"total": 9, "ok": 6, "failed": 3}

    for entry in server.log:  # the token: a Bearer header to Zenodo only, never in a URL
        assert TOKEN not in entry.target
        authorization = entry.headers.get("Authorization")
        assert authorization == (f"Bearer {TOKEN}" if entry.path.startswith("/api/") else None), entry.path
    for path in output.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    assert server.earned_429s == 0


def test_resume_builds_only_the_missing_records(server, tmp_path):
    add_records(server)
    output = str(tmp_path / "out")
    build_dataset.run(["--ids", "101,102", "--output", output, *fast(server)])
    first = read_manifest(output)
    server.log.clear()
    build_dataset.run(["--ids", "101,102,103", "--output", output, "--resume", *fast(server)])

    fetched = {entry.path for entry in server.log if entry.path.startswith("/api/records/")}
    assert "/api/records/101" not in fetched and "/api/records/102" not in fetched and "/api/records/103" in fetched
    manifest = read_manifest(output)
    assert sorted(row["record_id"] for row in read_rows(output, "records")) == [101, 102, 103]
    assert manifest["counts"]["records"]["total"] == 3
    assert manifest["counts"]["images"] == first["counts"]["images"] + 2  # analysis.py and notes.txt
    assert len(manifest["runs"]) == 2 and all(first["shards"][k][0] in manifest["shards"][k] for k in first["shards"])


def test_harvest_past_the_search_cap_lists_every_record_once(server, tmp_path):
    server.max_results = 50  # Zenodo's cap is 10,000; the slicing is the same
    start = dt.datetime(2019, 1, 1, tzinfo=dt.timezone.utc)
    for i in range(180):
        created = (start + dt.timedelta(hours=7 * i)).isoformat()
        server.add_record(github_record(2000 + i, "org", f"r{i}", "v1", created=created))
    server.add_record(github_record(3000, "gcube-team", "gcube", "v1", created=start.isoformat()))
    output = tmp_path / "records.jsonl"
    command = ["--output", str(output), "--exclude-pattern", "gcube", "--search-cap", "50", *fast(server)]
    written = harvest_records.run(command)

    ids = [int(json.loads(line)["id"]) for line in output.read_text().splitlines()]
    assert written == len(ids) == 180 and sorted(ids) == list(range(2000, 2180))
    searches = [entry for entry in server.log if entry.path == "/api/records"]
    assert all(entry.status == 200 for entry in searches), "no request walked into the deep-paging cap"
    assert max(int(e.query["page"][0]) * int(e.query["size"][0]) for e in searches) <= 50 + 24


def test_build_from_harvested_jsonl(server, tmp_path):
    add_records(server)
    harvested = tmp_path / "records.jsonl"
    harvest_records.run(["--output", str(harvested), "--query", "owner", *fast(server)])
    output = str(tmp_path / "out")
    build_dataset.run(["--records-jsonl", str(harvested), "--output", output, *fast(server)])
    rows = {row["record_id"]: row["status"] for row in read_rows(output, "records")}
    assert rows == {101: "ok", 102: "ok", 107: "ok", 108: "ok", 109: "ok"}
    assert not any(entry.path in ("/api/records/101", "/api/records/102") for entry in server.log), "metadata came from the file"


def test_max_records_and_search_from_build(server, tmp_path):
    add_records(server)
    output = str(tmp_path / "out")
    build_dataset.run(["--query", "owner", "--max-records", "2", "--output", output, *fast(server)])
    assert len(list(read_rows(output, "records"))) == 2


def test_token_file_is_read_once_and_used_for_the_search(server, tmp_path):
    add_records(server)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    output = str(tmp_path / "out")
    build_dataset.run(["--query", "owner", "--max-records", "1", "--output", output,
                       "--zenodo-token-file", str(token_file), *fast(server)])
    searches = [entry for entry in server.log if entry.path == "/api/records"]
    assert searches and all(entry.headers.get("Authorization") == f"Bearer {TOKEN}" for entry in searches)
    assert searches[0].query["size"] == ["100"]  # a token's page size
