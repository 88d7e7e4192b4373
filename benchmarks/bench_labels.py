"""What Linguist's labels cost per file, and what they change, beside the Pygments labels they replace.

    python benchmarks/bench_labels.py cost [--repeats N] [--ref REF]
    python benchmarks/bench_labels.py changes [--ref REF] [--top N] [--keep DIR] [--corpus PATH] [--workers N]

The old labels are those of `beam_zml/core/fileinfo.py` at REF (default: OLD_REF, the last commit
that labelled with Pygments' file-name table), loaded from `git show REF:...` into this process;
the new are the working tree's `fileinfo` (Linguist's rules through enry-python).

`cost`: the Python standard library's text files (every file of at most 100,000 bytes without
a NUL in its first 8 KiB, site-packages, dist-packages and __pycache__ left out), read into
memory once; then, alternating so that a busy machine slows them alike, --repeats timed passes
(after one untimed pass each, which fills the old code's caches) of: the old `language(path,
data)`, the new `language(path, data)` alone, and the new `labels(path, data)` (language and
the four flags: what the pipeline calls), and for scale `image_file` (all the per-file work of
the pipeline: labels, imaging, Example encoding, compression). Prints microseconds per file,
each run and the median.

`changes`: builds a dataset (`pipelines.build_dataset`, DirectRunner) of a copy of the standard
library with the same folders left out (or of the directory --corpus, e.g. the whole stdlib
folder as README's zml-stdlib, site-packages included), then labels every files/ row's file
again with the old function (same path, same bytes, same binary verdict) and prints how many
files changed language, the top old -> new transitions with an example path, and how many files
each flag marks.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import types
from pathlib import Path

from bench_pipeline import ROOT, SKIPPED_DIRS

from beam_zml.consume.dataset import read_manifest, read_rows
from beam_zml.core import fileinfo
from beam_zml.core.imaging import ImageSettings, image_file
from beam_zml.sources.repository import Member

SETTINGS = ImageSettings()

OLD_REF = "9ca1d90"  # the last commit of main before issue 14: labels from Pygments' file-name table
MAX_FILE_BYTES = 100_000  # the build's --max-file-bytes default: larger files are not read


def old_fileinfo(ref: str) -> types.ModuleType:
    """`beam_zml/core/fileinfo.py` as it was at `ref`, as a module of its own."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{ref}:beam_zml/core/fileinfo.py"], capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType(f"fileinfo_at_{ref}")
    exec(compile(source, f"{ref}:beam_zml/core/fileinfo.py", "exec"), module.__dict__)
    return module


def stdlib_files() -> list[Path]:
    """Every regular file of the standard library, but site-packages, dist-packages and __pycache__, in a stable order."""
    source = Path(sysconfig.get_paths()["stdlib"])
    found = []
    for folder, subfolders, names in os.walk(source):
        subfolders[:] = sorted(name for name in subfolders if name not in SKIPPED_DIRS)
        found.extend(path for name in sorted(names) if (path := Path(folder, name)).is_file() and not path.is_symlink())
    return found


def text_files() -> list[tuple[str, bytes]]:
    """(path inside the stdlib, bytes) of its text files that the build would image."""
    source = Path(sysconfig.get_paths()["stdlib"])
    corpus = []
    for path in stdlib_files():
        if path.stat().st_size <= MAX_FILE_BYTES:
            data = path.read_bytes()
            if data and not fileinfo.is_binary(data):
                corpus.append((path.relative_to(source).as_posix(), data))
    return corpus


def cost(args: argparse.Namespace) -> None:
    old = old_fileinfo(args.ref)
    corpus = text_files()
    members = {path: Member(path, len(data), data, None, None) for path, data in corpus}
    labellers = {
        f"Pygments `language` ({args.ref})": old.language,
        "Linguist `language` (enry)": fileinfo.language,
        "Linguist `labels`: language + 4 flags (enry)": fileinfo.labels,
        "for scale: `image_file`, all the per-file work (labels included)": lambda path, _: image_file(1, members[path], SETTINGS),
    }
    for label in labellers.values():  # untimed: fills the old code's lru caches, loads enry's library
        for path, data in corpus:
            label(path, data)
    runs = collections.defaultdict(list)
    for _ in range(args.repeats):
        for name, label in labellers.items():
            start = time.perf_counter()
            for path, data in corpus:
                label(path, data)
            runs[name].append((time.perf_counter() - start) / len(corpus) * 1e6)
    size = sum(len(data) for _, data in corpus)
    print(f"{len(corpus)} text files of the standard library, {size / 1e6:.1f} MB, {fileinfo.labeller()}")
    print(f"\n| labeller | µs per file, median of {args.repeats} | runs | x Pygments |\n|---|---:|---|---:|")
    base = statistics.median(next(iter(runs.values())))
    for name, times in runs.items():
        median = statistics.median(times)
        print(f"| {name} | {median:.1f} | {', '.join(f'{t:.1f}' for t in times)} | {median / base:.2f} |")


def changes(args: argparse.Namespace) -> None:
    from pipelines import build_dataset

    old = old_fileinfo(args.ref)
    source = Path(sysconfig.get_paths()["stdlib"])
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_labels_"))
    corpus, output = Path(args.corpus) if args.corpus else work / "stdlib", work / "dataset"
    if not corpus.exists():
        for path in stdlib_files():
            target = corpus / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    if not (output / "dataset.json").exists():
        workers = ["--direct_num_workers", str(args.workers), "--direct_running_mode", "multi_processing"]
        build_dataset.run(["--local", str(corpus), "--output", str(output), "--overwrite"] + (workers if args.workers > 1 else []))
    max_bytes = read_manifest(str(output))["options"]["max_file_bytes"]
    rows = list(read_rows(str(output), "files"))
    transitions, flags, example = collections.Counter(), collections.Counter(), {}
    changed_imaged = 0
    for row in rows:
        data = (corpus / row["path"]).read_bytes() if row["size"] <= max_bytes and row["is_binary"] is not None else None
        before = old.language(row["path"], data, binary=bool(row["is_binary"]))
        if before != row["language"]:
            transitions[before, row["language"]] += 1
            example.setdefault((before, row["language"]), row["path"])
            changed_imaged += row["status"] == "imaged"
        flags.update(flag for flag in fileinfo.FLAGS if row[flag])
        flags.update(f"{flag} (imaged)" for flag in fileinfo.FLAGS if row[flag] and row["status"] == "imaged")
    imaged = sum(row["status"] == "imaged" for row in rows)
    where = args.corpus or "the standard library (site-packages, dist-packages, __pycache__ left out)"
    print(f"{len(rows)} files ({imaged} imaged) of {where}; labels: {fileinfo.labeller()}, old: Pygments at {args.ref}")
    print(f"changed language: {sum(transitions.values())} files ({sum(transitions.values()) / len(rows):.1%}), "
          f"{changed_imaged} of them imaged ({changed_imaged / imaged:.1%} of imaged files)")
    print("\n| old (Pygments) | new (Linguist) | files | for example |\n|---|---|---:|---|")
    for (before, after), count in transitions.most_common(args.top):
        print(f"| {before} | {after} | {count} | `{example[before, after]}` |")
    print("\n| flag | files | imaged files |\n|---|---:|---:|")
    for flag in fileinfo.FLAGS:
        print(f"| {flag} | {flags[flag]} | {flags[flag + ' (imaged)']} |")
    if not args.keep:
        shutil.rmtree(work)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    timing = commands.add_parser("cost", help="µs per file, Linguist against Pygments")
    timing.add_argument("--repeats", type=int, default=3, help="timed passes of each labeller (default: %(default)s)")
    diff = commands.add_parser("changes", help="label changes on a stdlib dataset")
    diff.add_argument("--top", type=int, default=25, help="transitions shown (default: %(default)s)")
    diff.add_argument("--keep", metavar="DIR", help="keep the stdlib copy and the dataset in DIR (reused if there)")
    diff.add_argument("--corpus", metavar="PATH", help="build this directory instead of the stdlib copy")
    diff.add_argument("--workers", type=int, default=1, help="DirectRunner worker processes (default: %(default)s)")
    for command in (timing, diff):
        command.add_argument("--ref", default=OLD_REF, help="the commit whose Pygments labels are compared (default: %(default)s)")
    args = parser.parse_args(argv)
    {"cost": cost, "changes": changes}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
