"""What writing the copy facts into the Examples costs: a build whose files are all copies beside one with none.

    python benchmarks/bench_copy_facts.py [--repeats N] [--repositories K] [--mb MB]

Corpus: the standard library's text files (beam_zml.testing.corpus, sorted order, at most --mb MB),
copied into K repositories. "copies": the K folders identical, so every imaged file is a copy and
every images/ shard is read, rewritten and written again by WriteCopyFacts (the worst case: 100%
duplication). "unique": the same K folders with one comment line added at the top of each file,
so no file is a copy and no shard is touched again. Both are built with `python -m
pipelines.build_dataset --local ...` (DirectRunner, the build's defaults), alternating, --repeats
times each. Prints each run's wall and CPU seconds (the process tree's), the medians, and the
ratios copies/unique of the medians: what a dataset of copies only pays on top.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench_pipeline import ROOT, run_process

from beam_zml.consume.dataset import read_rows
from beam_zml.testing.corpus import copy_text_files, stdlib_root


def corpora(work: Path, repositories: int, max_bytes: int) -> dict[str, list[Path]]:
    """{"copies": K identical folders, "unique": K folders whose files each differ by one first line}."""
    seed = work / "seed"
    copy_text_files(stdlib_root(), seed, max_bytes)
    found: dict[str, list[Path]] = {"copies": [], "unique": []}
    for index in range(repositories):
        for kind in found:
            folder = work / kind / f"repo{index}"
            shutil.copytree(seed, folder)
            if kind == "unique":
                for path in sorted(folder.rglob("*")):
                    if path.is_file():
                        path.write_bytes(b"# copy %d\n" % index + path.read_bytes())
            found[kind].append(folder)
    return found


def build(folders: list[Path], work: Path) -> tuple[float, float, int, int]:
    """Wall and CPU seconds of one build, its images, and its imaged files that are copies."""
    out = Path(tempfile.mkdtemp(prefix="out-", dir=work)) / "ds"
    command = [sys.executable, "-m", "pipelines.build_dataset", "--local", *map(str, folders), "--output", str(out), "--quiet"]
    seconds, cpu = run_process(command, "the build")
    rows = [row for row in read_rows(str(out), "files") if row["status"] == "imaged"]
    shutil.rmtree(out.parent)
    return seconds, cpu, sum(row["n_segments"] for row in rows), sum(row["n_copies"] > 1 for row in rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--repositories", type=int, default=4)
    parser.add_argument("--mb", type=float, default=2.0, help="MB of standard-library text files in each repository")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-copies-", dir=ROOT / "benchmarks") as work_name:
        work = Path(work_name)
        folders = corpora(work, args.repositories, int(args.mb * 1e6))
        runs: dict[str, list[tuple[float, float]]] = {kind: [] for kind in folders}
        for repeat in range(args.repeats):
            for kind, paths in folders.items():
                seconds, cpu, images, copies = build(paths, work)
                runs[kind].append((seconds, cpu))
                print(f"run {repeat + 1} {kind:6}: {seconds:6.2f} s wall, {cpu:6.2f} s CPU, {images:,} images, "
                      f"{copies:,} imaged files that are copies", flush=True)  # fmt: skip
    medians = {kind: [statistics.median(values) for values in zip(*found)] for kind, found in runs.items()}
    for kind, (seconds, cpu) in medians.items():
        print(f"median {kind:6}: {seconds:6.2f} s wall, {cpu:6.2f} s CPU")
    print(f"copies/unique: wall {medians['copies'][0] / medians['unique'][0]:.3f}x, "
          f"CPU {medians['copies'][1] / medians['unique'][1]:.3f}x")  # fmt: skip


if __name__ == "__main__":
    main()
