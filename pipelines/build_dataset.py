"""Build the dataset: repositories in; images, trees and metadata out (SPEC §4).

    python -m pipelines.build_dataset --local PATH [PATH ...] --output OUT [Beam options]
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

from beam_zml.core.records import local_sources
from beam_zml.sinks.manifest import WriteManifest
from beam_zml.sinks.output import OutputError, prepare_output
from beam_zml.sinks.write_shards import (
    RECORDS_PER_SHARD,
    ItemShards,
    WriteRows,
    errors_sink,
    records_sink,
    shard_count,
)
from beam_zml.transforms import BuildRecordRows, ImageRepositories, ItemImager
from beam_zml.transforms.counters import NAMESPACE
from beam_zml.transforms.read_records import ReadRecords, RecordsToRead
from pipelines import options as cli

PROG = "zml build"


def parser() -> argparse.ArgumentParser:
    build = cli.ArgumentParser(
        prog=PROG,
        description="Image every text file of each repository; write images, records, files, errors and dataset.json. "
        "Records come from --local, --ids, --ids-file, --records-jsonl, or else a Zenodo search.",
        epilog="Any other option is a Beam pipeline option (--runner, --direct_num_workers, --flink_master, ...).",
        allow_abbrev=False,
    )
    sources = build.add_argument_group("records").add_mutually_exclusive_group()
    sources.add_argument(
        "--local", nargs="+", metavar="PATH", help="directories or archives (.zip, .tar[.gz|.bz2|.xz], .tgz), one record each"
    )
    sources.add_argument("--ids", type=record_ids, help="Zenodo record ids, comma-separated")
    sources.add_argument("--ids-file", type=argparse.FileType("r"), help="a file of Zenodo record ids, one a line")
    sources.add_argument("--records-jsonl", metavar="FILE", help="records harvested by `zml harvest`, one JSON a line")
    build.add_argument("--output", required=True, metavar="OUT", help="output folder: a local path or a Beam FileSystems URL")
    build.add_argument("--overwrite", action="store_true", help="replace a dataset already in OUT")
    build.add_argument("--resume", action="store_true", help="add to the dataset in OUT only the records it lacks")
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
    build = parser()
    args, beam_flags = build.parse_known_args(argv)
    settings = cli.image_settings(args, build)
    limits = cli.limits(args)
    zenodo = cli.zenodo_settings(args)
    pipeline_options = cli.beam_options(beam_flags, PROG)
    pipeline_options.view_as(SetupOptions).save_main_session = save_main_session
    recorded_options = {**settings.__dict__, **limits.__dict__}
    to_read = records_to_read(args, build)
    try:
        output = prepare_output(args.output, overwrite=args.overwrite, resume=args.resume, options=recorded_options)
    except OutputError as error:
        build.error(str(error))
    to_read = dataclasses.replace(to_read, done=output.done)
    description = to_read.description()
    if to_read.search is not None:
        description["zenodo_url"] = zenodo.zenodo_url
    run_info = {
        "run_tag": output.run_tag,
        "runner": str(pipeline_options.view_as(StandardOptions).runner or "DirectRunner"),
        "sources": description,
    }

    pipeline = beam.Pipeline(options=pipeline_options)
    records = pipeline | "ReadRecords" >> ReadRecords(to_read, zenodo)
    client_settings = None if args.local else zenodo  # local code needs no Zenodo client
    tag = output.run_tag
    imager = ItemImager(settings, limits, ItemShards(output.path, tag))
    sinks = (records_sink(shard_count(to_read.expected_records(), RECORDS_PER_SHARD)), errors_sink())
    _ = (
        records
        | "ImageRepositories" >> ImageRepositories(imager, client_settings, args.exclude_pattern)
        | "BuildRecordRows" >> BuildRecordRows()
        | "WriteRows" >> WriteRows(output.path, sinks, tag)
        | "WriteManifest" >> WriteManifest(output.path, recorded_options, run_info, output.previous)
    )

    result = pipeline.run()
    result.wait_until_finish()
    return result


def records_to_read(args: argparse.Namespace, build: argparse.ArgumentParser) -> RecordsToRead:
    """Where the records come from, per the flags; a missing or unreadable path is `build`'s one-line error."""
    if args.local:
        for path in args.local:
            if not os.path.exists(path):
                build.error(f"--local {path}: no such file or directory")
            if not os.access(path, os.R_OK):
                build.error(f"--local {path}: permission denied")
        return RecordsToRead(local=tuple(local_sources(args.local)))
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
        if not os.path.exists(args.records_jsonl) and "://" not in args.records_jsonl:
            build.error(f"--records-jsonl {args.records_jsonl}: no such file or directory")
        return RecordsToRead(records_jsonl=args.records_jsonl)
    return RecordsToRead(search=cli.search_query(args), max_records=args.max_records, cap=args.search_cap)


def counter_totals(result) -> dict[str, int]:
    """The beam_zml counters of a finished run (committed where the runner has them, else attempted)."""
    totals: dict[str, int] = {}
    for counter in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + (value or 0)
    return dict(sorted(totals.items()))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter, in every worker
    result = run(argv)
    for name, value in counter_totals(result).items():
        print(f"{name:>28}: {value:,}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
