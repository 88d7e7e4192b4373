"""Beam metrics counters, all in one namespace so a user finds them together.

The names, as a runner's UI shows them (Flink: the job's "Accumulators" tab; Spark: the
stage's "Accumulators" table, as Beam's documentation says; not looked at on our machines; Dask:
at the end only): records_listed (read, ok or not), records_ok, records_failed, records_excluded,
records_from:SOURCE, records_harvested, search_failed, records_unreadable, files_seen, files_imaged,
files_skipped:REASON, images, bytes_seen, bytes_imaged.

On the DirectRunner, whose counters can only be read once the run is over, `inc` also keeps
this process's totals (written every 0.5 s) in a file of the folder named by $BEAM_ZML_PROGRESS_DIR (when set), so
that `zml build` can print progress while the run goes on (pipelines/progress.py).
"""

from __future__ import annotations

import collections
import json
import os
import threading
import time
from dataclasses import dataclass

import apache_beam as beam
from apache_beam import coders
from apache_beam.metrics import Metrics

NAMESPACE = "beam_zml"
PROGRESS_DIR_VARIABLE = "BEAM_ZML_PROGRESS_DIR"
WRITE_EVERY_SECONDS = 0.5


def inc(name: str, value: int = 1) -> None:
    """Add `value` to the counter `name` (e.g. "files_skipped:binary")."""
    Metrics.counter(NAMESPACE, name).inc(value)
    folder = os.environ.get(PROGRESS_DIR_VARIABLE)
    if folder:
        _tally(folder, os.getpid()).add(name, value)


class _Tally:
    """One process's counter totals, written (whole, atomically) to FOLDER/PID.json by a daemon thread every 0.5 s."""

    def __init__(self, folder: str, pid: int):
        self._path = os.path.join(folder, f"{pid}.json")
        self._totals: collections.Counter = collections.Counter()
        self._lock = threading.Lock()  # the DirectRunner runs bundles on several threads of one process
        self._dirty = False
        threading.Thread(target=self._write_now_and_then, name="beam_zml-progress", daemon=True).start()

    def add(self, name: str, value: int) -> None:
        with self._lock:
            self._totals[name] += value
            self._dirty = True

    def _write_now_and_then(self) -> None:
        while os.path.isdir(os.path.dirname(self._path)):  # the run's progress folder goes when the run ends
            time.sleep(WRITE_EVERY_SECONDS)
            with self._lock:
                if not self._dirty:
                    continue
                totals, self._dirty = dict(self._totals), False
            temporary = f"{self._path}.tmp"
            try:
                with open(temporary, "w") as handle:
                    json.dump(totals, handle)
                os.replace(temporary, self._path)
            except OSError:  # the folder went meanwhile: progress is a courtesy, never a failure
                return


_TALLIES: dict[tuple[str, int], _Tally] = {}  # per process and folder: a worker process outlives one bundle


def _tally(folder: str, pid: int) -> _Tally:
    key = (folder, pid)
    if key not in _TALLIES:
        _TALLIES.setdefault(key, _Tally(folder, pid))
    return _TALLIES[key]


def inc_all(counts: dict[str, int]) -> None:
    """Add each of `counts` (from beam_zml.core.counts) to its counter."""
    for name, value in counts.items():
        inc(name, value)


SHUFFLED_BYTES = "shuffled_bytes"  # counter prefix: SHUFFLED_BYTES + ":" + the shuffle's name


@dataclass
class CountShuffledBytes(beam.PTransform):
    """Pass elements through, adding their encoded size to the counter `shuffled_bytes:<shuffle>`.

    Put in front of a shuffle (Reshuffle, GroupByKey), it tells what the shuffle moves on any runner,
    measured with Beam's default coder for untyped elements (FastPrimitivesCoder), as the runner
    encodes them: the README's "bytes shuffled per MB of source" come from these counters.
    """

    shuffle: str

    def expand(self, elements):
        return elements | f"CountBytes{self.shuffle}" >> beam.ParDo(_CountBytesFn(f"{SHUFFLED_BYTES}:{self.shuffle}"))


class _CountBytesFn(beam.DoFn):
    def __init__(self, name: str):
        self._name = name

    def setup(self):
        self._coder = coders.FastPrimitivesCoder()
        self._counter = Metrics.counter(NAMESPACE, self._name)

    def process(self, element):
        self._counter.inc(len(self._coder.encode(element)))
        yield element
