"""Beam metrics counters, all in one namespace so a user finds them together."""

from dataclasses import dataclass

import apache_beam as beam
from apache_beam import coders
from apache_beam.metrics import Metrics

NAMESPACE = "beam_zml"


def inc(name: str, value: int = 1) -> None:
    """Add `value` to the counter `name` (e.g. "files_skipped:binary")."""
    Metrics.counter(NAMESPACE, name).inc(value)


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
