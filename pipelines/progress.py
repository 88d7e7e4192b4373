"""What `zml build` tells its user: progress lines while the run goes on, and one line at the end.

Beam 2.62's DirectRunner runs a batch pipeline to the end inside `pipeline.run()` (in_memory
and multi_processing alike), and its metrics are readable only then. So while it runs, the
counters' own per-process totals (beam_zml.transforms.counters, written under
$BEAM_ZML_PROGRESS_DIR) are summed here every few seconds. On a cluster the same numbers are
the runner's Beam counters.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from typing import TextIO

from beam_zml import storage
from beam_zml.consume.dataset import read_manifest
from beam_zml.transforms.counters import PROGRESS_DIR_VARIABLE
from beam_zml.transforms.read_records import SOURCE_STAGES

DIRECT_RUNNERS = ("directrunner", "direct", "switchingdirectrunner", "bundlebaseddirectrunner")


class BuildFailed(Exception):
    """The run finished, but gave nothing to use: every record failed, or its records could not all be read."""


class Progress:
    """A context that prints a progress line to `stream` every `every` seconds while the block runs.

    Lines look like `zml build: 12 of 191 records (1 failed), 1,234 files, 4.5 MB imaged, 0.8 MB/s, 0:00:21`.
    Only for the DirectRunner and only when `enabled` (a terminal, no --quiet); otherwise it does nothing.
    """

    def __init__(self, prog: str, total: int | None, *, enabled: bool, every: float = 5.0, stream: TextIO | None = None):
        self._prog = prog
        self._total = total
        self._enabled = enabled
        self._every = every
        self._stream = stream if stream is not None else sys.stderr
        self._stop = threading.Event()
        self._folder: str | None = None
        self._thread: threading.Thread | None = None
        self._start = 0.0

    def __enter__(self) -> "Progress":
        if self._enabled:
            self._folder = tempfile.mkdtemp(prefix="beam_zml-progress-")
            os.environ[PROGRESS_DIR_VARIABLE] = self._folder  # inherited by multi_processing's worker processes
            self._start = time.monotonic()
            self._thread = threading.Thread(target=self._print_lines, name="zml-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            os.environ.pop(PROGRESS_DIR_VARIABLE, None)
            shutil.rmtree(self._folder, ignore_errors=True)

    def _print_lines(self) -> None:
        while not self._stop.wait(self._every):
            print(progress_line(self._prog, self.totals(), self._total, time.monotonic() - self._start), file=self._stream, flush=True)

    def totals(self) -> dict[str, int]:
        """The counters summed over the worker processes' files so far."""
        totals: dict[str, int] = {}
        for path in glob.glob(os.path.join(glob.escape(self._folder), "*.json")):
            try:
                with open(path) as handle:
                    counts = json.load(handle)
            except (OSError, ValueError):
                continue  # being replaced right now: the next line has it
            for name, value in counts.items():
                totals[name] = totals.get(name, 0) + value
        return totals


def progress_line(prog: str, totals: dict[str, int], total: int | None, elapsed: float) -> str:
    """One progress line from counter totals; `total` is the number of records to build, when known."""
    failed = totals.get("records_failed", 0)  # counted as record rows are made, near the run's end
    done = totals.get("records_listed", 0) + totals.get("records_excluded", 0)
    if total is not None:
        records = f"{done:,} of {plural(total, 'record')}"
    elif totals.get("records_harvested"):
        records = f"{done:,} of {totals['records_harvested']:,} records found so far"
    else:
        records = plural(done, "record")
    megabytes = totals.get("bytes_imaged", 0) / 1e6
    rate = megabytes / elapsed if elapsed > 0 else 0.0
    clock = str(dt.timedelta(seconds=int(elapsed)))
    return (
        f"{prog}: {records} ({failed:,} failed), {plural(totals.get('files_seen', 0), 'file')}, "
        f"{megabytes:,.1f} MB imaged, {rate:,.2f} MB/s, {clock}"
    )


# What every worker of the DirectRunner's multi_processing mode logs at start-up, about options it does not
# need: relayed as warnings by the runner, they are no fault of the user's.
HARMLESS_WORKER_WARNINGS = ("No semi_persistent_directory found", "Discarding unparseable args")


def hide_harmless_beam_warnings() -> None:
    """Drop HARMLESS_WORKER_WARNINGS from the log of Beam's local job service; every other warning stays."""

    def keep(record: logging.LogRecord) -> bool:
        return not any(text in record.getMessage() for text in HARMLESS_WORKER_WARNINGS)

    logging.getLogger("apache_beam.runners.portability.local_job_service").addFilter(keep)


def is_direct_runner(runner: str | None) -> bool:
    """True for Beam's DirectRunner under any of its names (None: Beam's default, the DirectRunner)."""
    return runner is None or (isinstance(runner, str) and runner.lower() in DIRECT_RUNNERS)


def outcome(output: str, previous: dict | None) -> str:
    """The last line of a finished build: where the dataset is, records ok/failed, and where the errors are.

    Raises BuildFailed (its message the last line) when this run's records all failed, or when
    reading the records to build failed (an error line of a stage in SOURCE_STAGES), naming the first error,
    or when the run made no image at all (its files were all skipped, or there were none), saying why.
    `previous` is the manifest a --resume run added to: only this run's counts and errors count, and the line
    names this run's records and images, then the dataset's totals.
    """
    manifest = read_manifest(output)
    counts = manifest["counts"]
    before = previous["counts"] if previous is not None else {}
    ok = counts["records"]["ok"] - before.get("records", {}).get("ok", 0)
    failed = counts["records"]["failed"] - before.get("records", {}).get("failed", 0)
    errors = _errors_of_this_run(output, manifest, previous)
    where = f"{storage.join(output, 'errors')}/ ({plural(len(errors), 'line')})" if errors else "none"
    source_failed = any(row["stage"] in SOURCE_STAGES for row in errors)
    if source_failed or (ok == 0 and failed > 0):
        if source_failed:
            what = "the records to build could not all be read"
        else:
            what = "the only record failed" if failed == 1 else f"all {failed:,} records failed"
        raise BuildFailed(f"{what}; the first error: {_first(errors)}; errors in {where}")
    images = counts["images"] - before.get("images", 0)
    if images == 0 and ok > 0:
        raise BuildFailed(f"no image made: {_why_no_image(counts, before, output)}")
    if previous is None:
        return f"dataset in {output}: {plural(ok, 'record')} ok, {failed:,} failed, {plural(images, 'image')} in all; errors: {where}"
    return (  # a resumed run: what it added, then the dataset's totals, each named so
        f"dataset in {output}: this run {plural(ok, 'record')} ok, {failed:,} failed, {plural(images, 'image')}; "
        f"in all {plural(counts['records']['total'], 'record')}, {plural(counts['images'], 'image')}; errors: {where}"
    )


def _why_no_image(counts: dict, before: dict, output: str) -> str:
    """What this run's files were, when none was imaged: none at all, or skipped for these reasons."""
    seen = counts["files"]["seen"] - before.get("files", {}).get("seen", 0)
    if seen == 0:
        return "the records hold no file"
    earlier = before.get("files", {}).get("skipped", {})
    reasons = {reason: n - earlier.get(reason, 0) for reason, n in counts["files"]["skipped"].items()}
    found = ", ".join(f"{n:,} {reason}" for reason, n in sorted(reasons.items(), key=lambda item: (-item[1], item[0])) if n > 0)
    return f"{plural(seen, 'file')} seen, none imaged (skipped: {found}); each file and its reason: zml ls {output} --record ID"


def plural(count: int, noun: str) -> str:
    """'1 record', '2,979 images'."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _errors_of_this_run(output: str, manifest: dict, previous: dict | None) -> list[dict]:
    """The errors/ rows written by this run (a resumed dataset also lists the shards of earlier runs)."""
    earlier = set(previous["shards"]["errors"]) if previous is not None else set()
    rows = []
    for relative in manifest["shards"]["errors"]:
        if relative not in earlier:
            with storage.open_read(storage.join(output, relative)) as handle:
                rows.extend(json.loads(line) for line in handle.read().splitlines())
    return rows


def _first(errors: list[dict]) -> str:
    """The first error of reading the records (the search, a bad line), else the first record-level error
    (a record that failed as a whole, not one of its files) by record id."""
    if not errors:
        return "unknown"
    row = min(
        errors,
        key=lambda row: (row["stage"] not in SOURCE_STAGES, row["path"] is not None, row["record_id"] or 0, row["path"] or "", row["message"]),
    )
    return row["message"]
