"""The Avro schemas that ship with the package and are written into every Avro file."""

from __future__ import annotations

import functools
import json
from importlib import resources

import fastavro

SCHEMA_VERSIONS = {"record": 1, "file": 2}  # file 2: Linguist's is_vendored, is_generated, is_documentation, is_test; n_copies, n_records_sharing, is_canonical


@functools.lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    """The parsed schema `name` ("record" or "file"), as fastavro needs it."""
    text = resources.files(__package__).joinpath(f"{name}.avsc").read_text()
    return fastavro.parse_schema(json.loads(text))
