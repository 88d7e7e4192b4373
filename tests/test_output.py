"""prepare_output: OUT before a run (new, refused, --overwrite, --resume), on plain files."""

from __future__ import annotations

import json

import fastavro
import pytest

from beam_zml.core.records import RecordSource, record_row
from beam_zml.schemas import load_schema
from beam_zml.sinks.output import OutputError, prepare_output

OPTIONS = {"height": 80, "width": 80}


def finished_dataset(out, record_ids=(7, 9)):
    """A dataset as a finished run leaves it: listed shards, dataset.json; plus an orphan of a crashed resume."""
    for kind in ("images", "files", "errors"):
        (out / kind).mkdir(parents=True)
        (out / kind / f"{kind}-00000-of-00001").write_bytes(b"")
    (out / "records").mkdir()
    rows = [record_row(RecordSource(i, f"/code/{i}", "local", title="t"), status="ok", error=None, file_rows=[]) for i in record_ids]
    with open(out / "records" / "records-00000-of-00001.avro", "wb") as handle:
        fastavro.writer(handle, load_schema("record"), rows)
    shards = {kind: [f"{kind}/{kind}-00000-of-00001"] for kind in ("images", "files", "errors")}
    shards["records"] = ["records/records-00000-of-00001.avro"]
    (out / "dataset.json").write_text(json.dumps({"options": OPTIONS, "shards": shards}))
    (out / "images" / "images-20260101T000000-00000-of-00001").write_bytes(b"orphan")
    return out


def test_a_new_output_is_made_ready(tmp_path):
    prepared = prepare_output(str(tmp_path / "out"), overwrite=False, resume=False, options=OPTIONS)
    assert prepared.path == str(tmp_path / "out") and prepared.run_tag == "" and not prepared.done


def test_an_existing_dataset_is_refused_without_overwrite_or_resume(tmp_path):
    out = finished_dataset(tmp_path / "out")
    with pytest.raises(OutputError, match="already holds a dataset"):
        prepare_output(str(out), overwrite=False, resume=False, options=OPTIONS)


def test_overwrite_clears_the_sink_folders_and_the_manifest(tmp_path):
    out = finished_dataset(tmp_path / "out")
    (out / "notes.txt").write_text("not ours")
    prepare_output(str(out), overwrite=True, resume=False, options=OPTIONS)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_overwrite_deletes_only_what_a_build_writes(tmp_path):
    out = finished_dataset(tmp_path / "out")
    (out / "images" / "mine.txt").write_text("not ours")
    (out / "dataset.json").unlink()
    with pytest.raises(OutputError, match="the folders of a dataset that never finished"):
        prepare_output(str(out), overwrite=False, resume=False, options=OPTIONS)
    prepare_output(str(out), overwrite=True, resume=False, options=OPTIONS)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["images", "images/mine.txt"]


def test_resume_keeps_listed_shards_deletes_orphans_and_knows_the_records_done(tmp_path):
    out = finished_dataset(tmp_path / "out")
    prepared = prepare_output(str(out), overwrite=False, resume=True, options=OPTIONS)
    assert prepared.done == frozenset({7, 9}) and prepared.run_tag
    assert sorted(p.name for p in (out / "images").iterdir()) == ["images-00000-of-00001"]


@pytest.mark.parametrize("name", ["out[1]", "out*", "out?x"])
def test_resume_deletes_orphans_in_an_output_whose_name_is_a_glob_pattern(tmp_path, name):
    out = finished_dataset(tmp_path / name)
    prepare_output(str(out), overwrite=False, resume=True, options=OPTIONS)
    assert sorted(p.name for p in (out / "images").iterdir()) == ["images-00000-of-00001"]


def test_resume_refuses_options_that_change_the_output(tmp_path):
    out = finished_dataset(tmp_path / "out")
    with pytest.raises(OutputError, match="height"):
        prepare_output(str(out), overwrite=False, resume=True, options={**OPTIONS, "height": 40})


def test_resume_of_a_run_that_never_finished_starts_over(tmp_path):
    out = finished_dataset(tmp_path / "out")
    (out / "dataset.json").unlink()
    prepared = prepare_output(str(out), overwrite=False, resume=True, options=OPTIONS)
    assert prepared.run_tag == "" and not prepared.done and not (out / "images").exists()


def test_retry_failed_takes_the_failed_rows_out_of_the_shards_and_the_counts(tmp_path):
    out = tmp_path / "out"
    (out / "records").mkdir(parents=True)
    (out / "errors").mkdir()
    for kind in ("images", "files"):
        (out / kind).mkdir()
    rows = [record_row(RecordSource(i, "", "local", title="t"), status=status, error=None if status == "ok" else "boom", file_rows=[])
            for i, status in ((1, "ok"), (2, "failed"), (3, "failed"))]
    for index, shard in enumerate((rows[:2], rows[2:])):
        with open(out / "records" / f"records-0000{index}-of-00002.avro", "wb") as handle:
            fastavro.writer(handle, load_schema("record"), shard)
    errors = [{"record_id": 2, "stage": "list_files"}, {"record_id": 1, "stage": "imagify"}, {"record_id": 3, "stage": "list_files"}]
    (out / "errors" / "errors-00000-of-00001.jsonl").write_text("".join(json.dumps(e) + "\n" for e in errors))
    counts = {"records": {"total": 3, "ok": 1, "failed": 2}, "errors": 3, "images": 5}
    shards = {"records": [f"records/records-0000{i}-of-00002.avro" for i in (0, 1)], "errors": ["errors/errors-00000-of-00001.jsonl"],
              "images": [], "files": []}
    (out / "dataset.json").write_text(json.dumps({"options": OPTIONS, "shards": shards, "counts": counts}))

    prepared = prepare_output(str(out), overwrite=False, resume=True, options=OPTIONS, retry_failed=True)

    assert prepared.done == frozenset({1})
    kept = [row["record_id"] for i in (0, 1) for row in fastavro.reader(open(out / "records" / f"records-0000{i}-of-00002.avro", "rb"))]
    assert kept == [1]
    assert [json.loads(line)["record_id"] for line in (out / "errors" / "errors-00000-of-00001.jsonl").read_text().splitlines()] == [1]
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["counts"]["records"] == {"total": 1, "ok": 1, "failed": 0} and manifest["counts"]["errors"] == 1
    assert manifest["counts"]["images"] == 5 and manifest["shards"] == shards == prepared.previous["shards"]
    assert prepare_output(str(out), overwrite=False, resume=True, options=OPTIONS, retry_failed=True).done == frozenset({1})
