"""List Zenodo records into a JSON-lines file, for `zml build --records-jsonl` (README.md#records-from-zenodo).

    python -m pipelines.harvest_records --max-records 10000 --output records.jsonl
    python -m pipelines.harvest_records --from-export records-json.tar.gz --output records.jsonl

Not a Beam pipeline: the search is paced at 30 requests a minute, so one process
does it as fast as it can be done; an export (Zenodo's monthly records-json.tar.gz)
is one stream read member by member. Records are written as they come, with a
progress bar, to a temporary name renamed when complete.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys

from tqdm import tqdm

from beam_zml import arguments
from beam_zml.arguments import counted
from beam_zml.sources.export import (
    ExportError,
    export_records,
    open_export,
    select_records,
)
from beam_zml.sources.fetch import scrub_token
from beam_zml.sources.harvest import harvest
from beam_zml.sources.zenodo import ZenodoClient, ZenodoError
from beam_zml.storage import write_atomically
from pipelines import options as cli

PROG = "zml harvest"


def parser() -> argparse.ArgumentParser:
    harvest_parser = arguments.ArgumentParser(
        prog=PROG, description="List Zenodo records (latest versions of software by default) into a JSON-lines file.",
        allow_abbrev=False,
    )
    harvest_parser.add_argument("--output", required=True, metavar="FILE", help="the JSON-lines file to write")
    harvest_parser.add_argument(
        "--from-export", metavar="PATH_OR_URL",
        help="read Zenodo's records-json.tar.gz export (a path, a Beam FileSystems URL or an http(s) URL) instead of "
        "searching; the search options filter it the same way (all but --query)",
    )
    cli.add_search_options(harvest_parser)
    cli.add_zenodo_options(harvest_parser)
    return harvest_parser


def run(argv: list[str] | None = None) -> int:
    """Harvest into --output; returns the number of records written."""
    harvest_parser = parser()
    args = harvest_parser.parse_args(argv)
    settings = cli.zenodo_settings(args)
    query = cli.search_query(args, harvest_parser)
    if args.from_export is not None:
        if args.query is not None:
            harvest_parser.error("--query cannot be applied to --from-export (the other search options can)")
        return _from_export(args.from_export, query, args.max_records, args.output)
    client = ZenodoClient(settings)
    progress = tqdm(desc="records", unit=" records", file=sys.stderr, total=args.max_records)
    written = 0

    def on_total(total: int) -> None:
        progress.total = min(total, args.max_records or total)
        progress.refresh()

    def write(handle) -> None:
        nonlocal written
        records = harvest(
            client.search, query, page_size=client.page_size, max_records=args.max_records, cap=args.search_cap, on_total=on_total
        )
        for record in records:
            handle.write(json.dumps(scrub_token(record, settings.token), sort_keys=True).encode("utf-8") + b"\n")
            written += 1
            progress.update()

    try:
        write_atomically(args.output, write, mime_type="application/jsonl")
    except ZenodoError as error:  # not bad input: the source could not be read (docs/design.md#faults-and-limits), status 1
        progress.close()
        sys.stderr.write(f"{PROG}: error: the search failed after {written:,} records and {error.attempts} attempts: {error}; "
                         f"nothing written to {args.output}\n")
        raise SystemExit(1) from None
    finally:
        progress.close()
        client.close()
    return written


def _from_export(location: str, query, max_records: int | None, output: str) -> int:
    """The export's records that pass the search filters, into `output`; returns how many."""
    counts: collections.Counter = collections.Counter()
    progress = tqdm(desc="records", unit=" records", file=sys.stderr)
    written = 0

    def write(handle) -> None:
        nonlocal written
        with open_export(location) as stream:
            for record in select_records(export_records(stream, counts), query, max_records=max_records, counts=counts):
                handle.write(json.dumps(record, sort_keys=True).encode("utf-8") + b"\n")
                written += 1
                progress.update()

    try:
        write_atomically(output, write, mime_type="application/jsonl")
    except ExportError as error:
        arguments.fail(PROG, f"--from-export {location}: {error}")
    finally:
        progress.close()
    skipped = ", ".join(f"{name.split(':', 1)[1]} {count:,}" for name, count in sorted(counts.items()) if ":" in name)
    print(f"{counts['members']:,} export members read; records left out: {skipped or 'none'}", file=sys.stderr)
    return written


def main(argv: list[str] | None = None) -> int:
    written = run(argv)
    print(counted(written, "record"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
