"""The composite transforms on small inputs, checked with assert_that."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_zml.core.imaging import ImageSettings
from beam_zml.core.records import RecordSource
from beam_zml.sources.repository import Limits
from beam_zml.transforms import (
    BuildRecordRows,
    ImagifyFiles,
    ListRepositoryFiles,
    MarkCopies,
)


def test_list_image_and_join_give_one_row_per_record(repository, tmp_path):
    missing = RecordSource(2, str(tmp_path / "missing.zip"), "local", title="missing")
    present = RecordSource(1, str(repository), "local", title="repo")
    with TestPipeline() as pipeline:
        listed = pipeline | beam.Create([present, missing]) | ListRepositoryFiles(Limits())
        imaged = listed["files"] | ImagifyFiles(ImageSettings())
        rows = listed["outcomes"] | BuildRecordRows(imaged["rows"])

        assert_that(
            rows | beam.Map(lambda r: (r["record_id"], r["status"], r["n_files"], r["n_imaged"])),
            equal_to([(1, "ok", 8, 3), (2, "failed", 0, 0)]),
            label="records",
        )
        assert_that(
            listed["errors"] | beam.Map(lambda e: (e["stage"], e["record_id"], "no such file" in e["message"])),
            equal_to([("list_files", 2, True)]),
            label="errors",
        )
        assert_that(
            imaged["images"] | beam.Map(lambda image: (image[0], image[2])),
            equal_to([("1/src/module.py", 1), ("1/src/main.c", 1), ("1/README.md", 1)]),
            label="images",
        )


def test_mark_copies_groups_rows_by_content_and_passes_the_rest_through():
    def row(record_id, path, swhid, status="imaged"):
        return {"record_id": record_id, "path": path, "swhid": swhid, "status": status, "n_segments": 1}

    rows = [row(7, "b.js", "swh:1:cnt:aa"), row(3, "z.js", "swh:1:cnt:aa"), row(3, "a.js", "swh:1:cnt:aa"),
            row(7, "own.py", "swh:1:cnt:bb"), row(7, "logo.png", "swh:1:cnt:aa", "skipped"), row(7, "odd.txt", None)]  # fmt: skip
    with TestPipeline() as pipeline:
        marked = pipeline | beam.Create(rows) | MarkCopies()
        assert_that(
            marked | beam.Map(lambda r: (r["record_id"], r["path"], r["n_copies"], r["n_records_sharing"], r["is_canonical"])),
            equal_to([
                (3, "a.js", 3, 2, True), (3, "z.js", 3, 2, False), (7, "b.js", 3, 2, False), (7, "own.py", 1, 1, True),
                (7, "logo.png", None, None, None), (7, "odd.txt", None, None, None),
            ]),  # fmt: skip
        )
