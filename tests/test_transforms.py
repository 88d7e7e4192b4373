"""The composite transforms on small inputs: listing, work items, the shards each item writes, record rows."""

from __future__ import annotations

import gzip
import time

import apache_beam as beam
import pytest
import tensorflow as tf
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_zml.core.imaging import ImageSettings
from beam_zml.core.notes import COUNTS, ERRORS, FILES, RECORDS, ROWS, SHARD
from beam_zml.core.records import RecordSource
from beam_zml.sinks.write_shards import ItemShards
from beam_zml.sources.repository import Limits, list_repository, split_entries
from beam_zml.transforms import BuildRecordRows, ImageRepositories, ItemImager
from beam_zml.transforms.image_files import WorkItem
from tests.conftest import tar_directory, zip_directory

IMAGED = ["README.md", "src/main.c", "src/module.py"]


def images_of(path) -> list[tuple[int, bytes, int]]:
    spec = {"record_id": tf.io.FixedLenFeature([], tf.int64), "path": tf.io.FixedLenFeature([], tf.string),
            "segment": tf.io.FixedLenFeature([], tf.int64)}  # fmt: skip
    return [
        (int(e["record_id"]), e["path"].numpy().decode(), int(e["segment"]))
        for e in (tf.io.parse_single_example(raw, spec) for raw in tf.data.TFRecordDataset(str(path), "GZIP"))
    ]


def build(sources, out, item_bytes):
    imager = ItemImager(ImageSettings(), Limits(), ItemShards(str(out)))
    with TestPipeline() as pipeline:
        notes = pipeline | beam.Create(sources) | ImageRepositories(imager, item_bytes=item_bytes) | BuildRecordRows()
        assert_that(
            notes | beam.Filter(lambda note: note[0] == RECORDS)
            | beam.Map(lambda note: (note[1]["record_id"], note[1]["status"], note[1]["n_files"], note[1]["n_imaged"])),
            equal_to([(s.record_id, "ok", len(list_repository(s.location).entries), 3) if "missing" not in s.location
                      else (s.record_id, "failed", 0, 0) for s in sources]),
            label="records",
        )  # fmt: skip
        assert_that(
            notes | beam.Filter(lambda note: note[0] == SHARD) | beam.Map(lambda note: note[1]),
            equal_to(expected_shards(sources, item_bytes)),
            label="shards",
        )
        listed = sum(len(list_repository(s.location).entries) for s in sources if "missing" not in s.location)
        assert_that(  # every file once: one files/ row per listed entry
            notes | beam.Filter(lambda note: note[0] == FILES) | beam.Map(lambda note: (note[1]["record_id"], note[1]["path"]))
            | "Count" >> beam.combiners.Count.Globally(),  # fmt: skip
            equal_to([listed]),
            label="files",
        )
        assert_that(
            notes | beam.Filter(lambda note: note[0] == ERRORS)
            | beam.Map(lambda note: (note[1]["stage"], note[1]["record_id"], "no such file" in note[1]["message"])),
            equal_to([("list_files", s.record_id, True) for s in sources if "missing" in s.location]),
            label="errors",
        )
        assert_that(
            notes | beam.Filter(lambda note: note[0] == COUNTS) | beam.Map(lambda note: note[1]["records"]),
            equal_to([1] * len(sources)),
            label="counts",
        )


def expected_shards(sources, item_bytes) -> list[str]:
    names = []
    for source in sources:
        if "missing" in source.location:
            continue
        count = len(split_entries(list_repository(source.location).entries, item_bytes))
        for index in range(count):
            names.append(f"images/images-{source.record_id}-{index:05d}-of-{count:05d}.tfrecord.gz")
    return names


@pytest.mark.parametrize("item_bytes", [1, 1 << 30])  # an item per file, or one item a record
def test_every_file_is_imaged_once_whatever_the_split(repository, tmp_path, item_bytes):
    sources = [
        RecordSource(1, str(repository), "local", title="dir"),
        RecordSource(2, str(zip_directory(repository, tmp_path / "repo.zip")), "local", title="zip"),
        RecordSource(3, str(tar_directory(repository, tmp_path / "repo.tar.gz")), "local", title="tar: never split"),
        RecordSource(4, str(tmp_path / "missing.zip"), "local", title="missing"),
    ]
    out = tmp_path / "out"
    build(sources, out, item_bytes)
    images = sorted(image for path in (out / "images").iterdir() for image in images_of(path))
    assert images == sorted((record, path, 0) for record in (1, 2, 3) for path in IMAGED)
    assert not [p for p in out.rglob(".*")]  # no temporary file left


def test_a_retried_item_rewrites_the_same_bytes_to_the_same_names(repository, tmp_path):
    listing = list_repository(str(repository))
    imager = ItemImager(ImageSettings(), Limits(), ItemShards(str(tmp_path / "out")))
    item = WorkItem(7, listing, 1, 3)
    first = [note[1][1] for note in imager.notes(item)[:1]]
    contents = {path: (tmp_path / "out" / path).read_bytes() for path in first}
    time.sleep(1.1)  # a gzip header holds a time, unless it is written as 0
    second = [note[1][1] for note in imager.notes(item)[:1]]
    assert first == second == ["images/images-7-00001-of-00003.tfrecord.gz"]
    assert {path: (tmp_path / "out" / path).read_bytes() for path in second} == contents
    assert len(gzip.decompress(contents[first[0]])) > 0


def test_an_item_whose_archive_vanished_gives_read_error_rows(repository, tmp_path):
    archive = zip_directory(repository, tmp_path / "repo.zip")
    listing = list_repository(str(archive))
    archive.unlink()
    imager = ItemImager(ImageSettings(), Limits(), ItemShards(str(tmp_path / "out")))
    notes = imager.notes(WorkItem(7, listing, 0, 1))
    (rows,) = [value for _, (kind, value) in notes if kind == ROWS]
    read = [row for row in rows if row["reason"] == "read_error"]
    assert len(rows) == len(listing.entries) and {row["path"] for row in read} >= set(IMAGED)
    assert images_of(tmp_path / "out" / notes[0][1][1]) == []
