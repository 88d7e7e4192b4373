"""Read a built dataset back with plain tools: json, fastavro and tf.data."""

from __future__ import annotations

import argparse
import json
import os
from typing import Iterator

import fastavro
import numpy as np

from beam_zml import MANIFEST, storage
from beam_zml.core.examples import feature_spec
from beam_zml.schemas import load_schema

SCHEMA_OF_SINK = {"records": "record", "files": "file"}  # the Avro sinks and their schemas

BATCH = 256  # examples parsed at once: tf.io.parse_example is much faster on batches than one by one


def read_manifest(output: str) -> dict:
    """OUT/dataset.json."""
    with storage.open_read(storage.join(output, MANIFEST)) as handle:
        return json.loads(handle.read())


def shard_paths(output: str, kind: str) -> list[str]:
    """The final shards of one sink ("images", "records", "files" or "errors"), as dataset.json lists them."""
    return [storage.join(output, relative) for relative in read_manifest(output)["shards"][kind]]


def read_rows(output: str, kind: str) -> Iterator[dict]:
    """Every row of records/ or files/ (Avro), with every field of the current schema: a shard written
    with an older one (files/ before version 2 had no is_vendored...) gets its defaults for what it lacks.

    The defaults are filled in here rather than by fastavro's schema resolution (`reader_schema`),
    which reads 3x slower even when the two schemas are the same.
    """
    defaults = _field_defaults(SCHEMA_OF_SINK[kind])
    for path in shard_paths(output, kind):
        with storage.open_read(path) as handle:
            reader = fastavro.reader(handle)
            written = {field["name"] for field in reader.writer_schema["fields"]}
            missing = {name: value for name, value in defaults.items() if name not in written}
            if missing:
                yield from ({**missing, **row} for row in reader)
            else:
                yield from reader


def _field_defaults(schema: str) -> dict:
    return {field["name"]: field["default"] for field in load_schema(schema)["fields"] if "default" in field}


def read_errors(output: str) -> Iterator[dict]:
    """Every row of errors/ (JSON lines)."""
    for path in shard_paths(output, "errors"):
        with storage.open_read(path) as handle:
            for line in handle.read().splitlines():
                yield json.loads(line)


def parse_spec(manifest: dict) -> dict:
    """The tf.io.parse_single_example spec described in dataset.json, plus the features this version
    writes with a default value that an older dataset.json lacks (is_vendored...): its Examples parse
    to the same features, the missing ones as their defaults.
    """
    import tensorflow as tf

    features = {name: spec for name, spec in feature_spec().items() if "default_value" in spec} | manifest["features"]
    return {
        name: tf.io.FixedLenFeature(spec["shape"], spec["dtype"], default_value=spec.get("default_value"))
        for name, spec in features.items()
    }


def read_examples(output: str) -> Iterator[dict]:
    """Every image as a dict of numpy values, "image" decoded to a (height, width) array."""
    import tensorflow as tf

    manifest = read_manifest(output)
    spec = parse_spec(manifest)
    dtype = np.dtype(manifest["image"]["dtype"]).newbyteorder("<")
    shape = manifest["image"]["shape"]
    records = tf.data.TFRecordDataset(shard_paths(output, "images"), compression_type="GZIP")
    for serialized in records.as_numpy_iterator():
        example = tf.io.parse_single_example(serialized, spec)
        values = {name: value.numpy() for name, value in example.items()}
        values["image"] = np.frombuffer(values["image"], dtype=dtype).reshape(shape)
        yield values


def image_examples(output: str, manifest: dict, features: tuple[str, ...]):
    """A tf.data.Dataset of dicts of the named features of every image, in shard order."""
    import tensorflow as tf

    spec = {name: feature for name, feature in parse_spec(manifest).items() if name in features}
    records = tf.data.TFRecordDataset(shard_paths(output, "images"), compression_type="GZIP")
    return records.batch(BATCH).map(lambda batch: tf.io.parse_example(batch, spec)).unbatch()


def require_dataset(command: argparse.ArgumentParser, output: str) -> dict:
    """dataset.json of `output`, or the command's one-line error if there is no finished dataset there."""
    if not storage.exists(storage.join(output, MANIFEST)):
        command.error(f"{output}: no dataset.json, so not a finished dataset")
    return read_manifest(output)


def refuse_dest_inside(command: argparse.ArgumentParser, output: str, dest: str) -> None:
    """The command's one-line error if `dest` is the dataset `output` or a folder inside it: a reader never
    writes into the dataset it reads (others read it too, and a rebuild's --overwrite would delete it)."""

    def absolute(path: str) -> str:
        return path.rstrip("/") if "://" in path else os.path.realpath(path)

    inside, folder = absolute(dest), absolute(output)
    if inside == folder or inside.startswith(folder + ("/" if "://" in folder else os.sep)):
        command.error(f"{dest}: inside the dataset {output}; write somewhere else")


def default_dest(output: str, what: str) -> str:
    """Where a command that reads `output` writes by default: ``<dataset folder name>-<what>`` in the current directory.

    Not inside the dataset: a dataset is an artefact others read, maybe on
    read-only storage or in a bucket (and beside it is usually the same
    storage); a report or a model is the reader's own work, written where they
    work and opened from there. ``zml report zml-stdlib`` writes
    ``./zml-stdlib-report``; ``gs://bucket/zenodo-10k`` gives ``./zenodo-10k-report``.
    """
    name = output.rstrip("/").rsplit("/", 1)[-1] if "://" in output else os.path.basename(os.path.abspath(output))
    return f"{name or 'dataset'}-{what}"
