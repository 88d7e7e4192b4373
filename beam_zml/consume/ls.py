"""`zml ls OUT [--record ID]`: what a built dataset holds, as plain-text tables.

`zml ls OUT` lists its records, one line each: record id, status, source,
files, images and title, sorted by title. `zml ls OUT --record ID` lists one
record's files: path, status (or the skip reason), language, lines and images,
sorted by path. The record ids and paths are the ones `zml show` takes.
Only records/ and files/ (Avro) are read, never the images.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from beam_zml.arguments import ArgumentParser, counted, fail
from beam_zml.consume.dataset import read_rows, require_dataset

PROG = "zml ls"
LONGEST_TITLE = 60  # characters of a title shown; longer ones end with "…"


def table(header: list[str], rows: Iterable[list], right: set[int] = frozenset()) -> list[str]:
    """Lines of a plain-text table: columns two spaces apart, the columns in `right` right-aligned."""
    cells = [header] + [[str(value) for value in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    return [
        "  ".join(value.rjust(width) if column in right else value.ljust(width) for column, (value, width) in enumerate(zip(row, widths))).rstrip()
        for row in cells
    ]


def _short(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= LONGEST_TITLE else text[: LONGEST_TITLE - 1] + "…"


def _shown(path: str) -> str:
    """A path as one table cell: each control character (a newline, a tab...) as Python writes it, \\n or \\xHH."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)


def record_lines(records: Iterable[dict]) -> list[str]:
    """The table of records/ rows: id, status, source, files, images, title (sorted by title, then id)."""
    rows = sorted(records, key=lambda r: ((r["title"] or "").casefold(), r["record_id"]))
    return table(
        ["record", "status", "source", "files", "images", "title"],
        [[r["record_id"], r["status"], r["source"] or "-", f"{r['n_files']:,}", f"{r['n_images']:,}", _short(r["title"])] for r in rows],
        right={3, 4},
    )


def file_lines(files: Iterable[dict]) -> list[str]:
    """The table of one record's files/ rows: path, status (imaged or the skip reason), language, lines, images."""
    rows = sorted(files, key=lambda f: f["path"])
    return table(
        ["path", "status", "language", "lines", "images"],
        [[_shown(f["path"]), f["status"] if f["status"] == "imaged" else f["reason"], f["language"] or "-", f"{f['n_lines']:,}", f"{f['n_segments']:,}"] for f in rows],
        right={3, 4},
    )


def parser() -> argparse.ArgumentParser:
    ls = ArgumentParser(
        prog=PROG,
        description="List the records of a built dataset (id, status, source, files, images, title), "
        "or with --record the files of one record (path, status or skip reason, language, lines, images).",
        allow_abbrev=False,
    )
    ls.add_argument("output", metavar="OUT", help="a dataset built by zml build")
    ls.add_argument("--record", type=int, metavar="ID", help="list this record's files instead")
    return ls


def main(argv: list[str] | None = None) -> int:
    ls = parser()
    args = ls.parse_args(argv)
    require_dataset(ls, args.output)
    if args.record is None:
        records = [
            {field: row[field] for field in ("record_id", "status", "source", "n_files", "n_images", "title")}
            for row in read_rows(args.output, "records")
        ]
        lines = record_lines(records)
        summary = f"{counted(len(records), 'record')} in {args.output}"
    else:
        record = next((row for row in read_rows(args.output, "records") if row["record_id"] == args.record), None)
        if record is None:
            fail(PROG, f"{args.output} has no record {args.record} (zml ls {args.output} lists them)")
        files = [row for row in read_rows(args.output, "files") if row["record_id"] == args.record]
        lines = file_lines(files)
        summary = f"{counted(len(files), 'file')} in record {args.record}"
        if record["status"] != "ok":
            summary += f"; the record {record['status']}: {record['error']}"
    print("\n".join(lines))
    print(summary, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
