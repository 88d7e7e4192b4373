"""No row can break its writer (docs/design.md#faults-and-limits): records rows from any JSON, files rows from any member, errors rows from any
message, each written by the writer the pipeline uses (fastavro with the packaged schema, json lines)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import fastavro
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_zml.core.errors import error_row
from beam_zml.core.imaging import ImageSettings, image_file
from beam_zml.core.names import printable
from beam_zml.core.records import RecordSource, record_row
from beam_zml.core.rows import fit_row
from beam_zml.schemas import load_schema
from beam_zml.sinks.write_shards import _write_json_lines
from beam_zml.sources.repository import Member

DATA = Path(__file__).parent / "data"
LEGACY = json.loads((DATA / "zenodo_record_legacy.json").read_text())
TEXT = st.text(max_size=10) | st.text(max_size=5).map(lambda text: text + "\udcff")  # JSON can carry lone surrogates
VALUES = st.recursive(st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.floats() | TEXT,
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)


def write_avro(schema_name: str, row: dict) -> dict:
    buffer = io.BytesIO()
    fastavro.writer(buffer, load_schema(schema_name), [row])
    buffer.seek(0)
    return next(fastavro.reader(buffer))


def metadata_paths(value, prefix=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield prefix + (key,)
            yield from metadata_paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield prefix + (index,)
            yield from metadata_paths(item, prefix + (index,))


PATHS = [path for path in metadata_paths(LEGACY) if path[0] != "id"]


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(PATHS), value=VALUES)
def test_a_records_row_from_any_json_is_written(path, value):
    raw = json.loads(json.dumps(LEGACY))
    target = raw
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    row = record_row(RecordSource(LEGACY["id"], "", "zenodo_archive", raw=raw), status="ok", error=None, file_rows=[])
    assert write_avro("record", row)["record_id"] == LEGACY["id"]
    assert row["status"] == "ok" or row["error"].startswith("record JSON does not fit the records schema: ")


@settings(max_examples=200, deadline=None)
@given(raw=VALUES)
def test_a_records_row_from_any_value_at_all_is_written(raw):
    row = record_row(RecordSource(1, "", None, raw=raw), status="failed", error="x", file_rows=[])
    assert write_avro("record", row)["status"] == "failed"


@settings(max_examples=200, deadline=None)
@given(path=st.text(min_size=1, max_size=20), size=st.integers(0, 2**63 - 1), data=st.none() | st.binary(max_size=300),
       reason=st.sampled_from([None, "symlink", "unsafe_path", "too_large", "archive_error", "download_failed", "read_error"]))
def test_a_files_row_from_any_member_is_written(path, size, data, reason):
    swhid = "swh:1:cnt:" + "0" * 40 if data is not None else None
    row, _ = image_file(5, Member(path, size, data, swhid, reason), ImageSettings())
    assert write_avro("file", row)["path"] == path and fit_row(row, "file")[1] == []


@settings(max_examples=200, deadline=None)
@given(message=TEXT, path=st.none() | TEXT, error_type=TEXT, record_id=st.none() | st.integers(0, 2**63 - 1))
def test_an_errors_row_from_any_message_is_written(message, path, error_type, record_id):
    buffer = io.BytesIO()
    _write_json_lines(buffer, [error_row("list_files", record_id, message, error_type=error_type, path=path)])
    assert json.loads(buffer.getvalue())["message"] == printable(message)  # an OS name's undecodable bytes as \\xHH


def test_lone_surrogates_in_any_string_of_a_record_are_written():
    """fastavro validates a lone surrogate as a string, then cannot encode it: the fitting must catch it."""
    strings = [path for path in PATHS if isinstance(_at(LEGACY, path), str)]
    failed = 0
    for path in strings:
        raw = json.loads(json.dumps(LEGACY))
        _at(raw, path[:-1])[path[-1]] = _at(LEGACY, path) + "\udcff"
        row = record_row(RecordSource(LEGACY["id"], "", "zenodo_archive", raw=raw), status="ok", error=None, file_rows=[])
        write_avro("record", row)
        failed += row["status"] == "failed"
    assert len(strings) > 20 and failed >= 15  # title, creators, keywords, related identifiers... (others are not read)


def _at(document, path):
    for step in path:
        document = document[step]
    return document
