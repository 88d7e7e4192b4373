"""Does a build use the whole machine? The pipeline beside the plain loop, 1 and N processes, with peak memory.

    python benchmarks/bench_scaling.py [--corpus stdlib|packages|PATH ...] [--workers N] [--repeats 3]
    python benchmarks/bench_scaling.py --memory [--memory-gb 2] [--workers N] [--repeats 1]

Corpora (made in a temporary folder, removed at the end; beam_zml.testing.corpus):
- `packages` (default): the text files of the installed top-level packages (the site-packages
  that holds apache_beam: tensorflow, numpy, apache_beam, ...), largest first, until at least
  --min-mb MB in at least --min-repos repositories, one repository each (hard links, no copy);
- `stdlib`: the standard library's text files, one repository;
- paths: directories or archives, one repository each.

In one run, alternating so that a busy machine slows all alike, each --repeats times, every
run a fresh process (imports included) timed from start to exit:
1. the plain loop (benchmarks/bench_pipeline.baseline_loop: read, image, encode, compress,
   write each repository's images and Avro rows), one process, repository after repository;
2. the same loop in a multiprocessing.Pool(N), one repository a task;
3. `python -m pipelines.build_dataset` with the DirectRunner's default (one worker, in_memory);
4. the same with --direct_num_workers N --direct_running_mode multi_processing.
Every build's dataset.json counts must equal the loop's. It prints MB imaged per second, the
ratios the targets are stated in (3 / 1 >= 0.8, 4 / 2 >= 0.8), CPU seconds and the peak RSS of
the largest single process of each run (os.wait4's ru_maxrss: the run's process and every
process it waited for).

--memory builds one repository of --memory-gb GB of small text files (the stdlib's *.py files
again and again, hard-linked) with both runners and reports each run's peak RSS (target: every
process under 1 GB); it checks the free disk space first (the images need about half the
source's size).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from beam_zml.testing.corpus import many_small_files, packages_corpus, stdlib_corpus  # noqa: E402

TARGET = 0.8
RSS_TARGET_MB = 1024
ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}


def run_measured(command: list[str], what: str, log: Path) -> dict:
    """Run `command` in ROOT; its wall and CPU seconds and the peak RSS (MB) of its largest process."""
    start = time.perf_counter()
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **ENV}, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        sys.exit(f"{what} failed with exit status {process.returncode}:\n{log.read_text()[-4000:]}")
    return {"wall": seconds, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024}


def loop_command(repositories: list[str], out: Path, processes: int) -> list[str]:
    return [sys.executable, __file__, "--child-loop", str(processes), str(out), *repositories]


def child_loop(processes: int, out: str, repositories: list[str]) -> None:
    """The plain loop over `repositories` (one process, or a Pool of `processes`); its summed counts as JSON in OUT."""
    from bench_pipeline import baseline_loop

    folders = []
    for index, _ in enumerate(repositories):
        folders.append(Path(out, f"r{index}"))
        folders[-1].mkdir(parents=True)
    if processes == 1:
        counts = [baseline_loop(repository, folder) for repository, folder in zip(repositories, folders)]
    else:
        with multiprocessing.Pool(processes) as pool:
            counts = pool.starmap(baseline_loop, zip(repositories, folders), chunksize=1)
    total = {key: sum(count[key] for count in counts) for key in counts[0]}
    Path(out, "counts.json").write_text(json.dumps(total))


def build_command(repositories: list[str], out: Path, flags: list[str]) -> list[str]:
    return [sys.executable, "-m", "pipelines.build_dataset", "--local", *repositories, "--output", str(out), *flags]


KEYS = ("files_seen", "files_imaged", "bytes_seen", "bytes_imaged", "images")


def built_counts(dataset: Path) -> dict:
    counts = json.loads((dataset / "dataset.json").read_text())["counts"]
    return {"files_seen": counts["files"]["seen"], "files_imaged": counts["files"]["imaged"],
            "bytes_seen": counts["bytes"]["seen"], "bytes_imaged": counts["bytes"]["imaged"],
            "images": counts["images"]}  # fmt: skip


def runs_for(workers: int, repositories: list[str], work: Path, loops: bool) -> dict:
    """name -> a function that runs it once and returns its measures and counts."""
    in_memory = ["--direct_num_workers", "1", "--direct_running_mode", "in_memory"]
    multi = ["--direct_num_workers", str(workers), "--direct_running_mode", "multi_processing"]

    def loop(processes: int):
        def once():
            out = Path(tempfile.mkdtemp(prefix="loop-", dir=work))
            measured = run_measured(loop_command(repositories, out, processes), "the loop", work / "log.txt")
            counts = json.loads((out / "counts.json").read_text())
            shutil.rmtree(out)
            return measured, {key: counts[key] for key in KEYS}
        return once

    def build(flags: list[str]):
        def once():
            out = Path(tempfile.mkdtemp(prefix="build-", dir=work))
            measured = run_measured(build_command(repositories, out / "ds", flags), "the build", work / "log.txt")
            counts = built_counts(out / "ds")
            shutil.rmtree(out)
            return measured, counts
        return once

    runs = {}
    if loops:
        runs["plain loop, 1 process"] = loop(1)
        runs[f"plain loop, multiprocessing.Pool({workers})"] = loop(workers)
    runs["zml build, in_memory, 1 worker (default)"] = build(in_memory)
    runs[f"zml build, multi_processing, {workers} workers"] = build(multi)
    return runs


def measure(runs: dict, repeats: int) -> tuple[dict, dict]:
    results = {name: [] for name in runs}
    counts = {}
    for repeat in range(repeats):
        for name, once in runs.items():
            measured, counted = once()
            results[name].append(measured)
            counts[name] = counted
            print(f"repeat {repeat + 1}/{repeats}: {name}: {measured['wall']:.1f} s, peak RSS {measured['rss_mb']:.0f} MB",
                  file=sys.stderr, flush=True)
    return results, counts


def table(results: dict, mb_imaged: float) -> None:
    print("| run | wall s | CPU s | MB imaged/s | peak RSS of a process, MB (max of runs) |")
    print("|---|---:|---:|---:|---:|")
    for name, measured in results.items():
        wall = statistics.median(m["wall"] for m in measured)
        cpu = statistics.median(m["cpu"] for m in measured)
        rss = max(m["rss_mb"] for m in measured)
        print(f"| {name} | {wall:.1f} | {cpu:.1f} | {mb_imaged / wall:.1f} | {rss:.0f} |")
    print()


def rate(results: dict, name: str) -> float:
    return 1 / statistics.median(m["wall"] for m in results[name])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", nargs="+", default=["packages"], help="packages (default), stdlib, or paths")
    parser.add_argument("--workers", type=int, default=2, help="N: Pool(N) and --direct_num_workers N (default 2)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min-mb", type=float, default=250, help="packages corpus: at least this many MB (default 250)")
    parser.add_argument("--min-repos", type=int, default=50, help="packages corpus: at least this many repositories")
    parser.add_argument("--memory", action="store_true", help="peak RSS while building one repository of small files")
    parser.add_argument("--memory-gb", type=float, default=2.0)
    parser.add_argument("--child-loop", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_loop:
        child_loop(int(args.child_loop[0]), args.child_loop[1], args.child_loop[2:])
        return
    work = Path(tempfile.mkdtemp(prefix="bench_scaling-"))
    try:
        if args.memory:
            memory(args, work)
        else:
            scaling(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def scaling(args, work: Path) -> None:
    if args.corpus == ["packages"]:
        import apache_beam

        site_packages = Path(apache_beam.__file__).resolve().parents[1]
        repositories = packages_corpus(work / "corpus", site_packages, min_bytes=int(args.min_mb * 1e6),
                                       min_repositories=args.min_repos)  # fmt: skip
        described = f"text files of {len(repositories)} top-level packages of {site_packages}, one repository each"
    elif args.corpus == ["stdlib"]:
        repositories = [stdlib_corpus(work / "stdlib")]
        described = "the stdlib's text files, one repository"
    else:
        repositories = [Path(path).resolve() for path in args.corpus]
        described = "the given paths, one repository each"
    repositories = [str(path) for path in repositories]
    runs = runs_for(args.workers, repositories, work, loops=True)
    results, counts = measure(runs, args.repeats)
    reference = next(iter(counts.values()))
    for name, counted in counts.items():
        if counted != reference:
            sys.exit(f"{name} did not do the loop's work: {counted} != {reference}")
    mb = reference["bytes_imaged"] / 1e6
    print(f"Corpus: {described}: {reference['files_seen']:,} files ({reference['bytes_seen'] / 1e6:.1f} MB), "
          f"{reference['files_imaged']:,} imaged "
          f"({mb:.1f} MB) into {reference['images']:,} images. Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"medians of {args.repeats}; every run a fresh process, imports included.\n")
    table(results, mb)
    names = list(runs)
    one = rate(results, names[2]) / rate(results, names[0])
    many = rate(results, names[3]) / rate(results, names[1])
    print(f"- One worker: in_memory build / plain loop = **{one:.2f}x** (target >= {TARGET}: {'met' if one >= TARGET else 'missed'}).")
    print(f"- {args.workers} workers: multi_processing build / Pool({args.workers}) loop = **{many:.2f}x** "
          f"(target >= {TARGET}: {'met' if many >= TARGET else 'missed'}).")


def memory(args, work: Path) -> None:
    need = args.memory_gb * 1e9 * 0.6 * 2  # the images of two builds' outputs at most, with room
    free = shutil.disk_usage(work).free
    if free < need:
        sys.exit(f"--memory needs about {need / 1e9:.1f} GB free in {work}; {free / 1e9:.1f} GB are")
    n_files, n_bytes = many_small_files(work / "small", int(args.memory_gb * 1e9))
    runs = runs_for(args.workers, [str(work / "small")], work, loops=False)
    results, counts = measure(runs, args.repeats)
    reference = next(iter(counts.values()))
    if any(counted != reference for counted in counts.values()):
        sys.exit(f"the builds differ: {counts}")
    print(f"Corpus: one repository of {n_files:,} small text files, {n_bytes / 1e9:.2f} GB (the stdlib's *.py files "
          f"again and again); {reference['images']:,} images. Medians of {args.repeats}.\n")
    table(results, reference["bytes_imaged"] / 1e6)
    worst = max(m["rss_mb"] for measured in results.values() for m in measured)
    print(f"- Largest process of any run: {worst:.0f} MB (target < {RSS_TARGET_MB} MB: "
          f"{'met' if worst < RSS_TARGET_MB else 'missed'}).")


if __name__ == "__main__":
    main()
