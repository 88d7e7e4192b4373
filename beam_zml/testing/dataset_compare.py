"""What must be equal between two builds of the same input, whatever the runner: rows and images, not shards."""

from __future__ import annotations

import collections
import json
from pathlib import Path

from beam_zml import MANIFEST, SINK_DIRS
from beam_zml.consume.dataset import (
    read_errors,
    read_examples,
    read_manifest,
    read_rows,
)

_RUN_SPECIFIC = ("runner", "runs")


def dataset_content(output: str) -> dict:
    """Records, files and error rows (sorted), the multiset of images, and the manifest minus run facts."""
    images = collections.Counter(
        (int(e["record_id"]), e["path"], int(e["segment"]), e["image"].tobytes()) for e in read_examples(output)
    )
    manifest = {k: v for k, v in read_manifest(output).items() if k not in _RUN_SPECIFIC and k != "shards"}
    return {
        "records": sorted(json.dumps(row, sort_keys=True) for row in read_rows(output, "records")),
        "files": sorted(json.dumps(row, sort_keys=True) for row in read_rows(output, "files")),
        "errors": sorted(json.dumps(row, sort_keys=True) for row in read_errors(output)),
        "images": images,
        "manifest": manifest,
    }


def assert_same_dataset(actual: str, expected: str) -> None:
    """Fails if any record, file or error row or image is missing, extra or duplicated, or a stray file is left."""
    got, want = dataset_content(actual), dataset_content(expected)
    for part in ("records", "files", "errors", "manifest"):
        assert got[part] == want[part], f"{part} differ"
    missing, extra = want["images"] - got["images"], got["images"] - want["images"]
    assert not missing and not extra, f"{sum(missing.values())} images missing, {sum(extra.values())} extra or duplicated"
    assert_only_listed_files(actual)


def assert_only_listed_files(output: str) -> None:
    """No beam-temp folder, hidden temporary or unlisted shard: only what dataset.json lists."""
    assert sorted(path.name for path in Path(output).iterdir()) == sorted([*SINK_DIRS, MANIFEST])
    manifest = read_manifest(output)
    listed = {path for paths in manifest["shards"].values() for path in paths} | {"dataset.json"}
    on_disk = {str(p.relative_to(output)) for p in Path(output).rglob("*") if p.is_file()}
    assert on_disk == listed, f"unlisted: {sorted(on_disk - listed)}, missing: {sorted(listed - on_disk)}"
