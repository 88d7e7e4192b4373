"""Build the dataset: repositories in; images, trees and metadata out (SPEC §4).

    python -m pipelines.build_dataset --local PATH [PATH ...] --output OUT [Beam options]

Every option this module does not know is handed to Beam (--runner, --direct_num_workers,
--flink_master, ...), so the same command runs on the DirectRunner or on a cluster.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import StandardOptions

from beam_zml import options as cli_options
from beam_zml.records import local_sources
from beam_zml.transforms import (
    BuildRecordRows,
    ImagifyFiles,
    ListRepositoryFiles,
    WriteErrors,
    WriteFiles,
    WriteImages,
    WriteManifest,
    WriteRecords,
)
from beam_zml.transforms.counters import NAMESPACE
from beam_zml.transforms.manifest import SINK_DIRS

PROG = "zml build"


def parser() -> argparse.ArgumentParser:
    build = cli_options.ArgumentParser(
        prog=PROG,
        description="Image every text file of each repository; write images, records, files, errors and dataset.json.",
        epilog="Any other option is a Beam pipeline option (--runner, --direct_num_workers, --flink_master, ...).",
        allow_abbrev=False,
    )
    sources = build.add_argument_group("records").add_mutually_exclusive_group(required=True)
    sources.add_argument(
        "--local", nargs="+", metavar="PATH", help="directories or archives (.zip, .tar[.gz|.bz2|.xz], .tgz), one record each"
    )
    build.add_argument("--output", required=True, metavar="OUT", help="output folder: a local path or a Beam FileSystems URL")
    build.add_argument("--overwrite", action="store_true", help="replace a dataset already in OUT")
    cli_options.add_image_options(build)
    cli_options.add_limit_options(build)
    return build


def run(argv: list[str] | None = None, save_main_session: bool = False) -> beam.runners.runner.PipelineResult:
    """Parse `argv`, build and run the pipeline, wait for it, and log a summary of its counters."""
    build = parser()
    args, beam_flags = build.parse_known_args(argv)
    settings = cli_options.image_settings(args, build)
    limits = cli_options.limits(args)
    pipeline_options = cli_options.beam_options(beam_flags, PROG)
    pipeline_options.view_as(beam.options.pipeline_options.SetupOptions).save_main_session = save_main_session
    output = _prepare_output(args.output, args.overwrite)
    sources = _local_sources(args.local)
    runner = pipeline_options.view_as(StandardOptions).runner or "DirectRunner"
    recorded_options = {
        **settings.__dict__,
        **limits.__dict__,
        "local": [source.location for source in sources],
    }

    pipeline = beam.Pipeline(options=pipeline_options)
    records = pipeline | "ReadRecordIds" >> beam.Create(sources)
    listed = records | "ListRepositoryFiles" >> ListRepositoryFiles(limits)
    imaged = listed["files"] | "ImagifyFiles" >> ImagifyFiles(settings)
    record_rows = listed["outcomes"] | "BuildRecordRows" >> BuildRecordRows(imaged["rows"])
    file_rows = imaged["rows"] | "DropRecordKey" >> beam.Values()
    errors = (listed["errors"], imaged["errors"]) | "AllErrors" >> beam.Flatten()
    shards = (
        imaged["images"] | "WriteImages" >> WriteImages(output),
        record_rows | "WriteRecords" >> WriteRecords(output),
        file_rows | "WriteFiles" >> WriteFiles(output),
        errors | "WriteErrors" >> WriteErrors(output),
    ) | "AllShards" >> beam.Flatten()
    _ = {"files": file_rows, "records": record_rows, "errors": errors} | "WriteManifest" >> WriteManifest(
        output, recorded_options, str(runner), shards=shards
    )

    result = pipeline.run()
    result.wait_until_finish()
    return result


def _prepare_output(output: str, overwrite: bool) -> str:
    """OUT as an absolute path or URL; an existing dataset is refused unless --overwrite removes it."""
    if "://" not in output:
        output = os.path.abspath(output)
    output = output.rstrip("/")
    existing = [
        path
        for path in [FileSystems.join(output, "dataset.json")] + [FileSystems.join(output, kind) for kind in SINK_DIRS]
        if FileSystems.exists(path)
    ]
    if existing and not overwrite:
        cli_options.fail(PROG, f"{output} already holds a dataset; pass --overwrite to replace it")
    if existing:
        FileSystems.delete(existing)
    return output


def _local_sources(paths: list[str]):
    for path in paths:
        if not os.path.exists(path):
            cli_options.fail(PROG, f"--local {path}: no such file or directory")
        if not os.access(path, os.R_OK):
            cli_options.fail(PROG, f"--local {path}: permission denied")
    return local_sources(paths)


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
