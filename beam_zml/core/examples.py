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
from beam_zml.core.duplicates import COPY_FACTS, ONE_COPY
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
    # The file's copy facts, as in its files/ row (beam_zml.core.duplicates); -1 in Examples written before them.
    "n_copies": ("int64", "imaged files of the run with this file's SWHID (1: no copy), or -1"),
    "n_records_sharing": ("int64", "records of the run holding those files, or -1"),
    "is_canonical": ("int64", "1 for the one copy of its content that counts (lowest record_id, then path), 0 for the others, or -1"),
}
PER_IMAGE = frozenset({"image", "n_lines", "segment"})  # the features in which the Examples of one file differ
# What a feature missing from an Example (one written before the feature existed) reads as.
DEFAULTS = dict.fromkeys((*FLAGS, *COPY_FACTS), -1)


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
    copies: dict[str, int | bool] = ONE_COPY,
) -> bytes:
    """All images of one file as one gzip member of TFRecord-framed tf.train.Examples.

    `images` is (n, height, width) of any integer dtype, written little-endian; `n_lines` (n,) ints.
    `flags` maps each of fileinfo.FLAGS to True, False or None (unknown), written as 1, 0 or -1.
    `copies` holds the file's copy facts (beam_zml.core.duplicates.COPY_FACTS): the build writes every
    file as the only copy of its content and rewrites the copies' members once it knows (`with_copy_facts`).
    The features the images share are encoded once (beam_zml.core.example_proto); each image adds
    its pixels, its segment and its n_lines.
    """
    pixels = np.ascontiguousarray(images, dtype=images.dtype.newbyteorder("<"))
    n_images = len(pixels)
    image_size = pixels[0].nbytes if n_images else 0
    image_feature = example_proto.bytes_feature_header(image_size)
    # The entries in key order (as protobuf's deterministic serialization sorts a map): extension, image,
    # is_canonical, is_documentation, is_generated, is_test, is_vendored, language, n_copies, n_lines,
    # n_records_sharing, n_segments, path, record_id, segment, swhid.
    head = b"".join((
        example_proto.entry("extension", example_proto.bytes_feature_value(extension.encode("utf-8"))),
        example_proto.entry_header("image", len(image_feature) + image_size),
        image_feature,
    ))
    flag_entries = b"".join(
        example_proto.int64_entry(name, -1 if flags[name] is None else int(flags[name])) for name in sorted(FLAGS)
    )
    language_entry = b"".join((
        example_proto.int64_entry("is_canonical", int(copies["is_canonical"])),
        flag_entries,
        example_proto.entry("language", example_proto.bytes_feature_value(language.encode("utf-8"))),
        example_proto.int64_entry("n_copies", copies["n_copies"]),
    ))
    middle = b"".join((
        example_proto.int64_entry("n_records_sharing", copies["n_records_sharing"]),
        example_proto.int64_entry("n_segments", n_images),
        example_proto.entry("path", example_proto.bytes_feature_value(path.encode("utf-8"))),
        example_proto.int64_entry("record_id", record_id),
    ))
    tail = example_proto.entry("swhid", example_proto.bytes_feature_value(swhid.encode("ascii")))
    shared = len(head) + image_size + len(language_entry) + len(middle) + len(tail)
    flat = memoryview(pixels).cast("B")
    framed = []
    for segment, lines in enumerate(n_lines.tolist()):
        lines_entry = example_proto.int64_entry("n_lines", lines)
        segment_entry = example_proto.int64_entry("segment", segment)
        image = flat[segment * image_size : (segment + 1) * image_size]
        pieces = (head, image, language_entry, lines_entry, middle, segment_entry, tail)
        data = b"".join(example_proto.example(pieces, shared + len(lines_entry) + len(segment_entry)))
        framed.append(tfrecord_frame(data))
    return igzip.compress(b"".join(framed), GZIP_LEVEL, mtime=0)  # mtime 0: the same bytes on every run


def with_copy_facts(member: bytes, copies: dict[str, int | bool]) -> bytes:
    """One file's gzip member of Examples (`encode_file_images`) with its copy facts set to `copies`.

    Only the three features change; the result equals the member `encode_file_images` would have written
    with `copies`. Raises ValueError (or isal's error) if `member` is not such a gzip member.
    """
    replace = example_proto.Int64Replacer({name: int(copies[name]) for name in COPY_FACTS}, PER_IMAGE)
    raw = memoryview(igzip.decompress(member))
    framed, offset = [], 0
    while offset < len(raw):
        if offset + 12 > len(raw):
            raise ValueError("truncated TFRecord frame")
        (length,) = struct.unpack_from("<Q", raw, offset)
        start, end = offset + 12, offset + 12 + length
        if end + 4 > len(raw):
            raise ValueError("truncated TFRecord frame")
        framed.append(tfrecord_frame(replace(raw[start:end])))
        offset = end + 4
    return igzip.compress(b"".join(framed), GZIP_LEVEL, mtime=0)


def copy_facts_of(member: bytes) -> dict[str, int]:
    """The copy facts written in the first Example of one file's gzip member, as ints; ValueError if it has none."""
    raw = igzip.decompress(member)
    if len(raw) < 12:
        raise ValueError("no Example in the member")
    (length,) = struct.unpack_from("<Q", raw, 0)
    features = example_proto.parse_example(raw[12 : 12 + length])
    return {name: int(features[name]) for name in COPY_FACTS}


def tfrecord_frame(data: bytes) -> bytes:
    """One TFRecord: length, masked CRC32C of the length, data, masked CRC32C of the data."""
    length = struct.pack("<Q", len(data))
    return b"".join((length, _masked_crc(length), data, _masked_crc(data)))


def empty_gzip() -> bytes:
    """A valid gzip stream holding nothing: the content of an empty images shard."""
    return igzip.compress(b"", GZIP_LEVEL, mtime=0)


def _masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)
