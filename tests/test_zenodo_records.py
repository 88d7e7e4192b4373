"""Zenodo as it really is, through whole builds against the loopback server (README.md#records-from-zenodo, docs/design.md#faults-and-limits).

Each test runs `zml build` (pipelines.build_dataset.run) on the DirectRunner and reads the dataset back.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import string
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from beam_zml.consume.dataset import read_errors, read_manifest, read_rows
from beam_zml.testing.zenodo_server import ZenodoServer, to_inveniordm
from beam_zml.transforms.read_records import parse_record_line, zenodo_source
from pipelines import build_dataset
from tests.test_zenodo_build import SOURCE, fast, github_record, plain_record, zipball

DATA = Path(__file__).parent / "data"
RDM = "application/vnd.inveniordm.v1+json"


@pytest.fixture
def server():
    with ZenodoServer() as server:
        server.window = 1.0
        server.limits = {"search": 100, "other": 100}
        yield server


def tarball(top: str | None, files: dict[str, bytes]) -> bytes:
    """A .tar.gz as GNU tar writes one: byte names, a folder entry, regular members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.GNU_FORMAT) as archive:
        if top:
            folder = tarfile.TarInfo(top)
            folder.type, folder.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(folder)
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}" if top else name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build(output: Path, server: ZenodoServer, *args: str) -> dict[int, dict]:
    build_dataset.run([*args, "--output", str(output), *fast(server)])
    return {row["record_id"]: row for row in read_rows(str(output), "records")}


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


# --- 1. one record can never stop the run --------------------------------------------------------------------------

def real_record(server: ZenodoServer, record_id: int) -> dict:
    """The legacy fixture record, served by `server` (its file links point there), as the API returns it."""
    record = json.loads((DATA / "zenodo_record_legacy.json").read_text())
    record.update(id=record_id, conceptrecid=str(record_id - 1), files=[])
    record.pop("links")
    return server.add_record(record, {"example-lab/spectra-v2.1.0.zip": zipball("example-lab-spectra-1a2b3c4", {"fit.py": SOURCE})})


def test_an_object_where_a_string_was_expected_fails_only_its_record(server, tmp_path):
    """The reported case (related_identifiers[].resource_type an object) and variants in other fields."""
    records = [real_record(server, 301 + i) for i in range(4)]
    records[0]["metadata"]["related_identifiers"][0]["resource_type"] = {"id": "software"}  # InvenioRDM's way: understood
    records[1]["metadata"]["related_identifiers"][1]["resource_type"] = ["software"]  # no known shape
    records[2]["metadata"]["creators"][0]["affiliation"] = {"name": "Example University"}
    rows = build(tmp_path / "out", server, "--records-jsonl", str(write_jsonl(tmp_path / "in.jsonl", records)))

    assert {i: rows[i]["status"] for i in rows} == {301: "ok", 302: "failed", 303: "failed", 304: "ok"}
    assert "related_identifiers" in rows[302]["error"] and "creators" in rows[303]["error"]
    assert rows[302]["title"] == records[1]["metadata"]["title"] and rows[302]["related_identifiers"] == []  # the rest is kept
    assert rows[301]["related_identifiers"][0]["resource_type"] == "software"
    files = {(row["record_id"], row["path"]) for row in read_rows(str(tmp_path / "out"), "files")}
    assert (301, "fit.py") in files and not any(record_id in (302, 303) for record_id, _ in files)
    assert read_manifest(str(tmp_path / "out"))["counts"]["records"] == {"total": 4, "ok": 2, "failed": 2}


TEXT = st.text(alphabet=string.ascii_letters + string.digits + " -_./", max_size=8)  # never a URL to another host
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


def json_paths(value, prefix=()) -> list[tuple]:
    """Every path to a value inside a JSON document."""
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            paths += json_paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += json_paths(item, prefix + (index,))
    return paths


def replaced(document, path: tuple, value):
    document = copy.deepcopy(document)
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return document


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate])  # builds take seconds: no shrinking
@given(data=st.data())
def test_random_types_in_any_field_never_stop_a_build(server, tmp_path_factory, data):
    base = real_record(server, 401)
    both_shapes = [base, to_inveniordm(base)]
    paths = [(shape, path) for shape, document in enumerate(both_shapes) for path in json_paths(document)]
    records = []
    for index in range(6):
        shape, path = data.draw(st.sampled_from(paths), label="field")
        record = replaced(both_shapes[shape], path, data.draw(JSON_VALUES, label="value"))
        if path != ("id",):
            record["id"] = 500 + index if shape == 0 else str(500 + index)
        record["fuzz_index"] = index  # no two alike, whatever was drawn
        records.append(record)
    records.append(["not", "a", "record"])
    records.append(dict(records[0], title="the same id twice: one row"))
    note(json.dumps(records, default=repr)[:5000])
    output = tmp_path_factory.mktemp("fuzz") / "out"
    lines = write_jsonl(output.parent / "in.jsonl", records)
    lines.write_text(lines.read_text() + "{not json\n")
    build_dataset.run(["--records-jsonl", str(lines), "--output", str(output), *fast(server)])

    rows = list(read_rows(str(output), "records"))
    counts = read_manifest(str(output))["counts"]["records"]
    ids = {zenodo_source(parse_record_line(line)).record_id for line in lines.read_text().splitlines()}  # ids may collide
    assert len(rows) == counts["total"] == len(ids) == counts["ok"] + counts["failed"]
    assert {row["record_id"] for row in rows} == ids
    assert all(row["status"] == "failed" and row["error"] for row in rows if row["status"] != "ok")
    assert sum(row["status"] == "failed" for row in rows) >= 2  # the two lines that are no record
    assert all(isinstance(error["message"], str) for error in read_errors(str(output)))


# --- 2. a record's code is all of its files ------------------------------------------------------------------------

def test_every_file_of_a_record_is_read(server, tmp_path):
    server.add_record(plain_record(601, "Two archives"), {
        "model-code.zip": zipball("model-code-main", {"model.py": SOURCE, "README.md": b"# model\n"}),
        "preprocessing.tar.gz": tarball("preprocessing", {"clean.py": SOURCE}),
    })
    server.add_record(plain_record(602, "An archive and loose files"), {
        "paper-code.zip": zipball("paper-code-v1", {"analysis/fit.py": SOURCE, "README.md": b"# old readme\n"}),
        "../outside.py": SOURCE,  # a key that would escape: a row, never downloaded
        "run_analysis.py": SOURCE,
        "README.md": b"# How to run\n",
        "data/large.csv": b"a,b\n" * 30_000,  # over --max-file-bytes: listed, never downloaded
    })
    server.add_record(plain_record(603, "A broken archive among good files"), {
        "code.tar.gz": b"\x1f\x8b\x08 this is not gzip",
        "good.zip": zipball("good", {"ok.py": SOURCE}),
        "script.py": SOURCE,
    })
    server.add_record(github_record(604, "owner", "fallback", "v1"), {"broken.zip": b"PK\x03\x04 cut"})
    server.add_github_archive("owner", "fallback", "v1", zipball("owner-fallback-abc", {"gh.py": SOURCE}))
    rows = build(tmp_path / "out", server, "--ids", "601,602,603,604")

    files = {(row["record_id"], row["path"]): row for row in read_rows(str(tmp_path / "out"), "files")}
    assert {path for record_id, path in files if record_id == 601} == {
        "model-code/model.py", "model-code/README.md", "preprocessing/clean.py"}
    assert {path for record_id, path in files if record_id == 602} == {
        "analysis/fit.py", "run_analysis.py", "README.md", "data/large.csv", "../outside.py"}
    readmes = [row for row in read_rows(str(tmp_path / "out"), "files") if (row["record_id"], row["path"]) == (602, "README.md")]
    assert sorted((row["reason"] or "imaged", row["status"]) for row in readmes) == [("duplicate_path", "skipped"), ("imaged", "imaged")]
    assert files[(602, "../outside.py")]["reason"] == "unsafe_path"
    assert [node["path"] for node in rows[602]["tree"] if node["kind"] == "file"] == [
        "README.md", "analysis/fit.py", "data/large.csv", "run_analysis.py"]
    assert files[(602, "run_analysis.py")]["status"] == "imaged"
    assert files[(602, "data/large.csv")]["reason"] == "too_large" and files[(602, "data/large.csv")]["size"] == 120_000
    assert not server.requests_to("/api/records/602/files/data/large.csv/content"), "a too-large loose file is not downloaded"
    assert {path: files[(603, path)]["reason"] for record_id, path in files if record_id == 603} == {
        "code.tar.gz": "archive_error", "good/ok.py": None, "script.py": None}
    assert {i: (rows[i]["status"], rows[i]["source"]) for i in rows} == {
        601: ("ok", "zenodo_archive"), 602: ("ok", "zenodo_archive"), 603: ("ok", "zenodo_archive"), 604: ("ok", "github")}
    assert files[(604, "gh.py")]["status"] == "imaged" and files[(604, "broken.zip")]["reason"] == "archive_error"
    errors = [(e["record_id"], e["message"]) for e in read_errors(str(tmp_path / "out"))]
    assert [r for r, m in errors if "code.tar.gz" in m] == [603] and [r for r, m in errors if "broken.zip" in m] == [604]


def test_restricted_record_falls_back_to_github_or_fails_saying_why(server, tmp_path):
    server.add_record(github_record(611, "owner", "closed", "v1"), {"owner/closed-v1.zip": b"x"}, restricted=True)
    server.add_github_archive("owner", "closed", "v1", zipball("owner-closed-abc", {"open.py": SOURCE}))
    server.add_record(plain_record(612, "Closed"), {"code.zip": b"x"}, restricted=True)
    rows = build(tmp_path / "out", server, "--ids", "611,612")
    assert (rows[611]["status"], rows[611]["source"], rows[611]["access_right"]) == ("ok", "github", "restricted")
    assert rows[612]["status"] == "failed" and "no files (access: restricted)" in rows[612]["error"]


# --- 3. both JSON shapes make the same row ---------------------------------------------------------------------------

def test_both_json_shapes_make_the_same_row(server, tmp_path):
    record = real_record(server, 701)
    legacy = write_jsonl(tmp_path / "legacy.jsonl", [record])
    rdm = write_jsonl(tmp_path / "rdm.jsonl", [to_inveniordm(record)])
    from_legacy = build(tmp_path / "a", server, "--records-jsonl", str(legacy))[701]
    from_rdm = build(tmp_path / "b", server, "--records-jsonl", str(rdm))[701]
    from_api = build(tmp_path / "c", server, "--ids", "701")[701]  # the client asks for InvenioRDM's shape
    assert server.requests_to("/api/records/701")[0].headers["Accept"] == RDM
    for row in (from_legacy, from_rdm, from_api):
        row.pop("raw_json")
    assert from_legacy == from_rdm == from_api
    assert from_legacy["creators"][0] == {"name": "Doe, Jane", "affiliation": "Example University", "orcid": "0000-0002-1825-0097"}
    assert (from_legacy["license"], from_legacy["keywords"], from_legacy["concept_id"]) == ("bsd-3-clause", ["spectroscopy", "python"], 700)
    assert from_legacy["github_url"] == "https://github.com/example-lab/spectra/tree/v2.1.0"


def test_inveniordm_record_without_files_gets_its_code_from_github(server, tmp_path):
    """The issue's minimal record: its GitHub link was lost, so the fallback never happened."""
    record = {"id": "90003", "parent": {"id": "90000"}, "pids": {"doi": {"identifier": "10.5281/zenodo.90003"}},
              "metadata": {"title": "example/repo: v1.0", "publication_date": "2024", "version": "v1.0",
                           "creators": [{"person_or_org": {"name": "Doe, Jane", "type": "personal", "identifiers": [
                               {"scheme": "orcid", "identifier": "0000-0002-1825-0097"}]},
                               "affiliations": [{"name": "Example University"}]}],
                           "rights": [{"id": "mit"}], "subjects": [{"subject": "testing"}],
                           "related_identifiers": [{"identifier": "https://github.com/example/repo/tree/v1.0", "scheme": "url",
                                                    "relation_type": {"id": "issupplementto"}, "resource_type": {"id": "software"}}]},
              "files": {"enabled": False}}
    server.add_github_archive("example", "repo", "v1.0", zipball("example-repo-0a1b2c3", {"main.py": SOURCE}))
    rows = build(tmp_path / "out", server, "--records-jsonl", str(write_jsonl(tmp_path / "in.jsonl", [record])))
    row = rows[90003]
    assert (row["status"], row["source"], row["concept_id"], row["doi"], row["license"]) == ("ok", "github", 90000, "10.5281/zenodo.90003", "mit")
    assert row["creators"] == [{"name": "Doe, Jane", "affiliation": "Example University", "orcid": "0000-0002-1825-0097"}]
    assert row["keywords"] == ["testing"] and row["related_identifiers"][0]["relation"] == "isSupplementTo"


# --- 4. file links and checksums as they were and are ----------------------------------------------------------------

def test_file_links_and_checksums_of_saved_records(server, tmp_path):
    good = zipball("top", {"a.py": SOURCE})
    migration = server.add_record(plain_record(801, "Saved at the migration"), {"code (v1).zip": good}, file_style="migration")
    server.add_record(plain_record(802, "Migration, wrong bytes"), {"code.zip": good}, file_style="migration")
    server.inject("/records/802/files/code.zip", "wrong-bytes", times=100)
    old = server.add_record(plain_record(803, "Saved before 2023"), {"lib/code.zip": good}, file_style="pre-2023")
    assert migration["files"][0]["checksum"] == hashlib.md5(good).hexdigest()  # bare hex
    assert "code%20(v1).zip" in migration["files"][0]["links"]["download"], "Zenodo keeps () unescaped"
    rows = build(tmp_path / "out", server, "--records-jsonl",
                 str(write_jsonl(tmp_path / "in.jsonl", [migration, server.records[802], old])))

    assert (rows[801]["status"], rows[801]["archive_url"]) == ("ok", migration["files"][0]["links"]["download"])
    assert not server.requests_to(migration["files"][0]["links"]["self"].removeprefix(server.url)), "links.download preferred"
    assert rows[802]["status"] == "failed" and "md5 mismatch" in rows[802]["error"], "a bare checksum is an md5"
    assert rows[803]["status"] == "ok" and server.requests_to("/api/records/803/files/lib/code.zip/content")
    old_link = old["files"][0]["links"]["self"].removeprefix(server.url)
    assert [entry.status for entry in server.requests_to(old_link)] == [404]


# --- the loopback server imitates the real service -------------------------------------------------------------------

def test_server_answers_as_zenodo_does(server, tmp_path):
    import requests

    server.add_record(github_record(901, "owner", "repo", "v1"), {"owner/repo (x).zip": zipball("t", {"a.py": SOURCE})})
    server.add_github_archive("owner", "repo", "v1", b"zip")
    record = requests.get(f"{server.url}/api/records/901").json()
    assert record["files"][0]["links"]["self"].endswith("/files/owner/repo%20(x).zip/content")
    assert {"self", "html", "doi", "badge", "files", "bucket", "latest", "latest_html", "versions"} <= set(record["links"])
    response = requests.get(f"{server.url}/api/records", params={"q": "owner"}, headers={"Accept": RDM})
    assert response.headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in response.headers
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"} <= set(response.headers)
    assert response.json()["hits"]["hits"][0]["parent"] == {"id": "-99"}
    redirect = requests.get(f"{server.url}/owner/repo/archive/refs/tags/v1.zip", allow_redirects=False)
    assert redirect.status_code == 302 and redirect.headers["Location"].startswith("http://localhost:")


# --- 5. Zenodo's monthly export as a source --------------------------------------------------------------------------

def make_export(path: Path, server: ZenodoServer | None = None, *, concepts: int = 120) -> dict:
    """A records-json.tar.gz as Zenodo's exporter writes it: one InvenioRDM JSON per record, every version.

    Each concept has 1 to 3 versions (the last is_latest); every fifth is a dataset, every seventh a
    publication-article; versions are created a day apart from 2020-01-01. Returns what a filter should give.
    """
    buffer = io.BytesIO()
    latest_software, all_software = [], []
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        record_id = 10_000
        for concept in range(concepts):
            kind = "dataset" if concept % 5 == 0 else "publication-article" if concept % 7 == 0 else "software"
            versions = 1 + concept % 3
            for version in range(versions):
                record_id += 1
                legacy = github_record(record_id, "org", f"repo{concept}", f"v{version}",
                                       created=f"2020-{1 + concept % 12:02d}-{1 + version:02d}T10:00:00+00:00")
                legacy["conceptrecid"] = str(90_000 + concept)
                legacy["metadata"]["resource_type"] = {"type": kind.split("-")[0], "subtype": kind.split("-")[1]} if "-" in kind else {"type": kind}
                if server is not None and kind == "software":
                    legacy = server.add_record(legacy, {f"org/repo{concept}-v{version}.zip": zipball(f"org-repo{concept}", {"m.py": SOURCE})})
                record = to_inveniordm(legacy, is_latest=version == versions - 1)
                if server is None:
                    record["files"] = {"enabled": True, "entries": {"code.zip": {"key": "code.zip", "size": 10, "checksum": "md5:" + "0" * 32}}}
                data = json.dumps(record).encode()
                info = tarfile.TarInfo(f"records/{record_id}.json")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                if kind == "software":
                    all_software.append(record_id)
                    if version == versions - 1:
                        latest_software.append(record_id)
    path.write_bytes(buffer.getvalue())
    return {"latest_software": latest_software, "all_software": all_software, "records": record_id - 10_000}


def harvested_ids(path: Path) -> list[int]:
    return [int(json.loads(line)["id"]) for line in path.read_text().splitlines()]


def test_harvest_from_an_export_applies_the_search_filters(tmp_path):
    from pipelines import harvest_records

    export = tmp_path / "records-json.tar.gz"
    expected = make_export(export)
    assert expected["records"] > 200 and len(expected["all_software"]) > len(expected["latest_software"])
    out = tmp_path / "latest.jsonl"
    assert harvest_records.run(["--from-export", str(export), "--output", str(out)]) == len(expected["latest_software"])
    assert sorted(harvested_ids(out)) == expected["latest_software"]

    harvest_records.run(["--from-export", str(export), "--output", str(out), "--all-versions"])
    assert sorted(harvested_ids(out)) == expected["all_software"]
    harvest_records.run(["--from-export", str(export), "--output", str(out), "--type", "publication-article", "--all-versions"])
    articles = [json.loads(line)["metadata"]["resource_type"]["id"] for line in out.read_text().splitlines()]
    assert articles and set(articles) == {"publication-article"}
    harvest_records.run(["--from-export", str(export), "--output", str(out), "--since", "2020-03-01", "--until", "2020-05-01",
                         "--exclude-pattern", "repo3[0-9]", "--max-records", "5"])
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 5 and all("2020-03" <= r["created"][:7] <= "2020-04" for r in records)
    assert not any(re.search("repo3[0-9]", r["metadata"]["title"]) for r in records)


def test_harvest_from_an_export_then_build(server, tmp_path):
    from pipelines import harvest_records

    export = tmp_path / "records-json.tar.gz"
    expected = make_export(export, server, concepts=12)
    server.exports["records-json.tar.gz"] = export.read_bytes()
    harvested = tmp_path / "records.jsonl"
    harvest_records.run(["--from-export", f"{server.url}/api/exporter/records-json.tar.gz", "--output", str(harvested)])
    searches = [entry for entry in server.log if entry.path == "/api/records"]
    assert not searches, "no search request at all"
    rows = build(tmp_path / "out", server, "--records-jsonl", str(harvested))
    assert sorted(rows) == expected["latest_software"] and {row["status"] for row in rows.values()} == {"ok"}


def test_harvest_from_an_export_refuses_a_query_and_a_bad_file(tmp_path, capsys):
    from pipelines import harvest_records

    (tmp_path / "bad.tar.gz").write_bytes(b"not a tar")
    for argv in (["--query", "x"], []):
        with pytest.raises(SystemExit) as exit_info:
            harvest_records.run(["--from-export", str(tmp_path / "bad.tar.gz"), "--output", str(tmp_path / "o.jsonl"), *argv])
        assert exit_info.value.code == 2
    assert not (tmp_path / "o.jsonl").exists()


# --- 6. long runs ----------------------------------------------------------------------------------------------------

def test_resume_retry_failed_replaces_failed_rows(server, tmp_path):
    good = zipball("top", {"a.py": SOURCE})
    server.add_record(plain_record(951, "Always fine"), {"a.zip": good})
    server.add_record(plain_record(952, "Down at first"), {"b.zip": good})
    server.add_record(plain_record(953, "Gone for good"))
    server.inject("/api/records/952/files/b.zip/content", "503", times=100)
    output = tmp_path / "out"
    first = build(output, server, "--ids", "951,952,953", "--max-attempts", "2")
    assert {i: row["status"] for i, row in first.items()} == {951: "ok", 952: "failed", 953: "failed"}
    server._faults.clear()
    server.log.clear()

    build(output, server, "--ids", "951,952,953", "--resume", "--retry-failed")
    rows = list(read_rows(str(output), "records"))
    assert sorted((row["record_id"], row["status"]) for row in rows) == [(951, "ok"), (952, "ok"), (953, "failed")]
    assert not server.requests_to("/api/records/951"), "an ok record is not fetched again"
    manifest = read_manifest(str(output))
    assert manifest["counts"]["records"] == {"total": 3, "ok": 2, "failed": 1}
    errors = list(read_errors(str(output)))
    assert len(errors) == manifest["counts"]["errors"] and not any(e["record_id"] == 952 for e in errors)
    assert [e["record_id"] for e in errors if e["stage"] == "list_files"] == [953]
    files = [(row["record_id"], row["path"]) for row in read_rows(str(output), "files")]
    assert sorted(files) == [(951, "a.py"), (952, "a.py")]


def test_retry_failed_needs_resume(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_dataset.run(["--ids", "1", "--output", str(tmp_path / "o"), "--retry-failed"])
    assert exit_info.value.code == 2 and "--retry-failed needs --resume" in capsys.readouterr().err
