"""image_file: skip reasons in order, and images that TensorFlow reads back."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import tensorflow as tf

from beam_zml.core.examples import feature_spec, tfrecord_frame
from beam_zml.core.imagify import imagify
from beam_zml.core.imaging import FileRow, ImageSettings, file_row, image_file
from beam_zml.core.notes import IMAGE_MEMBER, image_member
from beam_zml.sources.repository import Member

SPEC = {name: tf.io.FixedLenFeature([], spec["dtype"]) for name, spec in feature_spec().items()}


def member(path: str, data: bytes | None, *, size: int | None = None, skip_reason: str | None = None) -> Member:
    return Member(path=path, size=len(data) if size is None else size, data=data, swhid="swh:1:cnt:00", skip_reason=skip_reason)


def parse(blob: bytes) -> list[dict]:
    path = "/dev/shm/beam_zml_test.tfrecord.gz"
    with open(path, "wb") as handle:
        handle.write(blob)
    return [
        {k: v.numpy() for k, v in tf.io.parse_single_example(r, SPEC).items()}
        for r in tf.data.TFRecordDataset(path, compression_type="GZIP")
    ]


@pytest.mark.parametrize(
    "item, settings, reason",
    [
        (member("a.py", None, size=10, skip_reason="symlink"), ImageSettings(), "symlink"),
        (member(".git/HEAD", b"ref: x\n"), ImageSettings(), "vcs_dir"),
        (member("big.py", None, size=200_000), ImageSettings(), "too_large"),
        (member("x.bin", b"\0\1\2"), ImageSettings(), "binary"),
        (member("empty.py", b""), ImageSettings(), "empty"),
    ],
)
def test_skip_reasons(item, settings, reason):
    row, blob = image_file(7, item, settings)
    assert (row["status"], row["reason"], blob) == ("skipped", reason, None)
    assert row["record_id"] == 7 and row["path"] == item.path and row["size"] == item.size


def test_include_binary_images_binary_files():
    row, blob = image_file(7, member("x.bin", b"\0\1\2\n"), ImageSettings(include_binary=True))
    assert row["status"] == "imaged" and row["is_binary"] is True and row["language"] == "Binary"
    assert len(parse(blob)) == 1


def test_images_round_trip_through_tensorflow():
    data = "".join(f"line {i}\n" for i in range(170)).encode()
    row, blob = image_file(42, member("pkg/mod.py", data), ImageSettings())
    assert row["status"] == "imaged" and row["n_segments"] == 3 and row["n_lines"] == 170
    examples = parse(blob)
    expected, n_lines = imagify(data)
    assert [e["segment"] for e in examples] == [0, 1, 2]
    assert [e["n_lines"] for e in examples] == list(n_lines) == [80, 80, 10]
    for example, image in zip(examples, expected):
        assert np.array_equal(np.frombuffer(example["image"], "<u2").reshape(80, 80), image)
        assert example["record_id"] == 42 and example["path"] == b"pkg/mod.py" and example["n_segments"] == 3
        assert example["extension"] == b"py" and example["language"] == b"Python" and example["swhid"] == b"swh:1:cnt:00"


@pytest.mark.parametrize("dtype, numpy_dtype", [("int32", "<i4"), ("uint8", "u1")])
def test_pixel_dtype_and_shape_options(dtype, numpy_dtype):
    settings = ImageSettings(height=4, width=6, pixel_dtype=dtype, pad=0)
    row, blob = image_file(1, member("a.txt", "héllo wörld\nÿ€\n".encode()), settings)
    image = np.frombuffer(parse(blob)[0]["image"], numpy_dtype).reshape(4, 6)
    assert image[0].tolist() == [ord(c) for c in "héllo "]
    assert image[1, 1] == (0x20AC if dtype == "int32" else 26)
    assert (image[2:] == 0).all()


def test_blob_is_gzip_of_tfrecord_frames():
    row, blob = image_file(1, member("a.txt", b"x\n"), ImageSettings())
    raw = gzip.decompress(blob)
    assert raw[:8] == (len(raw) - 16).to_bytes(8, "little")
    assert tfrecord_frame(raw[12:-4]) == raw


def test_a_files_row_crosses_beams_coder_as_its_values_and_comes_back_sharing_its_keys():
    """Decoded by the 100,000s in one group, a row must not bring its 15 keys along each time."""
    from apache_beam.coders.typecoders import registry

    coder = registry.get_coder(object)
    rows = [image_file(7, Member(f"pkg/{name}.py", 6, b"x = 1\n", f"swh:1:cnt:{name}", None, None), ImageSettings())[0]
            for name in ("a", "b")]  # fmt: skip
    rows[0][IMAGE_MEMBER] = image_member(0, 1, 0, 99)  # an imaged row on its way to the files/ sink
    rows.append(file_row(7, Member("c.bin", 3, None, None, "too_large", None), reason="too_large"))
    rows.append(FileRow(rows[2], note="not a field of the schema"))  # any other key: pickled with its keys
    back = coder.decode(coder.encode((7, ("rows", rows))))[1][1]
    assert back == rows and all(type(row) is FileRow for row in back)
    assert all(a is b for a, b in zip(back[1], back[2]))  # the same key objects
    assert back[0]["language"] is back[1]["language"] and back[0]["status"] is back[1]["status"]
    assert len(coder.encode(rows)) < 0.8 * len(coder.encode([dict(row) for row in rows]))
