"""What one files/ row and one records/ row add to the run's counts: the one home of every count.

The same functions feed the Beam counters a user watches while the build runs and the totals that
dataset.json records at its end, so the two can never disagree. A count is a flat {name: int};
`files_skipped:REASON` and `records_from:SOURCE` name one count per reason or source.
"""

from __future__ import annotations


def file_counts(row: dict) -> dict[str, int]:
    """The counts of one files/ row: seen (files, bytes), and imaged (files, bytes, images) or skipped by reason."""
    counts = {"files_seen": 1, "bytes_seen": row["size"]}
    if row["status"] == "imaged":
        counts.update(files_imaged=1, bytes_imaged=row["size"], images=row["n_segments"])
    else:
        counts[f"files_skipped:{row['reason']}"] = 1
    return counts


def record_counts(row: dict) -> dict[str, int]:
    """The counts of one records/ row: records, records_ok or records_failed, and records_from:SOURCE if ok."""
    counts = {"records": 1, f"records_{row['status']}": 1}
    if row["status"] == "ok":
        counts[f"records_from:{row['source']}"] = 1
    return counts


def shape_counts(flat: dict[str, int]) -> dict:
    """The counts section of dataset.json from the flat sums."""
    return {
        "records": {
            "total": flat.get("records", 0),
            "ok": flat.get("records_ok", 0),
            "failed": flat.get("records_failed", 0),
        },
        "files": {
            "seen": flat.get("files_seen", 0),
            "imaged": flat.get("files_imaged", 0),
            "skipped": {
                name.split(":", 1)[1]: count for name, count in sorted(flat.items()) if name.startswith("files_skipped:")
            },
        },
        "images": flat.get("images", 0),
        "bytes": {"seen": flat.get("bytes_seen", 0), "imaged": flat.get("bytes_imaged", 0)},
        "errors": flat.get("errors", 0),
    }
