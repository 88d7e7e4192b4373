"""A built dataset in the shapes zenodo-ml's users loaded, without TensorFlow.

zenodo-ml (github.com/vsoch/zenodo-ml, slurm/run.py) wrote two pickles per record:
`images_<id>.pkl`, a dict from each file's path in the repository to the list of its
80x80 arrays of code points, and `metadata_<id>.pkl`, a dict of the repository's
`tree` and the raw Zenodo record (`hit`). A notebook switches in two lines:

    images = pickle.load(open(f"images_{rid}.pkl", "rb"))      ->  images = load_images(OUT, rid)
    metadata = pickle.load(open(f"metadata_{rid}.pkl", "rb"))  ->  metadata = load_metadata(OUT, rid)

The images are read from OUT/images/ with gzip (ISA-L) and no TensorFlow: each shard
is gzip members of TFRecord frames (beam_zml.core.examples), each frame a
tf.train.Example read by beam_zml.core.example_proto.parse_example.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from typing import IO

import numpy as np
from isal import igzip

from beam_zml import storage
from beam_zml.consume.dataset import read_manifest, read_rows, shard_paths
from beam_zml.core import example_proto

_LENGTH = struct.Struct("<Q")
_FRAME_OVERHEAD = 4 + 4  # masked CRC32C of the length, then of the data


def tfrecord_payloads(stream: IO[bytes]) -> Iterator[bytes]:
    """The records of an uncompressed TFRecord stream, in order.

    Integrity comes from gzip's CRC-32 of each member, which the decompressor checks; the
    frames' own CRC32Cs are skipped. ValueError on a stream that ends inside a frame.
    """
    while True:
        header = stream.read(_LENGTH.size)
        if not header:
            return
        if len(header) < _LENGTH.size:
            raise ValueError("TFRecord stream ends inside a length")
        (length,) = _LENGTH.unpack(header)
        frame = stream.read(length + _FRAME_OVERHEAD)
        if len(frame) < length + _FRAME_OVERHEAD:
            raise ValueError("TFRecord stream ends inside a record")
        yield frame[4 : 4 + length]


def iter_examples(output: str, record_id: int | None = None) -> Iterator[dict]:
    """Every image of the dataset in `output` (or only those of `record_id`), as a dict of plain values.

    Keys are the Example features of dataset.json: "image" a (height, width) numpy array in
    the pixel dtype, ints for int64 features, str for string features (bytes for "image").
    Shards are read in the order dataset.json lists them.
    """
    manifest = read_manifest(output)
    dtype = np.dtype(manifest["image"]["dtype"]).newbyteorder("<")
    shape = tuple(manifest["image"]["shape"])
    kinds = {name: spec["dtype"] for name, spec in manifest["features"].items()}
    defaults = {name: spec.get("default_value") for name, spec in manifest["features"].items()}
    for path in shard_paths(output, "images"):
        with storage.open_read(path) as raw, igzip.GzipFile(fileobj=raw) as stream:
            for payload in tfrecord_payloads(stream):
                feature = example_proto.parse_example(payload)
                if record_id is not None and feature["record_id"] != record_id:
                    continue
                values = {}
                for name, kind in kinds.items():
                    if name not in feature:  # written before the feature existed
                        values[name] = defaults[name]
                    elif kind == "int64":
                        values[name] = feature[name]
                    elif name == "image":
                        values[name] = np.frombuffer(feature[name], dtype=dtype).reshape(shape)
                    else:
                        values[name] = feature[name].decode("utf-8")
                yield values


def load_images(output: str, record_id: int) -> dict[str, list[np.ndarray]]:
    """zenodo-ml's images_<id>.pkl: {path in the repository: [image of segment 0, 1, ...]} for one record.

    Each image is a (height, width) numpy array of code points in the dataset's pixel dtype
    (80x80 uint16 by default). Only imaged files are keys, in path order. The shards are read
    until every image that files/ lists for the record is found. KeyError if the record is not
    in the dataset.
    """
    expected = {row["path"]: row["n_segments"] for row in read_rows(output, "files") if row["record_id"] == record_id}
    if not expected and not any(row["record_id"] == record_id for row in read_rows(output, "records")):
        raise KeyError(f"record {record_id} is not in {output}")
    wanted = {path: n for path, n in expected.items() if n}
    found: dict[str, dict[int, np.ndarray]] = {path: {} for path in sorted(wanted)}
    remaining = sum(wanted.values())
    if remaining:
        for example in iter_examples(output, record_id):
            found.setdefault(example["path"], {})[example["segment"]] = example["image"]
            remaining -= 1
            if remaining == 0:
                break
    return {path: [segments[index] for index in sorted(segments)] for path, segments in found.items()}


def load_metadata(output: str, record_id: int) -> dict:
    """zenodo-ml's metadata_<id>.pkl: {"tree": the repository's tree, "hit": the raw Zenodo record} for one record,
    plus "record": the rest of its records/ row.

    "tree" is the records/ tree (a list of nodes: path, parent, name, depth, kind, size, n_files;
    beam_zml.core.tree.to_networkx makes it a graph); "hit" is the record as the Zenodo API
    returned it (None for local repositories). KeyError if the record is not in the dataset.
    """
    for row in read_rows(output, "records"):
        if row["record_id"] == record_id:
            raw = row.get("raw_json")
            return {
                "tree": row["tree"],
                "hit": json.loads(raw) if raw else None,
                "record": {name: value for name, value in row.items() if name not in ("tree", "raw_json")},
            }
    raise KeyError(f"record {record_id} is not in {output}")
