"""OUT before a run: refuse to clobber a dataset, clear it with --overwrite, or pick up where it stopped with --resume.

dataset.json is the commit record: a shard that it does not list belongs to a run
that never finished, so --resume deletes such shards and redoes their records.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

from beam_zml import MANIFEST, SINK_DIRS, storage
from beam_zml.consume.dataset import read_manifest, read_rows


class OutputError(Exception):
    """OUT cannot be used as asked; the message says why."""


@dataclass(frozen=True)
class PreparedOutput:
    path: str  # absolute path or URL, no trailing slash
    run_tag: str = ""  # "" for a new dataset; a UTC time stamp naming the shards of a resumed run
    done: frozenset = field(default_factory=frozenset)  # record ids already in the dataset
    previous: dict | None = None  # the manifest of the dataset being resumed


def prepare_output(output: str, *, overwrite: bool, resume: bool, options: dict) -> PreparedOutput:
    """Make OUT ready for this run, per the rules above; `options` must match a resumed dataset's."""
    path = (output if "://" in output else os.path.abspath(output)).rstrip("/")
    manifest_path = storage.join(path, MANIFEST)
    existing = [p for p in [manifest_path] + [storage.join(path, kind) for kind in SINK_DIRS] if storage.exists(p)]
    if resume and storage.exists(manifest_path):
        previous = read_manifest(path)
        changed = sorted(name for name, value in options.items() if previous["options"].get(name) != value)
        if changed:
            raise OutputError(f"--resume with options that differ from the dataset in {path}: {', '.join(changed)}")
        _delete_unlisted_shards(path, previous)
        done = frozenset(row["record_id"] for row in read_rows(path, "records"))
        return PreparedOutput(path, dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S"), done, previous)
    if existing and not (overwrite or resume):
        raise OutputError(f"{path} already holds a dataset; pass --overwrite to replace it or --resume to finish it")
    if existing:
        storage.delete(existing)  # --overwrite, or --resume of a run that never wrote dataset.json
    return PreparedOutput(path)


def _delete_unlisted_shards(path: str, manifest: dict) -> None:
    listed = {storage.join(path, relative) for paths in manifest["shards"].values() for relative in paths}
    found = [p for kind in SINK_DIRS for p in storage.list_folder(storage.join(path, kind))]
    storage.delete(p for p in found if p not in listed)
