"""OUT before a run: refuse to clobber a dataset, clear it with --overwrite, or pick up where it stopped with --resume.

dataset.json is the commit record: a shard that it does not list belongs to a run
that never finished, so --resume deletes such shards and redoes their records.

--resume --retry-failed also rebuilds the records whose row is `failed`. So that readers still see exactly one
row per record, their rows (and their errors lines) are taken out of the listed shards before the run: each
shard that holds one is rewritten without them under its own name, then dataset.json is rewritten with the
counts less theirs. The dataset is then a finished dataset without those records, which the run adds back;
a crash before it ends leaves them for the next --resume. A failed record has no files or images rows
(ListRepositoryFiles emits none for it), so those shards are not touched.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field

import fastavro

from beam_zml import MANIFEST, SINK_DIRS, storage
from beam_zml.consume.dataset import read_manifest, read_rows
from beam_zml.core.counts import record_counts, shape_counts
from beam_zml.schemas import load_schema
from beam_zml.sinks.manifest import add_counts, write_manifest


class OutputError(Exception):
    """OUT cannot be used as asked; the message says why."""


@dataclass(frozen=True)
class PreparedOutput:
    path: str  # absolute path or URL, no trailing slash
    run_tag: str = ""  # "" for a new dataset; a UTC time stamp naming the shards of a resumed run
    done: frozenset = field(default_factory=frozenset)  # record ids already in the dataset
    previous: dict | None = None  # the manifest of the dataset being resumed


def prepare_output(output: str, *, overwrite: bool, resume: bool, options: dict, retry_failed: bool = False) -> PreparedOutput:
    """Make OUT ready for this run, per the rules above; `options` must match a resumed dataset's.

    `retry_failed` (with `resume`): the failed records are taken out of the dataset, so the run builds them again.
    """
    path = (output if "://" in output else os.path.abspath(output)).rstrip("/")
    manifest_path = storage.join(path, MANIFEST)
    existing = [p for p in [manifest_path] + [storage.join(path, kind) for kind in SINK_DIRS] if storage.exists(p)]
    if resume and storage.exists(manifest_path):
        previous = read_manifest(path)
        changed = sorted(name for name, value in options.items() if previous["options"].get(name) != value)
        if changed:
            raise OutputError(f"--resume with options that differ from the dataset in {path}: {', '.join(changed)}")
        _delete_unlisted_shards(path, previous)
        if retry_failed:
            previous = _take_out_failed_records(path, previous)
        done = frozenset(row["record_id"] for row in read_rows(path, "records"))
        return PreparedOutput(path, dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S"), done, previous)
    if existing and not (overwrite or resume):
        what = "a dataset" if manifest_path in existing else "the folders of a dataset that never finished"
        raise OutputError(f"{path} already holds {what}; pass --overwrite to replace it or --resume to finish it")
    # --overwrite, or --resume of a run that never wrote dataset.json: our files go, anything else stays.
    storage.delete([manifest_path] if manifest_path in existing else [])
    storage.delete(_our_files(path))
    for folder in existing:
        if folder != manifest_path and "://" not in folder and not os.listdir(folder):
            os.rmdir(folder)
    return PreparedOutput(path)


def _our_files(path: str) -> list[str]:
    """The files of OUT's sink folders that a build writes: its shards (`images-...`) and hidden temporary files."""
    found = []
    for kind in SINK_DIRS:
        found += storage.list_folder(storage.join(path, kind), f"{kind}-*")
        found += storage.list_folder(storage.join(path, kind), f".*{storage.TEMP_SUFFIX}")
    return found


def _delete_unlisted_shards(path: str, manifest: dict) -> None:
    listed = {storage.join(path, relative) for paths in manifest["shards"].values() for relative in paths}
    storage.delete(p for p in _our_files(path) if p not in listed)


def _take_out_failed_records(path: str, manifest: dict) -> dict:
    """Rewrite the records and errors shards without the failed records' rows, then dataset.json; returns it."""
    removed: dict = {}
    failed: set[int] = set()
    for relative in manifest["shards"]["records"]:
        shard = storage.join(path, relative)
        with storage.open_read(shard) as handle:
            rows = list(fastavro.reader(handle))
        kept = [row for row in rows if row["status"] != "failed"]
        if len(kept) == len(rows):
            continue
        for row in rows:
            if row["status"] == "failed":
                failed.add(row["record_id"])
                removed = add_counts(removed, {name: -value for name, value in record_counts(row).items()})
        storage.write_atomically(shard, lambda handle: fastavro.writer(handle, load_schema("record"), kept, codec="deflate"))
    if not failed:
        return manifest
    for relative in manifest["shards"]["errors"]:
        shard = storage.join(path, relative)
        with storage.open_read(shard) as handle:
            lines = handle.read().splitlines(keepends=True)
        kept_lines = [line for line in lines if json.loads(line).get("record_id") not in failed]
        if len(kept_lines) != len(lines):
            removed["errors"] = removed.get("errors", 0) - (len(lines) - len(kept_lines))
            storage.write_atomically(shard, lambda handle: handle.write(b"".join(kept_lines)))
    manifest = {**manifest, "counts": add_counts(manifest["counts"], shape_counts(removed))}
    write_manifest(path, manifest)
    return manifest
