"""Beam metrics counters, all in one namespace so a user finds them together."""

from apache_beam.metrics import Metrics

NAMESPACE = "beam_zml"


def inc(name: str, value: int = 1) -> None:
    """Add `value` to the counter `name` (e.g. "files_skipped:binary")."""
    Metrics.counter(NAMESPACE, name).inc(value)


def inc_all(counts: dict[str, int]) -> None:
    """Add each of `counts` (from beam_zml.core.counts) to its counter."""
    for name, value in counts.items():
        inc(name, value)
