"""Build the dataset: repositories in; images, trees and metadata out (docs/dataset-format.md).

    python -m pipelines.build_dataset --local PATH [PATH ...] --output OUT [Beam options]
    python -m pipelines.build_dataset --local-each DIR [DIR ...] --output OUT
    python -m pipelines.build_dataset --python-stdlib --output OUT
    python -m pipelines.build_dataset --ids 123,456 --output OUT
    python -m pipelines.build_dataset --query 'title:beam' --max-records 100 --output OUT

Every option this module does not know is handed to Beam (--runner, --direct_num_workers,
--flink_master, ...), so the same command runs on the DirectRunner or on a cluster.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import SetupOptions, StandardOptions

from beam_zml import arguments, storage
from beam_zml.core import fileinfo
from beam_zml.core.names import printable
from beam_zml.core.notes import error_note
from beam_zml.core.records import local_sources
from beam_zml.sinks.copy_facts import WriteCopyFacts
from beam_zml.sinks.manifest import WriteManifest
from beam_zml.sinks.output import OutputError, PreparedOutput, prepare_output
from beam_zml.sinks.write_shards import (
    FILES_PER_RECORD,
    FILES_PER_SHARD,
    RECORDS_PER_SHARD,
    ItemShards,
    WriteRows,
    errors_sink,
    files_sink,
    records_sink,
    shard_count,
)
from beam_zml.sources.local import (
    STDLIB_EXCLUDE,
    local_each_sources,
    python_stdlib,
    stdlib_sources,
)
from beam_zml.transforms import BuildRecordRows, ImageRepositories, ItemImager
from beam_zml.transforms.counters import NAMESPACE
from beam_zml.transforms.read_records import SOURCE_ERRORS, ReadRecords, RecordsToRead
from beam_zml.transforms.zenodo_clients import ZenodoClients
from pipelines import options as cli
from pipelines import progress

PROG = "zml build"


def parser() -> argparse.ArgumentParser:
    build = arguments.ArgumentParser(
        prog=PROG,
        description="Image every text file of each repository; write images, records, files, errors and dataset.json. "
        "Records come from --python-stdlib, --local, --local-each, --ids, --ids-file, --records-jsonl, or else a Zenodo search.",
        epilog="Any other option is a Beam pipeline option (--runner, --direct_num_workers, --flink_master, ...).",
        allow_abbrev=False,
    )
    sources = build.add_argument_group("records").add_mutually_exclusive_group()
    sources.add_argument(
        "--local", nargs="+", metavar="PATH", help="directories or archives (.zip, .tar[.gz|.bz2|.xz], .tgz), one record each"
    )
    sources.add_argument(
        "--local-each",
        nargs="+",
        metavar="DIR",
        help="each entry directly inside DIR is one record: a folder, an archive, or any other file on its own",
    )
    sources.add_argument(
        "--python-stdlib",
        action="store_true",
        help="this Python's standard library: each top-level package and module one record, tests and caches left out",
    )
    sources.add_argument("--ids", type=record_ids, help="Zenodo record ids, comma-separated")
    sources.add_argument("--ids-file", type=argparse.FileType("r"), help="a file of Zenodo record ids, one a line")
    sources.add_argument("--records-jsonl", metavar="FILE", help="records harvested by `zml harvest`, one JSON a line")
    build.add_argument("--output", required=True, metavar="OUT", help="output folder: a local path or a Beam FileSystems URL")
    build.add_argument("--overwrite", action="store_true", help="replace a dataset already in OUT")
    build.add_argument("--resume", action="store_true", help="add to the dataset in OUT only the records it lacks")
    build.add_argument(
        "--exclude-path",
        action="append",
        default=[],
        metavar="GLOB",
        help="with --local or --local-each: leave out every entry whose name or path in its repository matches "
        "(fnmatch: *, ?, [...]); such entries are not inputs, and get no row. Repeatable",
    )
    build.add_argument("--quiet", action="store_true", help="no progress lines and no counters: only the last line")
    build.add_argument(
        "--progress-seconds",
        type=arguments.positive_float,
        default=5.0,
        metavar="S",
        help="seconds between progress lines on a terminal, DirectRunner only (default: %(default)s)",
    )
    build.add_argument(
        "--retry-failed", action="store_true", help="with --resume: build the records whose row is failed again, replacing their rows"
    )
    cli.add_search_options(build)
    cli.add_zenodo_options(build)
    cli.add_image_options(build)
    cli.add_limit_options(build)
    return build


def record_ids(text: str) -> list[int]:
    """Positive integers separated by commas, spaces or new lines."""
    parts = text.replace(",", " ").split()
    bad = next((part for part in parts if not part.isdigit() or int(part) == 0), None)
    if bad is not None or not parts:
        raise argparse.ArgumentTypeError(f"not a record id: {bad!r}" if parts else "no record ids")
    return [int(part) for part in parts]


def run(argv: list[str] | None = None, save_main_session: bool = False) -> beam.runners.runner.PipelineResult:
    """Parse `argv`, build and run the pipeline, and wait for it."""
    return _run(argv, save_main_session)[0]


def _run(argv: list[str] | None, save_main_session: bool = False) -> tuple[beam.runners.runner.PipelineResult, argparse.Namespace, PreparedOutput]:
    """run(), also returning the parsed options and the output (OUT, and the manifest it resumed)."""
    build = parser()
    args, beam_flags = build.parse_known_args(argv)
    settings = cli.image_settings(args, build)
    limits = cli.limits(args)
    zenodo = cli.zenodo_settings(args)
    pipeline_options = cli.beam_options(beam_flags, PROG)
    pipeline_options.view_as(SetupOptions).save_main_session = save_main_session
    # The labeller too: a resumed dataset must not mix Linguist's labels with the fallback's or an older tool's.
    recorded_options = {**settings.__dict__, **limits.__dict__, "labels": fileinfo.labeller()}
    to_read = records_to_read(args, build)
    if args.retry_failed and not args.resume:
        build.error("--retry-failed needs --resume")
    check_output(args, build)
    try:
        output = prepare_output(args.output, overwrite=args.overwrite, resume=args.resume, options=recorded_options,
                                retry_failed=args.retry_failed)
    except OutputError as error:
        build.error(str(error))
    to_read = dataclasses.replace(to_read, done=output.done)
    description = to_read.description()
    if to_read.search is not None:
        description["zenodo_url"] = zenodo.zenodo_url
    runner = pipeline_options.view_as(StandardOptions).runner
    run_info = {"run_tag": output.run_tag, "runner": str(runner or "DirectRunner"), "sources": description}

    pipeline = beam.Pipeline(options=pipeline_options)
    clients = None if to_read.local else ZenodoClients(zenodo)  # one client per worker process; local code needs none
    read = pipeline | "ReadRecords" >> ReadRecords(to_read, clients)
    tag = output.run_tag
    imager = ItemImager(settings, limits, ItemShards(output.path, tag))
    expected = to_read.expected_records()
    sinks = (
        records_sink(shard_count(expected, RECORDS_PER_SHARD)),
        files_sink(shard_count(expected * FILES_PER_RECORD, FILES_PER_SHARD)),
        errors_sink(),
    )
    notes = (
        read["records"] | "ImageRepositories" >> ImageRepositories(imager, clients, args.exclude_pattern),
        read[SOURCE_ERRORS] | "SourceErrorNotes" >> beam.Map(error_note),
    ) | "AllNotes" >> beam.Flatten()
    _ = (
        notes
        | "BuildRecordRows" >> BuildRecordRows()
        | "WriteRows" >> WriteRows(output.path, sinks, tag)
        | "WriteCopyFacts" >> WriteCopyFacts(imager.shards)
        | "WriteManifest" >> WriteManifest(output.path, recorded_options, run_info, output.previous)
    )

    show = progress.is_direct_runner(runner) and not args.quiet and sys.stderr.isatty()
    with progress.Progress(PROG, to_read.total(), enabled=show, every=args.progress_seconds):
        result = pipeline.run()
        result.wait_until_finish()
    return result, args, output


def check_output(args: argparse.Namespace, build: argparse.ArgumentParser) -> None:
    """OUT must name a folder (or a URL), and --resume and --overwrite exclude each other: else `build`'s one-line error."""
    if not args.output.strip():
        build.error("--output: an empty path; name the dataset's folder")
    if "://" not in args.output and os.path.exists(args.output) and not os.path.isdir(args.output):
        build.error(f"--output {args.output}: a file, not a folder")
    if args.resume and args.overwrite:
        build.error("--resume and --overwrite exclude each other: --resume finishes the dataset in OUT, --overwrite replaces it")


def records_to_read(args: argparse.Namespace, build: argparse.ArgumentParser) -> RecordsToRead:
    """Where the records come from, per the flags; a missing or unreadable path is `build`'s one-line error."""
    if args.exclude_path and not (args.local or args.local_each):
        build.error("--exclude-path needs --local or --local-each (--python-stdlib has its own selection)")
    if args.local or args.local_each or args.python_stdlib:
        return _local_records(args, build)
    if args.ids or args.ids_file:
        ids = args.ids
        if args.ids_file is not None:
            with args.ids_file as handle:
                text = handle.read()
            try:
                ids = record_ids(text)
            except argparse.ArgumentTypeError as error:
                build.error(f"--ids-file {args.ids_file.name}: {error}")
        return RecordsToRead(ids=tuple(sorted(set(ids))))
    if args.records_jsonl:
        try:
            found = storage.exists(args.records_jsonl)
        except Exception as error:  # noqa: BLE001  an unknown scheme, a filesystem whose package is missing
            build.error(f"--records-jsonl {args.records_jsonl}: {type(error).__name__}: {error}")
        if not found:
            build.error(f"--records-jsonl {args.records_jsonl}: no such file or directory")
        if "://" not in args.records_jsonl and os.path.isdir(args.records_jsonl):
            build.error(f"--records-jsonl {args.records_jsonl}: a folder, not a file")
        return RecordsToRead(records_jsonl=args.records_jsonl)
    return RecordsToRead(search=cli.search_query(args, build), max_records=args.max_records, cap=args.search_cap)


def _local_records(args: argparse.Namespace, build: argparse.ArgumentParser) -> RecordsToRead:
    """records_to_read for --local, --local-each and --python-stdlib: the paths checked, one line and exit 2 if bad."""
    paths = args.local or args.local_each or [python_stdlib()]
    for path in paths:
        if not os.path.exists(path):
            build.error(f"{_flag(args)} {path}: no such file or directory")
        if not os.access(path, os.R_OK):
            build.error(f"{_flag(args)} {path}: permission denied")
        if not args.local and not os.path.isdir(path):
            build.error(f"{_flag(args)} {path}: not a directory")
    exclude = tuple(args.exclude_path)
    try:
        if args.python_stdlib:
            records = stdlib_sources(paths[0])
            description = {"python_stdlib": paths[0], "python_version": sys.version.split()[0], "exclude_path": list(STDLIB_EXCLUDE)}
        elif args.local_each:
            records = local_each_sources(paths, exclude)
            description = {"local_each": [os.path.abspath(p) for p in paths], "exclude_path": list(exclude)}
        else:
            records = local_sources(paths, exclude)
            description = {"local": [printable(r.location) for r in records], "exclude_path": list(exclude)}
    except (OSError, ValueError) as error:
        build.error(f"{_flag(args)}: {error}")
    if not records:
        build.error(f"{_flag(args)} {' '.join(paths)}: nothing to build (every entry is excluded, or there is none)")
    description["records"] = len(records)
    return RecordsToRead(local=tuple(records), local_description=description)


def _flag(args: argparse.Namespace) -> str:
    return "--local" if args.local else "--local-each" if args.local_each else "--python-stdlib"


def counter_totals(result) -> dict[str, int]:
    """The beam_zml counters of a finished run (committed where the runner has them, else attempted)."""
    totals: dict[str, int] = {}
    for counter in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + (value or 0)
    return dict(sorted(totals.items()))


def main(argv: list[str] | None = None) -> int:
    """`zml build`: 0 with a last line saying where the dataset is; 1 with one line naming the cause when
    every record failed, the records could not all be read, or no image was made; 2 for bad input."""
    logging.basicConfig(level=logging.WARNING)
    progress.hide_harmless_beam_warnings()
    result, args, output = _run(argv)
    if not args.quiet:
        for name, value in counter_totals(result).items():
            print(f"{name:>28}: {value:,}", file=sys.stderr)
    try:
        print(f"{PROG}: {progress.outcome(output.path, output.previous)}", file=sys.stderr)
    except progress.BuildFailed as failure:
        print(f"{PROG}: error: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
