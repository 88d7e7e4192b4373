"""docs/dataset-format.md describes every field the code writes, and nothing the code does not write.

The field tables of the page are compared with their one home in the code: the Avro schemas
(records, files, tree), the TFRecord feature table (images), the errors row and dataset.json's keys.
A field added to the output without a line in the docs, or a line left for a field that is gone,
fails here.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest

from beam_zml.core.errors import error_row
from beam_zml.core.examples import FEATURES
from beam_zml.sinks.manifest import manifest

PAGE = (Path(__file__).resolve().parent.parent / "docs" / "dataset-format.md").read_text(encoding="utf-8")


def documented(section: str) -> set[str]:
    """The names in the first column of the tables of one `## section` of the page (`a`, `b` in "| `a`, `b` | ...")."""
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## )", PAGE, re.MULTILINE | re.DOTALL)
    assert match, f"no section {section!r}"
    names = set()
    for line in match.group(1).splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return names


def avro_fields(schema: str, record: str | None = None) -> set[str]:
    """Field names of a shipped schema, or of the named record type nested in it."""
    parsed = json.loads(resources.files("beam_zml.schemas").joinpath(f"{schema}.avsc").read_text())
    if record is None:
        return {field["name"] for field in parsed["fields"]}
    items = [f["type"].get("items") for f in parsed["fields"] if isinstance(f["type"], dict)]
    (nested,) = [item for item in items if isinstance(item, dict) and item.get("name") == record]
    return {field["name"] for field in nested["fields"]}


@pytest.mark.parametrize(
    "section, fields",
    [
        ("images", set(FEATURES)),
        ("records", avro_fields("record")),
        ("files", avro_fields("file")),
        ("tree", avro_fields("record", "TreeNode")),
        ("errors", set(error_row("stage", 1, "message", error_type="E"))),
    ],
)
def test_every_field_is_documented_and_every_documented_field_exists(section, fields):
    assert documented(section) == fields


def test_every_key_of_dataset_json_is_documented():
    options = {"pixel_dtype": "uint16", "height": 80, "width": 80, "pad": 32}
    keys = set(manifest(options=options, counts={}, shards=[], run={"runner": "DirectRunner"}, previous=None))
    assert documented("dataset.json") == keys


def test_the_documented_grey_levels_are_those_export_png_writes():
    from beam_zml.consume.export_png import (
        GREY_BY_CATEGORY,
        GREY_OTHER,
        WHITE,
        grey_levels,
    )

    section = PAGE[PAGE.index("## Looking at images"):]
    rows = re.findall(r"^\s*\| ([^|]+) \| (\d+)[^|]*\|$", section, re.MULTILINE)
    levels = {text.split(" (")[0]: int(level) for text, level in rows}
    assert list(levels.values()) == [WHITE, GREY_BY_CATEGORY["L"], GREY_BY_CATEGORY["N"], GREY_BY_CATEGORY["P"], GREY_OTHER]
    assert GREY_BY_CATEGORY["S"] == GREY_BY_CATEGORY["P"]
    greys = grey_levels("uint16", 32)
    assert [greys[ord(c)] for c in " \u00a0aZé5٣(+\ufffd\x07"] == [255, 255, 0, 0, 0, 64, 64, 128, 128, 128, 192]
