"""How fast is the per-file path on one core: read, file facts, image, encode, compress?

    python benchmarks/bench_per_file.py [--repeats N] [--profile]

The corpus is a copy of the standard library's text files (beam_zml.testing.corpus.stdlib_corpus,
one repository, made in a temporary folder). Each pass reads the repository
(`read_repository`: walk, read, git-blob sha1) and runs `image_file` on every member (file
facts, imagify, Example encoding and TFRecord framing, ISA-L gzip): the work a build does per
file, in one process, with no Beam and no writing. It prints MB of imaged source per CPU second
of this process (median of --repeats; target: >= 50 on one core; CPU rather than wall time, so
that a shared machine's other work does not count) and the peak RSS of this process;
--profile adds one pass under cProfile: own time grouped by step, and the top functions.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from beam_zml.core.imaging import ImageSettings, image_file
from beam_zml.sources.repository import Limits, read_repository
from beam_zml.testing.corpus import stdlib_corpus

TARGET_MB_S = 50
# (step, substrings of the profiled function's file or name): the first match wins.
STEPS = [
    ("read (walk, read, sha1)", ("repository.py", "sha1", "posix.", "scandir", "io.open", "method 'read'")),
    ("imagify", ("imagify.py", "numpy")),
    ("encode (Example, TFRecord framing, crc32c)", ("examples.py", "example_proto.py", "protobuf", "crc32c", "struct")),
    ("compress (isal)", ("isal",)),
    ("file facts (binary, extension, language and Linguist flags)", ("fileinfo.py", "pygments", "enry")),
]


def one_pass(corpus: str) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds, bytes imaged, images) of one pass over the corpus."""
    settings, limits = ImageSettings(), Limits()
    start, cpu = time.perf_counter(), time.process_time()
    imaged = images = 0
    for member in read_repository(corpus, limits):
        row, blob = image_file(1, member, settings)
        if blob is not None:
            imaged += row["size"]
            images += row["n_segments"]
    return time.perf_counter() - start, time.process_time() - cpu, imaged, images


def step_of(key: tuple) -> str:
    text = f"{key[0]}:{key[2]}"
    for step, parts in STEPS:
        if any(part in text for part in parts):
            return step
    return "other (glue, builtins)"


def profile(corpus: str) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    one_pass(corpus)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    by_step: collections.Counter = collections.Counter()
    for key, (_, _, own, _, _) in stats.items():
        by_step[step_of(key)] += own
    total = sum(by_step.values())
    print("\n| step (cProfile own time) | seconds | share |\n|---|---:|---:|")
    for step, seconds in by_step.most_common():
        print(f"| {step} | {seconds:.3f} | {100 * seconds / total:.0f}% |")
    print(f"| **total** | **{total:.3f}** | 100% |\n\n| function | calls | own s | cumulative s |\n|---|---:|---:|---:|")
    rows = sorted(stats.items(), key=lambda item: -item[1][2])[:15]
    for (filename, line, name), (_, calls, own, cumulative, _) in rows:
        print(f"| {Path(filename).name}:{line}({name}) | {calls:,} | {own:.3f} | {cumulative:.3f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="one more pass under cProfile, by step")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench_per_file-"))
    try:
        corpus = str(stdlib_corpus(work / "stdlib"))
        one_pass(corpus)  # warm-up: page cache, lazy imports, caches
        runs = [one_pass(corpus) for _ in range(args.repeats)]
        seconds = statistics.median(run[0] for run in runs)
        cpu = statistics.median(run[1] for run in runs)
        _, _, imaged, images = runs[0]
        rate = imaged / 1e6 / cpu
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"Corpus: the stdlib's text files, {imaged / 1e6:.1f} MB imaged into {images:,} images; "
              f"Python {sys.version.split()[0]}; median of {args.repeats}.\n")
        print("| per-file path, one core | wall s | CPU s | MB imaged per CPU second | target | peak RSS MB |\n"
              "|---|---:|---:|---:|---:|---:|")
        print(f"| read + image_file | {seconds:.2f} | {cpu:.2f} | {rate:.1f} | {TARGET_MB_S} "
              f"({'met' if rate >= TARGET_MB_S else 'missed'}) | {peak:.0f} |")
        if args.profile:
            profile(corpus)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
