"""The hand-written Example wire format: the bytes TensorFlow's own message writes, and what TensorFlow parses."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import tensorflow as tf
from isal import igzip

from beam_zml.core import example_proto
from beam_zml.core.examples import encode_file_images, feature_spec
from beam_zml.core.fileinfo import FLAGS
from beam_zml.core.imagify import imagify


def frames(blob: bytes) -> list[bytes]:
    raw, offset, out = igzip.decompress(blob), 0, []
    while offset < len(raw):
        (size,) = struct.unpack_from("<Q", raw, offset)
        out.append(raw[offset + 12 : offset + 12 + size])
        offset += 16 + size
    return out


def tensorflow_example(values: dict) -> tf.train.Example:
    example = tf.train.Example()
    for key, value in values.items():
        feature = example.features.feature[key]
        if isinstance(value, int):
            feature.int64_list.value.append(value)
        else:
            feature.bytes_list.value.append(value)
    return example


UNKNOWN = dict.fromkeys(FLAGS)  # written as -1
SOME = {"is_vendored": True, "is_generated": False, "is_documentation": None, "is_test": True}
CASES = [  # (record_id, path, text, dtype, extension, language, swhid, flags)
    (42, "pkg/mod.py", "".join(f"line {i}\n" for i in range(170)), "uint16", "py", "Python", "swh:1:cnt:" + "0" * 40, SOME),
    (2**62 + 5, "dir/é ü/日本.txt", "héllo\r\n\twörld 🎉\n" * 300, "int32", "txt", "Text", "", UNKNOWN),  # 9-byte varints
    (-7, "", "x", "uint8", "", "", "swh:1:cnt:ab", UNKNOWN),  # a negative int64: ten bytes; empty strings
]


@pytest.mark.parametrize("record_id, path, text, dtype, extension, language, swhid, flags", CASES)
def test_bytes_equal_tensorflows_deterministic_serialisation(record_id, path, text, dtype, extension, language, swhid, flags):
    images, n_lines = imagify(text.encode("utf-8"), dtype=dtype)
    blob = encode_file_images(record_id=record_id, path=path, images=images, n_lines=n_lines, extension=extension,
                              language=language, swhid=swhid, flags=flags)
    written = frames(blob)
    assert len(written) == len(images)
    for segment, (data, image, lines) in enumerate(zip(written, images, n_lines)):
        expected = tensorflow_example({
            "image": image.astype(image.dtype.newbyteorder("<")).tobytes(), "record_id": record_id,
            "path": path.encode("utf-8"), "segment": segment, "n_segments": len(images), "n_lines": int(lines),
            "extension": extension.encode("utf-8"), "language": language.encode("utf-8"), "swhid": swhid.encode("ascii"),
            **{name: -1 if value is None else int(value) for name, value in flags.items()},
        })  # fmt: skip
        assert data == expected.SerializeToString(deterministic=True)


def test_tensorflow_parses_every_feature_of_the_spec():
    images, n_lines = imagify(b"a\n" * 100)
    blob = encode_file_images(record_id=9, path="a.py", images=images, n_lines=n_lines, extension="py",
                              language="Python", swhid="swh:1:cnt:1", flags=SOME)
    spec = {name: tf.io.FixedLenFeature([], getattr(tf, feature["dtype"])) for name, feature in feature_spec().items()}
    parsed = [tf.io.parse_single_example(data, spec) for data in frames(blob)]
    assert [int(p["segment"]) for p in parsed] == [0, 1] and [int(p["n_lines"]) for p in parsed] == [80, 20]
    assert all(int(p["n_segments"]) == 2 and p["path"].numpy() == b"a.py" for p in parsed)
    assert np.array_equal(np.frombuffer(parsed[1]["image"].numpy(), "<u2").reshape(80, 80), images[1])


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**31, 2**63 - 1, -1, -(2**63)])
def test_varint_matches_protobuf(value):
    expected = tf.train.Int64List(value=[value]).SerializeToString()  # packed: tag, length, varint
    assert example_proto.varint(value) == expected[2:]


@pytest.mark.parametrize("record_id, path, text, dtype, extension, language, swhid, flags", CASES)
def test_parse_example_reads_back_what_tensorflow_writes(record_id, path, text, dtype, extension, language, swhid, flags):
    values = {"record_id": record_id, "path": path.encode("utf-8"), "extension": extension.encode("utf-8"), "n_lines": -1}
    assert example_proto.parse_example(tensorflow_example(values).SerializeToString()) == values
    with pytest.raises(ValueError):
        example_proto.parse_example(tensorflow_example(values).SerializeToString()[:-1])
