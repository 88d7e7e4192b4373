"""The order in which a record's code is fetched, and the shapes of its file list (sources/fetch.py): plain pytest,
a fake client standing in for ZenodoClient at its interface (download), no Beam, no network."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from beam_zml.core.records import zenodo_metadata
from beam_zml.sources.fetch import NoCode, record_files, record_members
from beam_zml.sources.repository import Limits
from beam_zml.sources.zenodo import RecordGone, ZenodoError

DATA = Path(__file__).parent / "data"
ZENODO = "https://zenodo.example"
GITHUB = "https://github.example"


def zipped(files: dict[str, bytes], top: str = "top") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(f"{top}/{name}", data)
    return buffer.getvalue()


class FakeClient:
    """Serves `content` by URL, raises what `failures` says, and remembers every download in order."""

    def __init__(self, content: dict[str, bytes], failures: dict[str, Exception] | None = None):
        self.content = content
        self.failures = failures or {}
        self.downloads: list[str] = []

    def download(self, url: str, destination: str, *, md5: str | None = None) -> int:
        self.downloads.append(url)
        if url in self.failures:
            raise self.failures[url]
        if url not in self.content:
            raise RecordGone(f"HTTP 404 from {url}", status=404, url=url)
        data = self.content[url]
        if md5 and hashlib.md5(data).hexdigest() != md5:
            raise ZenodoError(f"md5 mismatch for {url}", url=url)
        Path(destination).write_bytes(data)
        return len(data)


def record(files: list[dict], github: bool = False) -> dict:
    related = [{"identifier": "https://github.com/o/r/tree/v1", "relation": "isSupplementTo", "scheme": "url"}] if github else []
    return {"id": 7, "metadata": {"title": "t", "related_identifiers": related}, "files": files}


def entry(key: str, data: bytes, **links) -> dict:
    return {"key": key, "size": len(data), "checksum": f"md5:{hashlib.md5(data).hexdigest()}",
            "links": links or {"self": f"{ZENODO}/api/records/7/files/{key}/content"}}


def members(client, raw, tmp_path, **limits):
    return record_members(client, raw, str(tmp_path), zenodo_url=ZENODO, github_base=GITHUB, limits=Limits(**limits))


def test_all_archives_and_loose_files_are_read_before_github_is_considered(tmp_path):
    a, b = zipped({"a.py": b"a\n"}), zipped({"b.py": b"b\n"})
    files = [entry("a.zip", a), entry("b.zip", b), entry("notes.txt", b"n\n")]
    client = FakeClient({f["links"]["self"]: data for f, data in zip(files, (a, b, b"n\n"))})
    code = members(client, record(files, github=True), tmp_path)
    assert [m.path for m in code.members] == ["a/a.py", "b/b.py", "notes.txt"]
    assert code.source == "zenodo_archive" and not any(GITHUB in url for url in client.downloads)
    assert list(tmp_path.iterdir()) == [], "downloads are removed once read"


def test_github_only_when_no_file_could_be_had(tmp_path):
    files = [entry("a.zip", b"PK broken")]
    client = FakeClient({files[0]["links"]["self"]: b"PK broken",
                         f"{GITHUB}/o/r/archive/refs/tags/v1.zip": zipped({"g.py": b"g\n"})})
    code = members(client, record(files, github=True), tmp_path)
    assert client.downloads == [files[0]["links"]["self"], f"{GITHUB}/o/r/archive/refs/tags/v1.zip"]
    assert code.source == "github" and [(m.path, m.skip_reason) for m in code.members] == [("a.zip", "archive_error"), ("g.py", None)]
    assert len(code.problems) == 1 and "a.zip" in code.problems[0]


def test_only_too_large_loose_files_count_as_nothing_had(tmp_path):
    files = [{"key": "big.bin", "size": 10**9, "links": {"self": f"{ZENODO}/big"}}]
    client = FakeClient({})
    with pytest.raises(NoCode, match="no GitHub release|no source"):
        members(client, record(files), tmp_path)
    assert client.downloads == [], "a file over --max-file-bytes is never downloaded"


def test_no_source_lists_every_problem(tmp_path):
    files = [entry("a.zip", b"x")]
    client = FakeClient({}, {files[0]["links"]["self"]: ZenodoError("HTTP 503", status=503)})
    with pytest.raises(NoCode) as failure:
        members(client, record(files, github=True), tmp_path)
    assert "a.zip: HTTP 503" in str(failure.value) and "github: HTTP 404" in str(failure.value)


def test_download_link_preferred_bare_checksum_and_old_links(tmp_path):
    data = zipped({"x.py": b"x\n"})
    digest = hashlib.md5(data).hexdigest()
    raw = {"id": 7, "files": [
        {"filename": "m.zip", "filesize": len(data), "checksum": digest, "links": {"self": f"{ZENODO}/api/files/dead", "download": f"{ZENODO}/records/7/files/m.zip?download=1"}},
        {"key": "old (1).zip", "size": len(data), "checksum": "md5:" + digest, "links": {"self": f"{ZENODO}/api/files/bucket-1/old%20(1).zip"}},
    ]}
    listed = record_files(raw, ZENODO)
    assert [(f.key, f.md5, f.url) for f in listed] == [
        ("m.zip", digest, f"{ZENODO}/records/7/files/m.zip?download=1"),
        ("old (1).zip", digest, f"{ZENODO}/api/files/bucket-1/old%20(1).zip")]
    assert listed[1].current_url == f"{ZENODO}/api/records/7/files/old%20(1).zip/content"
    client = FakeClient({listed[0].url: data, listed[1].current_url: data})
    code = members(client, raw, tmp_path)
    assert [m.path for m in code.members] == ["m/x.py", "old (1)/x.py"] and not code.problems
    wrong = FakeClient({listed[0].url: data[:-1] + b"!", listed[1].current_url: data})
    assert "md5 mismatch" in members(wrong, raw, tmp_path).problems[0], "a bare hex checksum is checked as an md5"


def test_both_shapes_list_the_same_files():
    legacy = json.loads((DATA / "zenodo_record_legacy.json").read_text())
    rdm = json.loads((DATA / "zenodo_record_inveniordm.json").read_text())
    assert record_files(legacy, ZENODO) == record_files(rdm, ZENODO)
    export_entry = {"id": "9", "files": {"enabled": True, "entries": {"a b.py": {"key": "a b.py", "size": 3}}}}
    assert record_files(export_entry, ZENODO)[0].url == f"{ZENODO}/api/records/9/files/a%20b.py/content"
    assert zenodo_metadata(legacy) == zenodo_metadata(rdm)
    with pytest.raises(TypeError):
        record_files({"id": 1, "files": "a.zip"}, ZENODO)


def test_unsafe_keys_are_never_downloaded_and_a_loose_file_wins_over_an_archive_member(tmp_path):
    archive = zipped({"README.md": b"from the archive\n", "src/a.py": b"a\n"})
    files = [entry("../escape.zip", archive), entry("/abs/x.py", b"x\n"), entry("code.zip", archive), entry("README.md", b"loose\n")]
    client = FakeClient({f["links"]["self"]: data for f, data in zip(files, (archive, b"x\n", archive, b"loose\n"))})
    code = members(client, record(files), tmp_path)
    assert [(m.path, m.skip_reason) for m in code.members] == [
        ("../escape.zip", "unsafe_path"), ("/abs/x.py", "unsafe_path"), ("README.md", "duplicate_path"),
        ("README.md", None), ("src/a.py", None)]
    assert [m.data for m in code.members if m.path == "README.md"] == [None, b"loose\n"]
    assert client.downloads == [files[2]["links"]["self"], files[3]["links"]["self"]]
