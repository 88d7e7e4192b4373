"""Read a built dataset back with plain tools: json, fastavro and tf.data."""

from __future__ import annotations

import json
from typing import Iterator

import fastavro
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems


def read_manifest(output: str) -> dict:
    """OUT/dataset.json."""
    with FileSystems.open(FileSystems.join(output, "dataset.json"), compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return json.loads(handle.read())


def shard_paths(output: str, kind: str) -> list[str]:
    """The final shards of one sink ("images", "records", "files" or "errors"), as dataset.json lists them."""
    return [FileSystems.join(output, relative) for relative in read_manifest(output)["shards"][kind]]


def read_rows(output: str, kind: str) -> Iterator[dict]:
    """Every row of records/ or files/ (Avro)."""
    for path in shard_paths(output, kind):
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            yield from fastavro.reader(handle)


def read_errors(output: str) -> Iterator[dict]:
    """Every row of errors/ (JSON lines)."""
    for path in shard_paths(output, "errors"):
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            for line in handle.read().splitlines():
                yield json.loads(line)


def feature_spec(manifest: dict) -> dict:
    """The tf.io.parse_single_example spec described in dataset.json."""
    import tensorflow as tf

    return {name: tf.io.FixedLenFeature(spec["shape"], spec["dtype"]) for name, spec in manifest["features"].items()}


def read_examples(output: str) -> Iterator[dict]:
    """Every image as a dict of numpy values, "image" decoded to a (height, width) array."""
    import tensorflow as tf

    manifest = read_manifest(output)
    spec = feature_spec(manifest)
    dtype = np.dtype(manifest["image"]["dtype"]).newbyteorder("<")
    shape = manifest["image"]["shape"]
    records = tf.data.TFRecordDataset(shard_paths(output, "images"), compression_type="GZIP")
    for serialized in records.as_numpy_iterator():
        example = tf.io.parse_single_example(serialized, spec)
        values = {name: value.numpy() for name, value in example.items()}
        values["image"] = np.frombuffer(values["image"], dtype=dtype).reshape(shape)
        yield values
