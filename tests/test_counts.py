"""One home for every count: the same pure functions give the Beam counters and dataset.json's totals."""

from __future__ import annotations

import collections

from beam_zml.consume.dataset import read_manifest, read_rows
from beam_zml.core.counts import file_counts, record_counts, shape_counts
from pipelines import build_dataset
from tests.conftest import PYTHON_SOURCE, write_repository


def _sum(rows, count) -> dict:
    """What a run's counters hold after these rows: a plain Counter stands in for Beam's counters."""
    total = collections.Counter()
    for row in rows:
        total.update(count(row))
    return dict(total)


def test_file_counts_of_an_imaged_and_a_skipped_row():
    imaged = {"size": 700, "status": "imaged", "reason": None, "n_segments": 2}
    skipped = {"size": 9, "status": "skipped", "reason": "binary", "n_segments": 0}
    assert _sum([imaged, skipped], file_counts) == {
        "files_seen": 2,
        "bytes_seen": 709,
        "files_imaged": 1,
        "bytes_imaged": 700,
        "images": 2,
        "files_skipped:binary": 1,
    }


def test_record_counts_name_the_source_of_ok_records_only():
    rows = [{"status": "ok", "source": "local"}, {"status": "failed", "source": None}]
    assert _sum(rows, record_counts) == {"records": 2, "records_ok": 1, "records_failed": 1, "records_from:local": 1}


def test_a_small_build_counts_exactly_and_its_counters_equal_dataset_json(tmp_path):
    repository = write_repository(tmp_path / "repo")
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04" + bytes(range(256)))
    out = tmp_path / "out"
    result = build_dataset.run(["--local", str(repository), str(corrupt), "--output", str(out)])

    counts = read_manifest(str(out))["counts"]
    files = list(read_rows(str(out), "files"))
    assert counts == {
        "records": {"total": 2, "ok": 1, "failed": 1},
        "files": {
            "seen": 8,
            "imaged": 3,  # src/module.py, src/main.c, README.md
            "skipped": {"binary": 1, "empty": 1, "symlink": 1, "too_large": 1, "vcs_dir": 1},
        },
        "images": 3,
        "bytes": {"seen": sum(row["size"] for row in files), "imaged": sum(r["size"] for r in files if r["status"] == "imaged")},
        "errors": 1,  # the corrupt archive
    }
    assert counts["bytes"]["imaged"] == len(PYTHON_SOURCE) + (repository / "src" / "main.c").stat().st_size + (
        repository / "README.md"
    ).stat().st_size

    counters = build_dataset.counter_totals(result)
    watched = {name: value for name, value in counters.items() if name not in ("records_listed", "records_from:local")}
    assert shape_counts({**watched, "errors": counts["errors"]}) == counts
    assert counters["records_from:local"] == 1
