"""The hand-written Example wire format: the bytes TensorFlow's own message writes, and what TensorFlow parses."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import tensorflow as tf
from isal import igzip

from beam_zml.core import example_proto
from beam_zml.core.duplicates import ONE_COPY
from beam_zml.core.examples import (
    copy_facts_of,
    encode_file_images,
    feature_spec,
    with_copy_facts,
)
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
COPIES = [ONE_COPY, {"n_copies": 3, "n_records_sharing": 2, "is_canonical": False},
          {"n_copies": 200_000, "n_records_sharing": 150, "is_canonical": True}]  # fmt: skip


@pytest.mark.parametrize("copies", COPIES)
@pytest.mark.parametrize("record_id, path, text, dtype, extension, language, swhid, flags", CASES)
def test_bytes_equal_tensorflows_deterministic_serialisation(record_id, path, text, dtype, extension, language, swhid, flags,
                                                             copies):
    images, n_lines = imagify(text.encode("utf-8"), dtype=dtype)
    blob = encode_file_images(record_id=record_id, path=path, images=images, n_lines=n_lines, extension=extension,
                              language=language, swhid=swhid, flags=flags, copies=copies)
    written = frames(blob)
    assert len(written) == len(images)
    for segment, (data, image, lines) in enumerate(zip(written, images, n_lines)):
        expected = tensorflow_example({
            "image": image.astype(image.dtype.newbyteorder("<")).tobytes(), "record_id": record_id,
            "path": path.encode("utf-8"), "segment": segment, "n_segments": len(images), "n_lines": int(lines),
            "extension": extension.encode("utf-8"), "language": language.encode("utf-8"), "swhid": swhid.encode("ascii"),
            **{name: -1 if value is None else int(value) for name, value in flags.items()},
            **{name: int(value) for name, value in copies.items()},
        })  # fmt: skip
        assert data == expected.SerializeToString(deterministic=True)


@pytest.mark.parametrize("copies", COPIES)
@pytest.mark.parametrize("record_id, path, text, dtype, extension, language, swhid, flags", CASES)
def test_rewriting_the_copy_facts_gives_the_bytes_written_with_them(record_id, path, text, dtype, extension, language,
                                                                    swhid, flags, copies):
    """The rewrite replaces three entries inside each Example, however long the varints before and after."""
    images, n_lines = imagify(text.encode("utf-8"), dtype=dtype)
    written = {
        str(facts): encode_file_images(record_id=record_id, path=path, images=images, n_lines=n_lines,
                                       extension=extension, language=language, swhid=swhid, flags=flags, copies=facts)
        for facts in (ONE_COPY, copies)
    }  # fmt: skip
    rewritten = with_copy_facts(written[str(ONE_COPY)], copies)
    assert rewritten == written[str(copies)]
    assert copy_facts_of(rewritten) == {name: int(value) for name, value in copies.items()}
    assert with_copy_facts(rewritten, ONE_COPY) == written[str(ONE_COPY)]  # and back


def test_tensorflow_parses_an_example_whose_copy_facts_come_from_the_rewrite():
    images, n_lines = imagify(b"a\n" * 100)
    blob = encode_file_images(record_id=9, path="a.py", images=images, n_lines=n_lines, extension="py",
                              language="Python", swhid="swh:1:cnt:1", flags=SOME)
    blob = with_copy_facts(blob, {"n_copies": 129, "n_records_sharing": 7, "is_canonical": False})
    spec = {name: tf.io.FixedLenFeature([], getattr(tf, feature["dtype"])) for name, feature in feature_spec().items()}
    parsed = tf.io.parse_example([data for data in frames(blob)], spec)
    assert parsed["n_copies"].numpy().tolist() == [129, 129] and parsed["is_canonical"].numpy().tolist() == [0, 0]
    assert parsed["n_records_sharing"].numpy().tolist() == [7, 7] and parsed["n_lines"].numpy().tolist() == [80, 20]


def test_replacing_a_feature_an_example_lacks_is_an_error():
    data = tensorflow_example({"record_id": 1, "path": b"a"}).SerializeToString(deterministic=True)
    assert example_proto.parse_example(example_proto.Int64Replacer({"record_id": 5})(data))["record_id"] == 5
    with pytest.raises(ValueError, match="n_copies"):
        example_proto.Int64Replacer({"n_copies": 2})(data)
    with pytest.raises(ValueError):
        example_proto.Int64Replacer({"record_id": 5})(data[:-1])


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


def test_one_replacer_over_examples_of_several_layouts_gives_what_the_walk_gives():
    """The layout learnt from the first Example serves the next ones that fit it; the others are walked."""
    examples = []
    for record_id, path, text, dtype, extension, language, swhid, flags in CASES:
        images, n_lines = imagify(text.encode("utf-8"), dtype=dtype)
        examples += frames(encode_file_images(record_id=record_id, path=path, images=images, n_lines=n_lines,
                                              extension=extension, language=language, swhid=swhid, flags=flags))
    values = {"n_copies": 300, "n_records_sharing": 2, "is_canonical": 0}
    replace = example_proto.Int64Replacer(values, frozenset({"image", "n_lines", "segment"}))
    assert len(examples) > 10
    assert [replace(data) for data in examples] == [example_proto.Int64Replacer(values)(data) for data in examples]  # each walked
