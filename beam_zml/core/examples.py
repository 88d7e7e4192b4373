"""Images as tf.train.Example records, framed as TFRecord and compressed as one gzip member.

A gzip file may hold many members back to back and TensorFlow's GZIP reader reads
them all, so each file's images are compressed once, where they are made, and a
shard is just those members concatenated: the sink never recompresses anything.
"""

from __future__ import annotations

import struct

import google_crc32c
import numpy as np
from isal import igzip

from beam_zml.core import example_proto
from beam_zml.core.fileinfo import FLAGS

GZIP_LEVEL = 1  # ISA-L level 1: ~4x zlib-6's speed for ~30% more bytes (../shared/PERF.md)

FEATURES = {
    "image": ("string", "row-major little-endian pixels, height x width, in the dataset's pixel dtype"),
    "record_id": ("int64", "Zenodo record id (or the local repository's id)"),
    "path": ("string", "path inside the repository, without the archive's single top folder"),
    "segment": ("int64", "0-based index of this image in its file"),
    "n_segments": ("int64", "images in this file"),
    "n_lines": ("int64", "real (unpadded) lines in this image"),
    "extension": ("string", "lower-case extension without the dot, empty if none"),
    "language": ("string", "detected language or file kind"),
    "swhid": ("string", "Software Heritage content id of the file"),
    # Linguist's file kinds: 1 yes, 0 no, -1 unknown (written without Linguist's rules, or before these features).
    "is_vendored": ("int64", "third-party code by Linguist's rules (node_modules/, vendor/, jquery.js...): 1, 0 or -1"),
    "is_generated": ("int64", "machine-written by Linguist's rules (minified, protobuf, lock files...): 1, 0 or -1"),
    "is_documentation": ("int64", "documentation by Linguist's rules (docs/, README, LICENSE...): 1, 0 or -1"),
    "is_test": ("int64", "a test by Linguist's file-name rules (test_*.py, *_test.go, *Test.java...): 1, 0 or -1"),
}
# What a feature missing from an Example (one written before the feature existed) reads as.
DEFAULTS = dict.fromkeys(FLAGS, -1)


def feature_spec() -> dict:
    """The spec for tf.io.parse_single_example, as JSON: every feature is a scalar FixedLenFeature;
    those in DEFAULTS carry their "default_value", so Examples written before them still parse."""
    return {
        name: {"kind": "FixedLenFeature", "shape": [], "dtype": dtype, "doc": doc}
        | ({"default_value": DEFAULTS[name]} if name in DEFAULTS else {})
        for name, (dtype, doc) in FEATURES.items()
    }


def encode_file_images(
    *,
    record_id: int,
    path: str,
    images: np.ndarray,
    n_lines: np.ndarray,
    extension: str,
    language: str,
    swhid: str,
    flags: dict[str, bool | None],
) -> bytes:
    """All images of one file as one gzip member of TFRecord-framed tf.train.Examples.

    `flags` maps each of fileinfo.FLAGS to True, False or None (unknown), written as 1, 0 or -1.
    """
    example_class = example_proto.example_class()
    pixels = images.astype(images.dtype.newbyteorder("<"), copy=False)
    path_bytes, extension_bytes = path.encode("utf-8"), extension.encode("utf-8")
    language_bytes, swhid_bytes = language.encode("utf-8"), swhid.encode("ascii")
    flag_values = [(name, -1 if flags[name] is None else int(flags[name])) for name in FLAGS]
    framed = []
    for segment, (image, lines) in enumerate(zip(pixels, n_lines)):
        example = example_class()
        feature = example.features.feature
        feature["image"].bytes_list.value.append(image.tobytes())
        feature["record_id"].int64_list.value.append(record_id)
        feature["path"].bytes_list.value.append(path_bytes)
        feature["segment"].int64_list.value.append(segment)
        feature["n_segments"].int64_list.value.append(len(pixels))
        feature["n_lines"].int64_list.value.append(int(lines))
        feature["extension"].bytes_list.value.append(extension_bytes)
        feature["language"].bytes_list.value.append(language_bytes)
        feature["swhid"].bytes_list.value.append(swhid_bytes)
        for name, value in flag_values:
            feature[name].int64_list.value.append(value)
        framed.append(tfrecord_frame(example.SerializeToString()))
    return igzip.compress(b"".join(framed), GZIP_LEVEL)


def tfrecord_frame(data: bytes) -> bytes:
    """One TFRecord: length, masked CRC32C of the length, data, masked CRC32C of the data."""
    length = struct.pack("<Q", len(data))
    return b"".join((length, _masked_crc(length), data, _masked_crc(data)))


def empty_gzip() -> bytes:
    """A valid gzip stream holding nothing: the content of an empty images shard."""
    return igzip.compress(b"", GZIP_LEVEL)


def _masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)
