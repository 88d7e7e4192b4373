import json
import os

from beam_zml.core.records import (
    RecordSource,
    local_record_id,
    local_sources,
    record_row,
    zenodo_metadata,
)

ZENODO_RECORD = {
    "id": 1065022,
    "recid": "1065022",
    "conceptrecid": "1065021",
    "doi": "10.5281/zenodo.1065022",
    "conceptdoi": "10.5281/zenodo.1065021",
    "metadata": {
        "title": "vsoch/zenodo-ml: v1.0",
        "description": "<p>Zenodo machine learning</p>",
        "publication_date": "2018-05",
        "access_right": "open",
        "creators": [{"name": "Sochat, Vanessa", "affiliation": "Stanford", "orcid": "0000-0002-4387-3819"}],
        "keywords": ["machine learning"],
        "language": "eng",
        "resource_type": {"type": "software", "title": "Software"},
        "license": {"id": "mit"},
        "version": "v1.0",
        "related_identifiers": [
            {"identifier": "https://github.com/vsoch/zenodo-ml/tree/v1.0", "relation": "isSupplementTo", "scheme": "url"}
        ],
        "communities": [{"id": "zenodo"}],
    },
}


def test_zenodo_metadata_maps_the_legacy_shape():
    meta, problems = zenodo_metadata(ZENODO_RECORD)
    assert problems == []
    assert meta["concept_id"] == 1065021 and meta["doi"] == "10.5281/zenodo.1065022"
    assert meta["license"] == "mit" and meta["resource_type"] == "software"
    assert meta["creators"] == [{"name": "Sochat, Vanessa", "affiliation": "Stanford", "orcid": "0000-0002-4387-3819"}]
    assert meta["github_url"] == "https://github.com/vsoch/zenodo-ml/tree/v1.0"
    assert meta["communities"] == ["zenodo"]


def test_zenodo_metadata_tolerates_missing_fields():
    meta, problems = zenodo_metadata({"id": 5})
    assert problems == []
    assert meta["title"] is None and meta["keywords"] == [] and meta["github_url"] is None


def test_local_ids_are_stable_and_distinct(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert local_record_id(str(a)) == local_record_id(str(a) + "/../a") != local_record_id(str(b))
    sources = local_sources([str(a), str(b), str(a)])
    assert [s.title for s in sources] == ["a", "b"] and all(s.source == "local" for s in sources)


def test_record_row_counts_files_and_keeps_raw_json():
    files = [
        {"path": "x.py", "size": 10, "status": "imaged", "reason": None, "n_segments": 2},
        {"path": "y.bin", "size": 5, "status": "skipped", "reason": "binary", "n_segments": 0},
        {"path": "../z", "size": 1, "status": "skipped", "reason": "unsafe_path", "n_segments": 0},
    ]
    source = RecordSource(1065022, "/tmp/a.zip", "zenodo_archive", raw=ZENODO_RECORD)
    row = record_row(source, status="ok", error=None, file_rows=files)
    assert (row["n_files"], row["n_imaged"], row["n_images"], row["n_bytes"]) == (3, 1, 2, 16)
    assert row["skipped"] == {"binary": 1, "unsafe_path": 1}
    assert [node["path"] for node in row["tree"]] == ["", "x.py", "y.bin"]
    assert json.loads(row["raw_json"]) == ZENODO_RECORD and row["title"] == "vsoch/zenodo-ml: v1.0"


def test_duplicates_and_macos_metadata_are_counted_but_not_in_the_tree():
    files = [
        {"path": "a.py", "size": 4, "status": "skipped", "reason": "duplicate_path", "n_segments": 0},
        {"path": "a.py", "size": 6, "status": "imaged", "reason": None, "n_segments": 1},
        {"path": "__MACOSX/._a.py", "size": 82, "status": "skipped", "reason": "os_metadata", "n_segments": 0},
    ]
    row = record_row(RecordSource(1, "/tmp/a.zip", "local"), status="ok", error=None, file_rows=files)
    assert row["n_files"] == 3 and row["skipped"] == {"duplicate_path": 1, "os_metadata": 1}
    assert [(node["path"], node["size"]) for node in row["tree"]] == [("", 6), ("a.py", 6)]


def test_a_local_path_that_is_not_utf8_has_an_id_and_an_escaped_title(tmp_path):
    path = os.fsdecode(os.fsencode(tmp_path) + b"/d\xe9mo")  # what Python makes of a Latin-1 argv
    [source] = local_sources([path])
    assert source.record_id == local_record_id(path) and source.location == path
    assert source.title == "d\\xe9mo"
    row = record_row(source, status="failed", error=f"cannot read {path}", file_rows=[])
    assert row["archive_url"].endswith("/d\\xe9mo") and row["error"].endswith("/d\\xe9mo")
    assert row["title"].encode("utf-8") and row["archive_url"].encode("utf-8")
