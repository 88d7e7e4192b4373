"""WriteManifest: OUT/dataset.json, written last, once every shard is in place."""

from __future__ import annotations

import collections
import dataclasses
import json

import apache_beam as beam

import beam_zml
from beam_zml import MANIFEST, SINK_DIRS, storage
from beam_zml.core.counts import shape_counts
from beam_zml.core.examples import feature_spec
from beam_zml.core.notes import COUNTS
from beam_zml.schemas import SCHEMA_VERSIONS


class Summarise(beam.CombineFn):
    """(COUNTS, {name: count}) and (SHARD, path relative to the output) notes -> ({name: total}, sorted shard paths).

    Counts and shard paths meet in one combine (one shuffle, no side input), and its output
    exists only once every shard path is in, that is once every shard has been written.
    """

    def create_accumulator(self):
        return collections.Counter(), []

    def add_input(self, accumulator, element):
        kind, value = element
        if kind == COUNTS:
            accumulator[0].update(value)
        else:
            accumulator[1].append(value)
        return accumulator

    def merge_accumulators(self, accumulators):
        counts, shards = collections.Counter(), []
        for more_counts, more_shards in accumulators:
            counts.update(more_counts)
            shards.extend(more_shards)
        return counts, shards

    def extract_output(self, accumulator):
        return dict(accumulator[0]), sorted(accumulator[1])


def manifest(*, options: dict, counts: dict, shards: list[str], run: dict, previous: dict | None) -> dict:
    """The content of dataset.json; `shards` are relative to the output (images/..., files/...); a resumed
    dataset's `previous` manifest is merged in."""
    relative = sorted(shards)
    new_shards = {kind: [path for path in relative if path.split("/", 1)[0] == kind] for kind in SINK_DIRS}
    if previous is not None:
        counts = add_counts(previous["counts"], counts)
        new_shards = {kind: sorted(previous["shards"][kind] + new_shards[kind]) for kind in SINK_DIRS}
    return {
        "format_version": beam_zml.FORMAT_VERSION,
        "tool": "beam_zml",
        "tool_version": beam_zml.__version__,
        "runner": run["runner"],
        "runs": (previous["runs"] if previous is not None else []) + [run],
        "options": options,
        "image": {
            "dtype": options["pixel_dtype"],
            "shape": [options["height"], options["width"]],
            "byte_order": "little",
            "pad": options["pad"],
        },
        "features": feature_spec(),
        "schemas": {"records": SCHEMA_VERSIONS["record"], "files": SCHEMA_VERSIONS["file"]},
        "counts": counts,
        "shards": new_shards,
    }


def add_counts(a: dict, b: dict) -> dict:
    """Nested counts added key by key."""
    merged = dict(a)
    for key, value in b.items():
        merged[key] = add_counts(a.get(key, {}), value) if isinstance(value, dict) else a.get(key, 0) + value
    return merged


def write_manifest(output: str, content: dict) -> str:
    """Write OUT/dataset.json whole or not at all; returns its path."""
    path = storage.join(output, MANIFEST)
    text = json.dumps(content, indent=2, sort_keys=True).encode("utf-8")
    storage.write_atomically(path, lambda handle: handle.write(text), mime_type="application/json")
    return path


def remove_temporary_files(output: str) -> list[str]:
    """Delete what a killed attempt left behind: hidden *.tmp files in the sink folders."""
    leftovers = [path for kind in SINK_DIRS for path in storage.list_folder(storage.join(output, kind), f".*{storage.TEMP_SUFFIX}")]
    storage.delete(leftovers)
    return leftovers


class _WriteManifestFn(beam.DoFn):
    def __init__(self, output: str, options: dict, run: dict, previous: dict | None):
        self._output = output
        self._options = options
        self._run = run
        self._previous = previous

    def process(self, summary: tuple[dict, list[str]]):
        flat_counts, shards = summary
        remove_temporary_files(self._output)
        content = manifest(
            options=self._options,
            counts=shape_counts(flat_counts),
            shards=shards,
            run=self._run,
            previous=self._previous,
        )
        yield write_manifest(self._output, content)


@dataclasses.dataclass
class WriteManifest(beam.PTransform):
    """(COUNTS, counts) and (SHARD, path) notes -> dataset.json, once every shard named is written.

    `run` describes this run (runner, sources, run tag); `previous` is the manifest of a resumed dataset.
    """

    output: str
    options: dict
    run: dict
    previous: dict | None = None

    def expand(self, notes):
        return (
            notes
            | "Summarise" >> beam.CombineGlobally(Summarise())
            | "WriteDatasetJson" >> beam.ParDo(_WriteManifestFn(self.output, self.options, self.run, self.previous))
        )
