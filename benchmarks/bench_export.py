"""Zenodo's monthly export as a source, and builds of records made of several files (issue 11).

    python benchmarks/bench_export.py make-export --records 100000 PATH   # a synthetic records-json.tar.gz
    farm-bench -n 3 --timeout 900 -- zml harvest --from-export PATH --output /tmp/h.jsonl \
        --vs "sh -c 'tar -xzOf PATH > /dev/null'"                          # the harvest against reading the tar
    python benchmarks/bench_export.py multi-file-build --records 60        # files per record: several vs one

make-export writes what Zenodo's exporter writes: a gzip'd tar with one InvenioRDM JSON per record, every
version (about one concept in three has 2-3 versions), a fifth of them other resource types, each record
about as big as a real GitHub-integration record (the shape of tests/data/zenodo_record_inveniordm.json).

multi-file-build starts the loopback Zenodo server in this process (limits scaled so that pacing does not
dominate: 6,000 requests a minute) and builds, on the DirectRunner, --records records of each of two
kinds in turn, several times (--repeats, medians): "several" records have two archives, two loose files
and one loose file over --max-file-bytes (4 downloads each), "one" records have the same code in a single
archive (1 download each, the baseline). It prints seconds, records/s and files/s for each, and the ratio.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from beam_zml.consume.dataset import read_manifest
from beam_zml.testing.zenodo_server import ZenodoServer, zipball

TEMPLATE = json.loads((Path(__file__).parents[1] / "tests" / "data" / "zenodo_record_inveniordm.json").read_text())
SOURCE = "".join(f"def f{i}(x):\n    return x * {i}\n\n" for i in range(40)).encode()


def make_export(path: Path, records: int) -> dict:
    """Write the export; returns counts by kind."""
    counts = {"records": 0, "latest_software": 0}
    with tarfile.open(path, "w:gz") as tar:
        concept, record_id = 0, 1_000_000
        while counts["records"] < records:
            concept += 1
            versions = 1 + (concept % 3 == 0) + (concept % 9 == 0)
            kind = "dataset" if concept % 5 == 0 else "software"
            for version in range(versions):
                record_id += 1
                record = json.loads(json.dumps(TEMPLATE))
                record["id"], record["parent"]["id"] = str(record_id), str(concept)
                record["versions"] = {"index": version + 1, "is_latest": version == versions - 1}
                record["metadata"]["resource_type"]["id"] = kind
                record["metadata"]["title"] = f"org/repo{concept}: v{version}"
                record["created"] = f"20{16 + concept % 10}-0{1 + concept % 9}-1{version}T10:00:00+00:00"
                data = json.dumps(record).encode()
                info = tarfile.TarInfo(f"{record_id}.json")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                counts["records"] += 1
                counts["latest_software"] += kind == "software" and version == versions - 1
    return counts


def add_records(server: ZenodoServer, kind: str, first: int, n: int) -> int:
    """n records of `kind` ("several" or "one"); returns the files each has."""
    code = {f"src/m{i}.py": SOURCE for i in range(4)}
    for record_id in range(first, first + n):
        record = {"id": record_id, "conceptrecid": str(record_id + 500_000), "title": f"{kind} {record_id}",
                  "metadata": {"title": f"{kind} {record_id}", "resource_type": {"type": "software"}}}
        if kind == "several":
            files = {"model.zip": zipball("model-main", dict(list(code.items())[:2])),
                     "prep.zip": zipball("prep-main", dict(list(code.items())[2:])),
                     "run.py": SOURCE, "README.md": b"# how to run\n", "data.csv": b"a,b\n" * 30_000}
        else:
            files = {"all.zip": zipball("all-main", {**{f"model/{k}": v for k, v in list(code.items())[:2]},
                                                    **{f"prep/{k}": v for k, v in list(code.items())[2:]},
                                                    "run.py": SOURCE, "README.md": b"# how to run\n",
                                                    "data.csv": b"a,b\n" * 30_000})}
        server.add_record(record, files)
    return 7


def multi_file_build(records: int, repeats: int) -> None:
    from pipelines import build_dataset

    times: dict[str, list[float]] = {"several": [], "one": []}
    with ZenodoServer() as server, tempfile.TemporaryDirectory() as folder:
        server.limits, server.window = {"search": 1000, "other": 1000}, 10.0
        ids = {"several": range(1, records + 1), "one": range(10_001, 10_001 + records)}
        add_records(server, "several", 1, records)
        add_records(server, "one", 10_001, records)
        flags = ["--zenodo-url", server.url, "--github-url", server.url, "--requests-per-minute", "6000",
                 "--requests-per-hour", "360000"]
        for repeat in range(repeats):
            for kind in ("several", "one"):
                output = Path(folder) / f"{kind}-{repeat}"
                started = time.perf_counter()
                build_dataset.run(["--ids", ",".join(map(str, ids[kind])), "--output", str(output), *flags])
                times[kind].append(time.perf_counter() - started)
                counts = read_manifest(str(output))["counts"]
                assert counts["records"]["ok"] == records and counts["files"]["seen"] == 7 * records, counts
        earned = server.earned_429s
    for kind in ("several", "one"):
        median = statistics.median(times[kind])
        print(f"{kind:>8} file(s) a record: {records} records, {7 * records} files: median {median:.2f} s "
              f"({records / median:.1f} records/s, {7 * records / median:.1f} files/s) of {[round(t, 2) for t in times[kind]]}")
    print(f"ratio several/one: {statistics.median(times['several']) / statistics.median(times['one']):.2f}; earned 429s: {earned}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("make-export")
    export.add_argument("path", type=Path)
    export.add_argument("--records", type=int, default=100_000)
    build = commands.add_parser("multi-file-build")
    build.add_argument("--records", type=int, default=60)
    build.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.command == "make-export":
        counts = make_export(args.path, args.records)
        print(f"{args.path}: {counts['records']:,} records, {counts['latest_software']:,} latest software versions, "
              f"{args.path.stat().st_size / 2**20:.1f} MiB", file=sys.stderr)
    else:
        multi_file_build(args.records, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
