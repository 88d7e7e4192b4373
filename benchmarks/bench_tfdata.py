"""How fast does `tfdata.load` deliver images, beside plain tf.data over the same shards? Images per second.

    python benchmarks/bench_tfdata.py [--dataset DIR] [--repeats 3] [--batch-size 256]

The dataset is the Python standard library, each top-level package one repository
(every folder of the stdlib but site-packages/, lib-dynload/, config-*/ and
__pycache__/, plus one repository of the top-level modules), built once into DIR
(default: a folder under the system's temporary folder) with the DirectRunner; an
existing dataset in DIR is reused. In one run, interleaved, each pass makes the dataset (set-up
timed) and reads it `--epochs` times, as training does:

- plain: `TFRecordDataset(shards, compression_type="GZIP", num_parallel_reads=AUTOTUNE)
  .batch(256)`, then `parse_example` and `decode_raw` on the whole batch (the issue's yardstick);
- load: `tfdata.load` with splits, the labels language and license, and the per-repository
  cap computed and applied on every batch, with fractions 1/0/0 and a cap of 90% of the
  largest repository, so that it delivers nearly every image, like plain (a little less: it
  is counted on the images it delivers);
- load, 80/10/10 train: the default split's train images (fewer images, the same reading).

Each pass of a loader runs right after a pass of plain, and the ratio load / plain is taken
pair by pair. It prints medians over `--repeats` pairs: images/s (images delivered per
second of wall time), images per CPU-second of the process (less moved by other work on a
shared machine), and both ratios, over the whole pass (set-up included: reading files/ and
records/, building the tables, tracing) and after the first epoch (what a long training run
sees); the latter, in wall time, should be at least TARGET_RATIO. The machine
may be shared: compare ratios from one run, not images/s across runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from beam_zml.consume import tfdata  # noqa: E402
from beam_zml.consume.dataset import read_manifest, read_rows, shard_paths  # noqa: E402
from beam_zml.core.duplicates import duplication  # noqa: E402
from pipelines import build_dataset  # noqa: E402

TARGET_RATIO = 0.8
SKIPPED = {"site-packages", "dist-packages", "lib-dynload", "__pycache__"}


def stdlib_repositories(modules_folder: Path) -> list[str]:
    """The stdlib's top-level package folders, and `modules_folder` filled with its top-level modules."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    folders = [
        str(path) for path in sorted(stdlib.iterdir())
        if path.is_dir() and path.name not in SKIPPED and not path.name.startswith("config-")
    ]  # fmt: skip
    modules_folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(stdlib.glob("*.py")):
        shutil.copyfile(path, modules_folder / path.name)
    return folders + [str(modules_folder)]


def build(dataset: Path) -> None:
    """The stdlib dataset in `dataset`, unless one is there already."""
    if (dataset / "dataset.json").exists():
        return
    repositories = stdlib_repositories(dataset.parent / f"{dataset.name}-modules")
    build_dataset.run(
        ["--local", *repositories, "--output", str(dataset), "--overwrite",
         "--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]
    )  # fmt: skip


def plain(output: str, batch_size: int) -> tf.data.Dataset:
    """The issue's ten lines of tf.data: read, batch, parse the batch, decode its pixels."""
    manifest = read_manifest(output)
    spec = {name: tf.io.FixedLenFeature([], f["dtype"]) for name, f in manifest["features"].items()}
    dtype = tf.dtypes.as_dtype(manifest["image"]["dtype"])
    shape = manifest["image"]["shape"]

    def parse(serialized):
        examples = tf.io.parse_example(serialized, spec)
        examples["image"] = tf.reshape(tf.io.decode_raw(examples["image"], dtype), [-1, *shape])
        return examples

    files = shard_paths(output, "images")
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP", num_parallel_reads=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).map(parse, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def images_per_second(make, epochs: int) -> dict[str, float]:
    """Make the dataset with `make()` (its set-up timed too) and read it to the end `epochs` times, as training does.

    Returns images per second of wall time and per second of this process's CPU time (all threads),
    over the whole pass ("wall", "cpu") and over the epochs after the first ("steady_wall", "steady_cpu":
    the rate a long training run sees, without the set-up and the first epoch's start).
    """
    start, start_cpu = time.perf_counter(), time.process_time()
    images = steady_images = 0
    dataset = make()
    for epoch in range(epochs):
        if epoch == 1:
            steady_start, steady_cpu = time.perf_counter(), time.process_time()
        for element in dataset:
            features = element[0] if isinstance(element, tuple) else element
            images += int(features["image"].shape[0])
            steady_images += int(features["image"].shape[0]) if epoch else 0
    end, end_cpu = time.perf_counter(), time.process_time()
    return {
        "wall": images / (end - start),
        "cpu": images / (end_cpu - start_cpu),
        "steady_wall": steady_images / (end - steady_start),
        "steady_cpu": steady_images / (end_cpu - steady_cpu),
    }


def main() -> int:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    arguments.add_argument("--dataset", type=Path, default=Path(tempfile.gettempdir()) / "bench-tfdata-stdlib")
    arguments.add_argument("--repeats", type=int, default=3)
    arguments.add_argument("--batch-size", type=int, default=256)
    arguments.add_argument("--epochs", type=int, default=5, help="reads of the dataset per pass (default: %(default)s)")
    args = arguments.parse_args()
    build(args.dataset)
    output = str(args.dataset)
    files = list(read_rows(output, "files"))
    cap = int(0.9 * max(record["n_images"] for record in read_rows(output, "records")))  # binds on the largest repository
    found = duplication(files, top=5)
    print(f"dataset {output}: {found['images']:,} images of {found['files']:,} imaged files; {os.cpu_count()} cores")

    loaders = {
        "plain tf.data (parse_example + decode_raw per batch)": lambda: plain(output, args.batch_size),
        "tfdata.load: labels, splits 1/0/0, cap": lambda: tfdata.load(
            output, "train", ("language", "license"), args.batch_size, fractions=(1.0, 0.0, 0.0),
            max_images_per_repository=cap, shuffle=False,
        )[0],
        "tfdata.load: the same, shuffled": lambda: tfdata.load(
            output, "train", ("language", "license"), args.batch_size, fractions=(1.0, 0.0, 0.0),
            max_images_per_repository=cap, shuffle=True,
        )[0],
        "tfdata.load: 80/10/10 train split, dedup, cap 1000, shuffled": lambda: tfdata.load(
            output, "train", ("language", "license"), args.batch_size, dedup=True, max_images_per_repository=1000
        )[0],
    }  # fmt: skip
    plain_name = next(iter(loaders))
    runs = {name: [] for name in loaders}  # (plain run, this loader's run) pairs, back to back
    for _ in range(args.repeats):
        for name, make in loaders.items():
            if name != plain_name:
                runs[name].append((images_per_second(loaders[plain_name], args.epochs), images_per_second(make, args.epochs)))
    runs[plain_name] = [pair[0] for pairs in list(runs.values())[1:] for pair in pairs]
    measures = ("wall", "cpu", "steady_wall", "steady_cpu")
    print(f"\n{args.epochs} epochs a pass, batch {args.batch_size}; images/s are medians over the passes, ratios medians "
          "of each pass's ratio to the plain pass run just before it")  # fmt: skip
    print("\n| reader | images/s wall | x plain | images/CPU-s | x plain | steady images/s wall | x plain "
          "| steady images/CPU-s | x plain |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios = {}
    for name, found in runs.items():
        if name == plain_name:
            cells = [f"{statistics.median(r[m] for r in found):,.0f} | 1.00" for m in measures]
            print(f"| {name} ({len(found)} runs) | {' | '.join(cells)} |")
            continue
        ratios[name] = {m: statistics.median(run[m] / plain[m] for plain, run in found) for m in measures}
        cells = [f"{statistics.median(run[m] for _, run in found):,.0f} | {ratios[name][m]:.2f}" for m in measures]
        print(f"| {name} | {' | '.join(cells)} |")
    ratio = ratios["tfdata.load: labels, splits 1/0/0, cap"]
    verdict = "met" if ratio["steady_wall"] >= TARGET_RATIO else "NOT met"
    print(
        f"\ntfdata.load / plain: whole pass {ratio['wall']:.2f} wall, {ratio['cpu']:.2f} CPU; after the first epoch "
        f"{ratio['steady_wall']:.2f} wall, {ratio['steady_cpu']:.2f} CPU (target >= {TARGET_RATIO}): {verdict}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
