"""How fast is the whole pipeline, beside a plain loop doing the same work, and where does its time go?

    python benchmarks/bench_pipeline.py [--repeats N] [--corpus PATH] [--workers N] [--no-profile]

The corpus is one repository. By default it is a copy of the text files of the Python
standard library's own source tree (*.py, *.txt, *.rst, *.c, *.h, *.toml, *.decTest...,
without site-packages, dist-packages and __pycache__, at most 60 MB), made once per run
in a temporary folder, so every machine has it; --corpus PATH takes any directory or
archive that `--local` takes instead.

In one run, alternating so that a busy machine slows them alike, it times (median of
--repeats), wall clock and CPU seconds of the whole process tree:

1. the baseline: a plain single-process loop doing the pipeline's work in this
   (warm) process: `list_repository`, then `read_entries` and `image_file` per member (imaging, Example
   encoding, gzip compression), the compressed blobs to one .tfrecord.gz, the files/
   rows and the records/ row to Avro (fastavro); and the same loop in a fresh
   process, imports included, to set beside the pipeline's whole runs;
2. `python -m pipelines.build_dataset --local CORPUS` (what `zml build` runs) in a
   fresh process with --workers workers in multi_processing mode, from start to exit;
3. the same with the DirectRunner's default, one worker in_memory, in a fresh process
   and in this warm process (Beam's own cost without imports or start-up);

each also on a corpus of a few one-line files, whose time is the run's fixed cost
(starting Python, importing Beam and TensorFlow, starting workers, building and
running ~30 stages): the difference is what grows with the data. It prints MB of source
imaged per second, files per second and the ratio to the loop as a Markdown table
(target: the pipeline no slower than 3x the loop). Every pipeline run's dataset.json
is checked against the loop's counts and its images shard against the loop's bytes.

4. Then it breaks the time down: the loop's steps timed one by one (read, file facts,
imagify, Example encoding, compression, writing), and the loop and the warm pipeline
under cProfile with every function's own time in one category (standard library and
builtins by their callers), so that beam_zml's work and Beam's overhead add up to the
total, for the corpus and for the fixed-cost corpus. Not part of the test run; it
takes a few minutes.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # this process imports TensorFlow too, for the baseline

import fastavro

import beam_zml.core.examples
import beam_zml.core.imaging
from beam_zml.core.imaging import ImageSettings, image_file
from beam_zml.core.records import local_sources, record_row
from beam_zml.schemas import load_schema
from beam_zml.sources.repository import Limits, list_repository, read_entries
from beam_zml.testing.corpus import stdlib_corpus

MAX_CORPUS_BYTES = 60_000_000
TARGET_RATIO = 3
NOISE = 0.05  # a difference of two medians below this share of the larger is not reported
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}
MULTI = "pipeline, {} workers, multi_processing"
IN_MEMORY = "pipeline, 1 worker, in_memory (default)"
WARM = "pipeline, 1 worker, in_memory, in this warm process"
BASELINE = "baseline loop, this warm process"
BASELINE_FRESH = "baseline loop, fresh process (imports included)"
TINY_FILES = 16
TINY = " (fixed-cost corpus)"


# ---------------------------------------------------------------------------------------------
# The corpus


def tiny_corpus(destination: Path, n_files: int = TINY_FILES) -> Path:
    """A few one-line files: a run on it costs what every run costs whatever its input.

    More than one file, so that every worker of a multi-process run gets some and pays
    its own imports, as it does on the real corpus.
    """
    destination.mkdir(parents=True)
    for index in range(n_files):
        (destination / f"hello{index:02d}.py").write_text(f'print("hello {index}")\n')
    return destination


# ---------------------------------------------------------------------------------------------
# 1. The baseline: the pipeline's work as a plain loop


def baseline_loop(corpus: str, out: Path, clock=None) -> dict:
    """Read, image, encode, compress and write the corpus as the pipeline does; return its counts.

    With `clock` (a dict), the reading and writing steps are timed into it.
    """
    settings, limits = ImageSettings(), Limits()
    source = local_sources([corpus])[0]
    tick = time.perf_counter
    t0 = tick()
    listing = list_repository(source.location, limits)
    members = read_entries(listing, listing.entries, limits)  # lazily: one file in memory at a time
    t1 = tick()
    rows, write_seconds, n_images, blob_bytes = [], 0.0, 0, 0
    with open(out / "images.tfrecord.gz", "wb") as images:
        for member in members:
            row, blob = image_file(source.record_id, member, settings)
            rows.append(row)
            if blob is not None:
                t = tick()
                images.write(blob)
                write_seconds += tick() - t
                n_images += row["n_segments"]
                blob_bytes += len(blob)
    t2 = tick()
    with open(out / "files.avro", "wb") as handle:
        fastavro.writer(handle, load_schema("file"), rows, codec="deflate")
    t3 = tick()
    record = record_row(source, status="ok", error=None, file_rows=rows)
    t4 = tick()
    with open(out / "records.avro", "wb") as handle:
        fastavro.writer(handle, load_schema("record"), [record], codec="deflate")
    t5 = tick()
    if clock is not None:
        clock["read"] = t1 - t0
        clock["image_file"] = t2 - t1 - write_seconds
        clock["write"] = write_seconds + (t3 - t2) + (t5 - t4)
        clock["records/ row (tree)"] = t4 - t3
    imaged = [row for row in rows if row["status"] == "imaged"]
    return {
        "files_seen": len(rows),
        "files_imaged": len(imaged),
        "bytes_seen": sum(row["size"] for row in rows),
        "bytes_imaged": sum(row["size"] for row in imaged),
        "images": n_images,
        "blob_bytes": blob_bytes,
    }


class _Timed:
    """A stand-in for a function or module attribute that adds the time spent in it to a clock."""

    def __init__(self, function, clock: dict, name: str):
        self._function, self._clock, self._name = function, clock, name

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self._function(*args, **kwargs)
        finally:
            self._clock[self._name] = self._clock.get(self._name, 0.0) + time.perf_counter() - start
            self._clock[self._name + " calls"] = self._clock.get(self._name + " calls", 0) + 1


class _TimedIgzip:
    """beam_zml.core.examples.igzip with `compress` timed."""

    def __init__(self, igzip, clock: dict):
        self._igzip = igzip
        self.compress = _Timed(igzip.compress, clock, "compress")

    def __getattr__(self, name):
        return getattr(self._igzip, name)


@contextlib.contextmanager
def timing_steps(clock: dict):
    """Time imagify, encode_file_images and the gzip compression inside image_file, unchanged.

    image_file looks these names up in its modules at call time, so they are swapped
    for timed stand-ins while the block runs and checked to have been called.
    """
    saved = beam_zml.core.imaging.imagify, beam_zml.core.imaging.encode_file_images, beam_zml.core.examples.igzip
    beam_zml.core.imaging.imagify = _Timed(saved[0], clock, "imagify")
    beam_zml.core.imaging.encode_file_images = _Timed(saved[1], clock, "encode_file_images")
    beam_zml.core.examples.igzip = _TimedIgzip(saved[2], clock)
    try:
        yield
    finally:
        beam_zml.core.imaging.imagify, beam_zml.core.imaging.encode_file_images, beam_zml.core.examples.igzip = saved
    for name in ("imagify", "encode_file_images", "compress"):
        if not clock.get(name + " calls"):
            sys.exit(f"the step timer for {name} was never called: has image_file changed? fix timing_steps")


def baseline_steps(corpus: str, out: Path) -> dict[str, float]:
    """One timed pass of the loop with every step on its own clock (seconds)."""
    clock: dict = {}
    with timing_steps(clock):
        start = time.perf_counter()
        baseline_loop(corpus, out, clock)
        total = time.perf_counter() - start
    encode = clock["encode_file_images"] - clock["compress"]
    return {
        "list (list_repository: walk, stat)": clock["read"],
        "read (read_entries: read, sha1) + file facts (binary, extension, language and Linguist flags) + glue":
            clock["image_file"] - clock["imagify"] - clock["encode_file_images"],
        "imagify": clock["imagify"],
        "Example encoding + TFRecord framing": encode,
        "gzip compression (isal)": clock["compress"],
        "write (.tfrecord.gz, Avro)": clock["write"],
        "records/ row (tree)": clock["records/ row (tree)"],
        "total": total,
    }


# ---------------------------------------------------------------------------------------------
# 2, 3. The pipeline


def quiet_env() -> dict:
    env = dict(os.environ)
    env.update(QUIET_ENV)
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_process(command: list[str], what: str) -> tuple[float, float]:
    """Wall seconds of `command` (run in ROOT, TF quiet) and CPU seconds of its process tree; exit on failure.

    The CPU count holds the workers a pipeline starts as long as it waits for them, which Beam does.
    """
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=quiet_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{what} failed with exit status {done.returncode}:\n{done.stderr[-4000:]}")
    return seconds, _children_cpu() - cpu


def pipeline_process(corpus: str, work: Path, beam_flags: list[str]) -> tuple[float, float, dict]:
    """Wall and CPU seconds of one `python -m pipelines.build_dataset` run, and what it wrote."""
    out = Path(tempfile.mkdtemp(prefix="out-", dir=work))
    command = [sys.executable, "-m", "pipelines.build_dataset", "--local", corpus, "--output", str(out / "ds"), *beam_flags]
    seconds, cpu = run_process(command, "the pipeline")
    facts = dataset_facts(out / "ds")
    shutil.rmtree(out)
    return seconds, cpu, facts


def pipeline_in_process(corpus: str, out: Path, beam_flags: list[str] = ()) -> None:
    """The same pipeline, run by `build_dataset.run` in this process (imports already paid)."""
    from pipelines import build_dataset

    build_dataset.run(["--local", corpus, "--output", str(out), *(beam_flags or IN_MEMORY_FLAGS)])


def pipeline_warm(corpus: str, work: Path) -> tuple[float, float, dict]:
    """Wall and CPU seconds of one in_memory run in this (warm) process, and what it wrote."""
    out = Path(tempfile.mkdtemp(prefix="warm-", dir=work))
    cpu = time.process_time()
    start = time.perf_counter()
    pipeline_in_process(corpus, out / "ds")
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    facts = dataset_facts(out / "ds")
    shutil.rmtree(out)
    return seconds, cpu, facts


def dataset_facts(dataset: Path) -> dict:
    counts = json.loads((dataset / "dataset.json").read_text())["counts"]
    shards = sorted((dataset / "images").glob("images-*.tfrecord.gz"))
    return {
        "files_seen": counts["files"]["seen"],
        "files_imaged": counts["files"]["imaged"],
        "bytes_seen": counts["bytes"]["seen"],
        "bytes_imaged": counts["bytes"]["imaged"],
        "images": counts["images"],
        "blob_bytes": sum(path.stat().st_size for path in shards),
    }


def baseline_process(corpus: str, work: Path) -> tuple[float, float, dict]:
    """Wall and CPU seconds of the baseline loop in a new Python process, imports included."""
    out = Path(tempfile.mkdtemp(prefix="child-", dir=work))
    seconds, cpu = run_process([sys.executable, __file__, "--child-baseline", corpus, str(out)], "the baseline child")
    shutil.rmtree(out)
    return seconds, cpu, {}


def baseline_warm(corpus: str, work: Path) -> tuple[float, float, dict]:
    out = work / "loop"
    out.mkdir(exist_ok=True)
    cpu = time.process_time()
    start = time.perf_counter()
    facts = baseline_loop(corpus, out)
    return time.perf_counter() - start, time.process_time() - cpu, facts


def check_same(what: str, expected: dict, got: dict) -> None:
    """The pipeline must have done the loop's work, to the byte (the same gzip members, in any order)."""
    if not got:
        return
    keys = ("files_seen", "files_imaged", "bytes_imaged", "images", "blob_bytes")
    differ = {key: (expected[key], got[key]) for key in keys if expected[key] != got[key]}
    if differ:
        sys.exit(f"{what} did not do the baseline's work: (baseline, pipeline) = {differ}")


IMPORTS = {
    "python -c pass": "pass",
    "import apache_beam": "import apache_beam",
    "import pipelines.build_dataset": "import pipelines.build_dataset",
    "import beam_zml.core.imaging (the per-file path)": "import beam_zml.core.imaging",
}


def import_seconds() -> dict[str, float]:
    """Wall seconds of a fresh interpreter doing only each import."""
    return {name: run_process([sys.executable, "-c", code], name)[0] for name, code in IMPORTS.items()}


# ---------------------------------------------------------------------------------------------
# 4. Profiles: every function's own time in one category

# (category, substrings of the function's file): the first match wins. Functions of the
# standard library and builtins belong to no category: their time goes to their callers'.
CATEGORIES = [
    ("imports", ("<frozen importlib", "/importlib/")),
    ("read", ("beam_zml/sources/repository.py",)),
    ("file facts + glue", ("beam_zml/core/fileinfo.py", "/pygments/", "/enry/", "beam_zml/core/imaging.py")),
    ("imagify", ("beam_zml/core/imagify.py", "/numpy/")),
    ("encode (Example protos, TFRecord framing)", ("beam_zml/core/examples.py", "beam_zml/core/example_proto.py", "/google/protobuf/", "/google_crc32c/",
                                                  "/tensorflow/")),
    ("compress (isal gzip)", ("/isal/",)),
    ("write (shards, Avro)", ("beam_zml/sinks/write_shards.py", "beam_zml/storage.py", "/fastavro/", "apache_beam/io/", "beam_zml/schemas/",
                              "bench_pipeline.py")),
    ("records/ rows, tree, manifest", ("beam_zml/core/records.py", "beam_zml/core/tree.py", "beam_zml/sinks/manifest.py",
                                       "beam_zml/transforms/build_records.py")),
    ("beam_zml DoFns, counters", ("beam_zml/",)),
    ("Beam: pickling & coders", ("apache_beam/internal/", "apache_beam/coders/", "/dill/", "/cloudpickle/")),
    ("Beam: DoFn signature inspection", ("apache_beam/typehints/", "apache_beam/transforms/userstate.py")),
    ("Beam: pipeline options", ("apache_beam/options/",)),
    ("Beam: runner, bundles, data plane", ("apache_beam/runners/", "/grpc/")),
    ("Beam: graph construction, transforms, other", ("apache_beam/",)),
]
BEAM_ZML = {name for name, _ in CATEGORIES[1:9]}
OTHER = "other (unattributed)"
_STDLIB = tuple(
    os.path.realpath(path) + os.sep for path in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]}
)


def _category(key) -> str | None:
    """The category of a profiled function, or None if its time belongs to its callers."""
    filename = key[0]
    for category, parts in CATEGORIES:
        if any(part in filename for part in parts):
            return category
    if filename == "~" or filename.startswith("<frozen") or (
        filename.startswith(_STDLIB) and "-packages" not in filename
    ):
        return None
    return OTHER


def own_time_by_category(stats: pstats.Stats) -> dict[str, float]:
    """Every profiled function's own time in one category.

    A builtin's or standard-library function's own time is split among its callers,
    each share going to the caller's category (or, if the caller has none either, to
    that of the caller's main caller, and so on).
    """
    raw = stats.stats

    def resolve(key, depth: int = 0) -> str:
        category = _category(key)
        if category is not None:
            return category
        callers = raw.get(key, (0, 0, 0, 0, {}))[4]
        if not callers or depth > 12:
            return OTHER
        return resolve(max(callers, key=lambda caller: callers[caller][3]), depth + 1)

    totals: collections.Counter = collections.Counter()
    for key, (_, _, own, _, callers) in raw.items():
        category = _category(key)
        if category is not None or not callers:
            totals[category or OTHER] += own
            continue
        shared = 0.0
        for caller, (_, _, caller_own, _) in callers.items():
            totals[resolve(caller)] += caller_own
            shared += caller_own
        totals[OTHER] += max(0.0, own - shared)
    return dict(totals)


def profile(function, *args) -> tuple[pstats.Stats, float]:
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    try:
        function(*args)
    finally:
        profiler.disable()
    return pstats.Stats(profiler), time.perf_counter() - start


def top_cumulative(stats: pstats.Stats, where: str, n: int) -> list[tuple[str, int, float, float]]:
    """The `n` functions of files containing `where` with the most cumulative time: (name, calls, own, cumulative)."""
    rows = [
        (f"{Path(filename).parent.name}/{Path(filename).name}:{line}({name})", calls, own, cumulative)
        for (filename, line, name), (_, calls, own, cumulative, _) in stats.stats.items()
        if where in filename
    ]
    return sorted(rows, key=lambda row: -row[3])[:n]


# ---------------------------------------------------------------------------------------------
# Printing


def share_table(title: str, seconds: dict[str, float], total: float, note: str = "") -> str:
    """A Markdown table of seconds and % of `total`, largest first, with a total line."""
    lines = [f"| {title} | seconds | share |", "|---|---:|---:|"]
    for name, value in sorted(seconds.items(), key=lambda item: -item[1]):
        lines.append(f"| {name} | {value:.3f} | {100 * value / total:.1f}% |")
    lines.append(f"| **total**{note} | **{total:.3f}** | 100% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each kind (default 3)")
    parser.add_argument("--corpus", help="a directory or archive, one repository (default: a copy of the stdlib's text files)")
    parser.add_argument("--workers", type=int, default=2, help="--direct_num_workers for the multi_processing runs (default 2)")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile breakdowns")
    parser.add_argument("--child-baseline", nargs=2, metavar=("CORPUS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_baseline:  # the baseline in a fresh process: import what the loop needs, run it once
        baseline_loop(args.child_baseline[0], Path(args.child_baseline[1]))
        return
    if args.repeats < 1 or args.workers < 1:
        parser.error("--repeats and --workers must be at least 1")
    if args.corpus and not os.path.exists(args.corpus):
        parser.error(f"--corpus {args.corpus}: no such file or directory")

    work = Path(tempfile.mkdtemp(prefix="bench_pipeline-"))
    try:
        if args.corpus:
            corpus, described = os.path.abspath(args.corpus), "--corpus"
        else:
            corpus = str(stdlib_corpus(work / "stdlib", MAX_CORPUS_BYTES))
            described = f"a copy of the text files of Python {sys.version.split()[0]}'s stdlib (no site-packages)"
        tiny = str(tiny_corpus(work / "tiny"))
        benchmark(args, corpus, described, tiny, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


IN_MEMORY_FLAGS = ["--direct_num_workers", "1", "--direct_running_mode", "in_memory"]


def benchmark(args, corpus: str, described: str, tiny: str, work: Path) -> None:
    multi_flags = ["--direct_num_workers", str(args.workers), "--direct_running_mode", "multi_processing"]
    multi = MULTI.format(args.workers)
    # name -> how to run it once on a corpus: (wall, cpu, facts)
    runs = {
        multi: lambda c: pipeline_process(c, work, multi_flags),
        IN_MEMORY: lambda c: pipeline_process(c, work, IN_MEMORY_FLAGS),
        WARM: lambda c: pipeline_warm(c, work),
    }

    _, _, facts = baseline_warm(corpus, work)  # warm-up, and the counts every pipeline run must match
    pipeline_warm(tiny, work)  # warm-up: Beam's first-use imports
    mb_imaged, mb_seen = facts["bytes_imaged"] / 1e6, facts["bytes_seen"] / 1e6
    print(f"Corpus: {described}: {corpus}")
    print(f"{facts['files_seen']:,} files, {mb_seen:.1f} MB seen; {facts['files_imaged']:,} files, {mb_imaged:.1f} MB "
          f"imaged into {facts['images']:,} images ({facts['blob_bytes'] / 1e6:.1f} MB of gzip). "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, medians of {args.repeats} runs.\n", flush=True)

    wall: dict[str, list[float]] = collections.defaultdict(list)
    cpu: dict[str, list[float]] = collections.defaultdict(list)

    def timed(name: str, run, corpus_: str, check: bool) -> None:
        seconds, cpu_seconds, got = run(corpus_)
        if check:
            check_same(name, facts, got)
        wall[name].append(seconds)
        cpu[name].append(cpu_seconds)

    steps: list[dict[str, float]] = []
    for repeat in range(args.repeats):
        # The loop runs before every pipeline run, so a noisy neighbour slows both alike.
        for name, run in runs.items():
            timed(BASELINE, lambda c: baseline_warm(c, work), corpus, True)
            timed(name, run, corpus, True)
            timed(name + TINY, run, tiny, False)
        timed(BASELINE_FRESH, lambda c: baseline_process(c, work), corpus, False)
        steps.append(baseline_steps(corpus, work / "loop"))
        for name, seconds in import_seconds().items():
            wall["import: " + name].append(seconds)
        print(f"repeat {repeat + 1}/{args.repeats}: "
              + ", ".join(f"{name}: {values[-1]:.2f} s" for name, values in wall.items() if not name.startswith("import")),
              file=sys.stderr, flush=True)
    median = {name: statistics.median(values) for name, values in wall.items()}
    median_cpu = {name: statistics.median(values) for name, values in cpu.items()}

    # --- throughput
    base = median[BASELINE]
    print(f"## Throughput (median of {args.repeats}; wall clock; CPU = user+sys of the whole process tree)\n")
    print("| run | wall s | CPU s | MB imaged/s | files/s | wall / baseline loop |")
    print("|---|---:|---:|---:|---:|---:|")

    def row(label: str, seconds: float, cpu_seconds: float | None) -> None:
        cpu_text = "" if cpu_seconds is None else f"{cpu_seconds:.2f}"
        print(f"| {label} | {seconds:.2f} | {cpu_text} | {mb_imaged / seconds:.1f} | {facts['files_seen'] / seconds:,.0f} | "
              f"{seconds / base:.2f}x |")

    row(BASELINE, base, median_cpu[BASELINE])
    row(BASELINE_FRESH, median[BASELINE_FRESH], median_cpu[BASELINE_FRESH])
    net = {}
    for name in runs:
        row(f"{name}: whole run", median[name], median_cpu[name])
        fixed, fixed_cpu = median[name + TINY], median_cpu[name + TINY]
        print(f"| &nbsp;&nbsp;the same on a {TINY_FILES}-file corpus (its fixed cost) | {fixed:.2f} | {fixed_cpu:.2f} | | | |")
        label = f"&nbsp;&nbsp;**{name}: minus its fixed cost**"
        if median[name] - fixed > NOISE * median[name]:
            net[name] = median[name] - fixed
            row(label, net[name], median_cpu[name] - fixed_cpu)
        else:  # the corpus is too small for its cost to show above the fixed cost
            print(f"| {label} | within noise | | | | |")
    print()
    for name in runs:
        whole = median[name] / base
        less = f"{net[name] / base:.1f}x" if name in net else "not measurable (corpus too small)"
        meets = "" if name not in net else f" ({'meets' if net[name] / base <= TARGET_RATIO else 'misses'} it)"
        print(f"- {name}: whole run {whole:.1f}x the loop ({'meets' if whole <= TARGET_RATIO else 'misses'} the "
              f"{TARGET_RATIO}x target); without its fixed cost {less}{meets}"
              + ("" if name == WARM else f"; {median[name] / median[BASELINE_FRESH]:.1f}x the loop in a fresh process")
              + ".")
    print(f"- Every pipeline run wrote the loop's {facts['files_imaged']:,} imaged files, {facts['images']:,} images and "
          f"{facts['blob_bytes']:,} bytes of gzip.\n")

    print("## Fixed costs (median wall seconds)\n")
    print("| what | wall s |")
    print("|---|---:|")
    for name in IMPORTS:
        print(f"| fresh process: {name} | {median['import: ' + name]:.2f} |")
    for name in runs:
        print(f"| {name}, {TINY_FILES}-file corpus | {median[name + TINY]:.2f} |")
    print()
    accounted = {
        "import pipelines.build_dataset (Python, Beam, beam_zml)": median["import: import pipelines.build_dataset"],
        "import the per-file path": median["import: " + list(IMPORTS)[3]],
        "Beam's per-run cost, warm (fixed-cost corpus in this process)": median[WARM + TINY],
    }
    print(f"The fixed cost of a fresh in_memory run ({median[IN_MEMORY + TINY]:.2f} s) is about "
          + " + ".join(f"{name} {value:.2f} s" for name, value in accounted.items())
          + f" = {sum(accounted.values()):.2f} s.\n")

    # --- the loop's steps
    step_median = {name: statistics.median(step[name] for step in steps) for name in steps[0]}
    total = step_median.pop("total")
    print(f"## Baseline loop, step by step (perf_counter around each step, median of {args.repeats})\n")
    print(share_table("step", step_median, total, " (timed pass)"))
    loop_bound = max(step_median, key=step_median.get)
    print(f"\nThe loop runs at {mb_imaged / total:.1f} MB imaged/s and is bound by **{loop_bound}** "
          f"({100 * step_median[loop_bound] / total:.0f}%); each step alone, in MB imaged/s: "
          + ", ".join(f"{name.split(' (')[0]} {mb_imaged / value:,.0f}" for name, value in step_median.items() if value > 0)
          + ".\n")

    if not args.no_profile:
        profiles(corpus, tiny, work, median, total, args.repeats)


def _median_shares(runs: list[dict[str, float]]) -> dict[str, float]:
    names = set().union(*runs)
    return {name: statistics.median(shares.get(name, 0.0) for shares in runs) for name in names}


def profiles(corpus: str, tiny: str, work: Path, median: dict, loop_seconds: float, repeats: int) -> None:
    """The loop and the warm in_memory pipeline under cProfile, own time by category, side by side (medians)."""
    shares: dict[str, list] = collections.defaultdict(list)
    walls: dict[str, list] = collections.defaultdict(list)
    for repeat in range(repeats):
        for name, function, where in (
            ("loop", baseline_loop, (corpus, work / "loop")),
            ("full", pipeline_in_process, (corpus, work / f"profiled-full-{repeat}")),
            ("fixed", pipeline_in_process, (tiny, work / f"profiled-tiny-{repeat}")),
        ):
            stats, seconds = profile(function, *where)
            shares[name].append(own_time_by_category(stats))
            walls[name].append(seconds)
            if name == "full":
                full_stats = stats
    loop, full, fixed = (_median_shares(shares[name]) for name in ("loop", "full", "fixed"))
    loop_wall, full_wall, tiny_wall = (statistics.median(walls[name]) for name in ("loop", "full", "fixed"))
    totals = [sum(part.values()) for part in (loop, full, fixed)]
    print(f"## Where the time goes: cProfile, own time of every function by category, median of {repeats} "
          "(stdlib and builtins by caller)\n")
    print(f"Pipeline: {WARM}, so no imports or process start-up. Columns: the loop; the pipeline on the corpus; the "
          f"pipeline on the {TINY_FILES}-file corpus (its fixed cost); their difference (the cost that grows with the data).\n")
    print("| category | loop s | loop % | pipeline s | pipeline % | fixed s | grows with data s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    names = sorted(set(loop) | set(full) | set(fixed), key=lambda name: (name not in BEAM_ZML, -full.get(name, 0.0)))
    for name in names:
        a, b, c = loop.get(name, 0.0), full.get(name, 0.0), fixed.get(name, 0.0)
        print(f"| {name} | {a:.3f} | {100 * a / totals[0]:.1f}% | {b:.3f} | {100 * b / totals[1]:.1f}% | {c:.3f} | {b - c:.3f} |")
    ours = [sum(part.get(name, 0.0) for name in BEAM_ZML) for part in (loop, full, fixed)]
    print(f"| **beam_zml's own work** | {ours[0]:.3f} | {100 * ours[0] / totals[0]:.0f}% | {ours[1]:.3f} | "
          f"{100 * ours[1] / totals[1]:.0f}% | {ours[2]:.3f} | {ours[1] - ours[2]:.3f} |")
    rest = [total - own for total, own in zip(totals, ours)]
    print(f"| **Beam and the rest** | {rest[0]:.3f} | {100 * rest[0] / totals[0]:.0f}% | {rest[1]:.3f} | "
          f"{100 * rest[1] / totals[1]:.0f}% | {rest[2]:.3f} | {rest[1] - rest[2]:.3f} |")
    print(f"| **total profiled** (wall under cProfile) | {totals[0]:.3f} ({loop_wall:.2f}) | 100% | {totals[1]:.3f} "
          f"({full_wall:.2f}) | 100% | {totals[2]:.3f} ({tiny_wall:.2f}) | {totals[1] - totals[2]:.3f} |")
    print(f"\n(Unprofiled medians: loop {loop_seconds:.2f} s; pipeline {median[WARM]:.2f} s, of which fixed "
          f"{median[WARM + TINY]:.2f} s. cProfile inflates Python-heavy code, Beam's most.)")
    bound = max(full, key=full.get)
    beam_fixed = rest[2]
    print(f"\nThe warm pipeline is bound by **{bound}** ({100 * full[bound] / totals[1]:.0f}% of its profile); "
          f"Beam and the rest take {100 * rest[1] / totals[1]:.0f}%, {beam_fixed:.2f} s of it whatever the input, "
          f"and beam_zml's own work {100 * ours[1] / totals[1]:.0f}%.\n")

    print("Top beam_zml functions by cumulative time (last pipeline profile; the expand()s are graph construction):\n")
    print("| function | calls | own s | cumulative s |")
    print("|---|---:|---:|---:|")
    for name, calls, own, cumulative in top_cumulative(full_stats, "/beam_zml/", 12):
        print(f"| {name} | {calls:,} | {own:.3f} | {cumulative:.3f} |")
    print("\nTop Beam functions by cumulative time (last pipeline profile; Beam's Cython parts show as their callers' "
          "own time):\n")
    print("| function | calls | own s | cumulative s |")
    print("|---|---:|---:|---:|")
    for name, calls, own, cumulative in top_cumulative(full_stats, "/apache_beam/", 24):
        print(f"| {name} | {calls:,} | {own:.3f} | {cumulative:.3f} |")


if __name__ == "__main__":
    main()
