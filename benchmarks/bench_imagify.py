"""How fast is the image kernel? MB of source per second on one core, on real code.

    python benchmarks/bench_imagify.py [--repeats N]

The corpus is the Python standard library's own source (its *.py files of at most
100,000 bytes, without test directories, site-packages and __pycache__), so
every machine has it. In the same run it times ``beam_zml.core.imagify.imagify`` and a
per-character rendition of zenodo-ml's algorithm (Python loops over lines and
characters, as zenodo-ml's ``create_images`` did, with the fixes of docs/dataset-format.md#image-rules so both
give the same arrays, which is checked first), and prints the median of
``--repeats`` passes over the corpus as a Markdown table, with whether the kernel
meets its targets: >= 100 MB/s and >= 20x the per-character rendition.

Not part of the test run; it takes well under a minute.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial

import numpy as np

from beam_zml.core.imagify import imagify, text_encoding
from beam_zml.testing.corpus import stdlib_python_files

MAX_BYTES = 100_000

TARGET_MB_S = 100
TARGET_RATIO = 20
KERNEL = "`beam_zml.core.imagify.imagify`, {}"
DEFAULT = KERNEL.format("uint16")  # the targets are for the default pixel dtype
BASELINE = "per-character rendition of zenodo-ml, uint16"


def per_character(data: bytes, height: int = 80, width: int = 80, pad: int = 32) -> np.ndarray:
    """docs/dataset-format.md#image-rules for uint16 the way zenodo-ml computed it: a Python loop over every character.

    With §3's own decoding (a byte-order mark selects the encoding and is dropped) and
    line ends ("\\r\\n" and a lone "\\r" end a line), where zenodo-ml deleted every "\\r".
    """
    encoding, mark = text_encoding(data)
    text = data[mark:].decode(encoding, "replace").replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    images = []
    for first in range(0, len(lines), height):
        image = []
        for line in lines[first : first + height]:
            row = []
            for char in line[:width]:
                code = ord(char)
                row.append(code if code <= 0xFFFF else 0xFFFD)
            row += [pad] * (width - len(row))
            image.append(row)
        while len(image) < height:
            image.append([pad] * width)
        images.append(image)
    return np.array(images, dtype=np.uint16).reshape(len(images), height, width)


def median_seconds(kernels: dict, corpus: list[bytes], repeats: int) -> dict[str, float]:
    """Median wall time of one pass of each kernel over every file of the corpus.

    The kernels take turns within each repeat, so a busy machine slows them alike.
    """
    times = {name: [] for name in kernels}
    for _ in range(repeats):
        for name, kernel in kernels.items():
            start = time.perf_counter()
            for data in corpus:
                kernel(data)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(seconds) for name, seconds in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="passes over the corpus per kernel (default 5)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    corpus = stdlib_python_files(MAX_BYTES)
    megabytes = sum(map(len, corpus)) / 1e6
    lines = images = 0
    for data in corpus:  # also checks that the two kernels compute the same thing
        pixels, n_lines = imagify(data)
        if not np.array_equal(pixels, per_character(data)):
            sys.exit("imagify and the per-character rendition disagree: fix one of them first")
        lines += int(n_lines.sum())
        images += len(pixels)
    print(f"Corpus: Python {sys.version.split()[0]} stdlib *.py: {len(corpus)} files, {megabytes:.1f} MB, "
          f"{lines:,} lines, {images:,} images of 80x80 (numpy {np.__version__}, one thread)\n")

    kernels = {KERNEL.format(dtype): partial(imagify, dtype=dtype) for dtype in ("uint16", "int32", "uint8")}
    kernels[BASELINE] = per_character
    seconds = median_seconds(kernels, corpus, args.repeats)

    print(f"| kernel | seconds per pass (median of {args.repeats}) | MB of source per second |")
    print("|---|---|---|")
    for name, median in seconds.items():
        print(f"| {name} | {median:.3f} | {megabytes / median:,.0f} |")

    speed = megabytes / seconds[DEFAULT]
    ratio = seconds[BASELINE] / seconds[DEFAULT]
    print(f"\nimagify (uint16) / per-character: {ratio:.0f}x")
    print(f"target >= {TARGET_MB_S} MB/s: {'met' if speed >= TARGET_MB_S else 'NOT met'} ({speed:,.0f} MB/s)")
    print(f"target >= {TARGET_RATIO}x per-character: {'met' if ratio >= TARGET_RATIO else 'NOT met'} ({ratio:.0f}x)")


if __name__ == "__main__":
    main()
