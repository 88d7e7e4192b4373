"""Copy facts written into the Examples: only the copies' gzip members rewritten, once, whatever the source."""

from __future__ import annotations

import collections
import io
import tarfile
import zipfile
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_zml.consume.dataset import read_examples, read_rows
from beam_zml.core.duplicates import COPY_FACTS, ONE_COPY
from beam_zml.core.examples import (
    copy_facts_of,
    encode_file_images,
    feature_spec,
    with_copy_facts,
)
from beam_zml.core.fileinfo import FLAGS
from beam_zml.core.imagify import imagify
from beam_zml.core.notes import COPIES, COUNTS, SHARD, image_member, unpack_image_member
from beam_zml.sinks.copy_facts import WriteCopyFacts, already_rewritten, write_rewritten
from beam_zml.sinks.write_shards import ItemShards
from pipelines import build_dataset

TWO = {"n_copies": 2, "n_records_sharing": 1, "is_canonical": False}
THREE = {"n_copies": 3, "n_records_sharing": 3, "is_canonical": True}


def member(path: str, lines: int) -> bytes:
    images, n_lines = imagify(b"".join(b"%s line %d\n" % (path.encode(), i) for i in range(lines)))
    return encode_file_images(record_id=1, path=path, images=images, n_lines=n_lines, extension="py", language="Python",
                              swhid="swh:1:cnt:" + path, flags=dict.fromkeys(FLAGS))  # fmt: skip


def shard_of(*members: bytes) -> tuple[bytes, list[tuple[int, int]]]:
    """The members concatenated, as ItemImager writes them, and the (offset, length) of each."""
    offsets = np.cumsum([0, *map(len, members)]).tolist()
    return b"".join(members), [(offsets[i], len(m)) for i, m in enumerate(members)]


def rewrite_copies(shard: bytes, copies: list) -> bytes | None:
    """The shard rewritten as WriteCopyFacts does, or None if an earlier attempt rewrote it already."""
    if already_rewritten(io.BytesIO(shard), copies):
        return None
    out = io.BytesIO()
    write_rewritten(io.BytesIO(shard), copies, out)
    return out.getvalue()


def examples_of(path: Path) -> list[dict]:
    spec = {name: tf.io.FixedLenFeature([], getattr(tf, f["dtype"])) for name, f in feature_spec().items()}
    return [
        {name: value.numpy() for name, value in tf.io.parse_single_example(raw, spec).items() if name != "image"}
        for raw in tf.data.TFRecordDataset(str(path), compression_type="GZIP")
    ]


def test_only_the_copies_members_change_and_a_second_rewrite_changes_nothing(tmp_path):
    members = [member("a.py", 170), member("b.py", 30), member("c.py", 90)]
    shard, places = shard_of(*members)
    copies = [(*places[2], THREE), (*places[0], TWO)]  # in any order
    rewritten = rewrite_copies(shard, copies)
    first = with_copy_facts(members[0], TWO)
    assert rewritten == first + members[1] + with_copy_facts(members[2], THREE)  # b.py's bytes copied as they were
    (tmp_path / "s.tfrecord.gz").write_bytes(rewritten)
    found = examples_of(tmp_path / "s.tfrecord.gz")
    facts = {"a.py": TWO, "b.py": ONE_COPY, "c.py": THREE}
    assert collections.Counter(e["path"].decode() for e in found) == {"a.py": 3, "b.py": 1, "c.py": 2}
    for example in found:
        expected = facts[example["path"].decode()]
        assert [example[name] for name in expected] == [int(value) for value in expected.values()]
    assert rewrite_copies(rewritten, copies) is None  # a retry after the rename: the first copy moved or changed


def test_the_step_rewrites_each_named_shard_once_and_passes_every_other_note(tmp_path):
    (tmp_path / "images").mkdir()
    members = [member("a.py", 10), member("b.py", 100)]
    shard, places = shard_of(*members)
    x, y = ItemShards(str(tmp_path)).name(7, 0, 2), ItemShards(str(tmp_path)).name(7, 1, 2)
    (tmp_path / x).write_bytes(shard)
    (tmp_path / y).write_bytes(shard)  # no copy in it: left alone
    notes = [(SHARD, x), (SHARD, y), (COUNTS, {"images": 2})]
    shards = ItemShards(str(tmp_path))
    copies = [(COPIES, (7, image_member(0, 2, *places[1]), tuple(TWO[name] for name in COPY_FACTS)))]
    for _ in range(2):  # the second run is a retry of the whole step
        with TestPipeline() as pipeline:
            out = pipeline | beam.Create(notes + copies) | WriteCopyFacts(shards)
            assert_that(out, equal_to(notes))
        assert (tmp_path / y).read_bytes() == shard
        rewritten = (tmp_path / x).read_bytes()
        assert rewritten.startswith(members[0]) and copy_facts_of(rewritten[len(members[0]):]) == {k: int(v) for k, v in TWO.items()}


def test_copies_in_a_tar_a_zip_and_a_folder_carry_their_facts_in_every_example(tmp_path):
    """A variant: a tar is imaged by the worker that lists it, a zip and a folder by the workers of their items;
    one content is in all three (twice in the tar), another twice in the zip only."""
    shared = b"".join(b"shared line %d\n" % i for i in range(100))  # two images
    twice = b"def twice():\n    return 2\n"
    folder = tmp_path / "folder"
    (folder / "lib").mkdir(parents=True)
    (folder / "lib" / "shared.py").write_bytes(shared)
    (folder / "own.py").write_bytes(b"print('folder')\n")
    with tarfile.open(tmp_path / "code.tar.gz", "w:gz") as tar:
        for name, data in (("code/a/shared.py", shared), ("code/b/shared.py", shared), ("code/tar.py", b"x = 1\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(tmp_path / "code.zip", "w") as archive:
        for name, data in (("shared.py", shared), ("one.py", twice), ("two.py", twice)):
            archive.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data)
    output = str(tmp_path / "out")
    build_dataset.run(["--local", str(folder), str(tmp_path / "code.tar.gz"), str(tmp_path / "code.zip"),
                       "--output", output, "--quiet"])  # fmt: skip
    rows = {(r["record_id"], r["path"]): r for r in read_rows(output, "files") if r["status"] == "imaged"}
    by_path = collections.defaultdict(list)
    for (record_id, path), row in rows.items():
        by_path[path.rsplit("/", 1)[-1]].append(row)
    assert {(r["n_copies"], r["n_records_sharing"]) for r in by_path["shared.py"]} == {(4, 3)}
    assert {(r["n_copies"], r["n_records_sharing"]) for r in by_path["one.py"] + by_path["two.py"]} == {(2, 1)}
    seen = collections.Counter()
    for example in read_examples(output):
        row = rows[(int(example["record_id"]), example["path"].decode())]
        assert (example["n_copies"], example["n_records_sharing"], example["is_canonical"]) == (
            row["n_copies"], row["n_records_sharing"], int(row["is_canonical"]))
        seen[row["path"]] += 1
    assert sum(seen.values()) == sum(r["n_segments"] for r in rows.values()) == 4 * 2 + 4  # shared.py: two images each
    canonical = [r for r in by_path["shared.py"] if r["is_canonical"]]
    assert [(r["record_id"], r["path"]) for r in canonical] == [min((r["record_id"], r["path"]) for r in by_path["shared.py"])]


def test_a_files_row_finds_its_member_through_one_packed_int():
    for place in [(0, 1, 0, 1), (128, 129, 2**40 - 1, 2**32 - 1), (2**24 - 1, 2**24 - 1, 12_345, 678)]:
        assert unpack_image_member(image_member(*place)) == place
    for place in [(2**24, 1, 0, 1), (0, 1, 2**40, 1), (0, 1, 0, -1)]:
        with pytest.raises(ValueError, match="does not fit"):
            image_member(*place)
