"""`zml export-png OUT DEST`: a dataset's images as grayscale PNGs, one folder per extension.

This is zenodo-ml's layout for sharing on data platforms, where images are files
in folders named for their class:

    DEST/<extension, or "none">/<record_id>-<path>-<segment>.png

with the path percent-encoded (``src/main.c`` becomes ``src%2Fmain.c``), so
the name is one safe file name and the path can be read back with
``urllib.parse.unquote``. A name too long for a file system is cut and ends
with a hash of the path instead.

By default each PNG is a picture a person can read: 8-bit grayscale, one pixel
per character, code dark on light. The grey level of a pixel is set by the
Unicode category of its character (docs/dataset-format.md#looking-at-images):

    pad value, space and other whitespace   255 (white)
    letters (L*)                             0 (black)
    digits and other numbers (N*)           64
    punctuation and symbols (P*, S*)       128
    anything else (controls, marks, ...)   192

With ``--raw`` pixels keep their values: uint8 images become 8-bit PNGs, uint16
images 16-bit PNGs, and int32 images 16-bit PNGs with values above 65535
clipped to 65535 (code points past U+FFFF; PNG has no deeper grayscale). Raw
code points are small numbers (printable ASCII is 32-126 of 65535), so raw
16-bit PNGs look black in an image viewer: they are for programs.

A dataset can hold millions of images, so at most ``--limit`` (default 1,000)
are written unless ``--all`` is given; the command says how many it will write
before it starts and shows a progress bar on a terminal.
"""

from __future__ import annotations

import argparse
import collections
import functools
import hashlib
import os
import sys
import unicodedata
from urllib.parse import quote

import numpy as np

from beam_zml import storage
from beam_zml.arguments import ArgumentParser, counted, positive_int
from beam_zml.consume.dataset import (
    image_examples,
    read_rows,
    refuse_dest_inside,
    require_dataset,
)
from beam_zml.core.imagify import PIXEL_DTYPES

PROG = "zml export-png"
NO_EXTENSION = "none"
LONGEST_NAME = 240  # bytes; file systems allow 255
DEFAULT_LIMIT = 1000

# Grey levels of the readable PNGs, by the first letter of the character's Unicode category.
WHITE = 255  # the pad value and whitespace
GREY_BY_CATEGORY = {"L": 0, "N": 64, "P": 128, "S": 128}
GREY_OTHER = 192  # controls, marks, format characters, unassigned code points
MAPPING_HELP = (
    "Readable PNGs (the default) are 8-bit grayscale, one pixel per character: white (255) for the pad value "
    "and whitespace, black (0) for letters, 64 for digits, 128 for punctuation and symbols, 192 for anything "
    "else (controls, marks). --raw writes the pixel values instead: 8-bit PNGs for uint8 datasets, 16-bit for "
    "uint16 and int32 (values above 65535 clipped); they look black in a viewer."
)


@functools.lru_cache(maxsize=None)
def _category_greys(size: int) -> np.ndarray:
    """Grey level of every code point below `size` by its Unicode category (uint8, shape [size])."""
    greys = np.empty(size, np.uint8)
    for point in range(size):
        character = chr(point)
        greys[point] = WHITE if character.isspace() else GREY_BY_CATEGORY.get(unicodedata.category(character)[0], GREY_OTHER)
    return greys


def grey_levels(dtype: str, pad: int) -> np.ndarray:
    """The readable grey level (uint8) of every pixel value of `dtype`, indexed by value; `pad` is white.

    Shape [max value + 1]: 256 for uint8, 65,536 for uint16, 1,114,112 for int32 (every code point).
    """
    greys = _category_greys(PIXEL_DTYPES[dtype] + 1).copy()
    greys[pad] = WHITE
    return greys


def folder_name(extension: str) -> str:
    """The folder of an extension: itself, percent-encoded if need be, or "none" for files without one."""
    return quote(extension, safe="") or NO_EXTENSION


def png_name(record_id: int, path: str, segment: int) -> str:
    """``<record_id>-<percent-encoded path>-<segment>.png``, shortened with a hash if it would be too long."""
    encoded = quote(path, safe="")
    name = f"{record_id}-{encoded}-{segment}.png"
    if len(name) <= LONGEST_NAME:
        return name
    digest = hashlib.sha1(path.encode("utf-8")).hexdigest()[:16]
    return f"{record_id}-{encoded[:LONGEST_NAME - 80]}~{digest}-{segment}.png"


def images_by_folder(output: str, extensions: set[str] | None = None) -> collections.Counter:
    """Images of `output` (of `extensions` only, if given) per extension folder of DEST, from files/ without
    reading the images."""
    wanted = None if extensions is None else {"" if e == NO_EXTENSION else e for e in extensions}
    found: collections.Counter = collections.Counter()
    for row in read_rows(output, "files"):
        if row["n_segments"] and (wanted is None or row["extension"] in wanted):
            found[row["extension"] or NO_EXTENSION] += row["n_segments"]
    return found


def export_pngs(
    output: str,
    manifest: dict,
    dest: str,
    *,
    limit: int | None = None,
    extensions: set[str] | None = None,
    raw: bool = False,
    progress_total: int | None = None,
) -> collections.Counter:
    """Write the images of `output` (only `extensions`, if given; at most `limit`) as PNGs under `dest`.

    `extensions` are lower-case without the dot, "none" meaning files without
    one. Readable 8-bit PNGs unless `raw` (see the module's docstring). A tqdm
    bar of `progress_total` images shows on stderr when it is a terminal.
    Returns the number of PNGs written per extension folder.
    """
    import tensorflow as tf
    from tqdm import tqdm

    dtype = manifest["image"]["dtype"]
    height, width = manifest["image"]["shape"]
    greys = tf.constant(grey_levels(dtype, manifest["image"]["pad"]))

    def encode(example: dict) -> dict:
        image = tf.reshape(tf.io.decode_raw(example["image"], tf.dtypes.as_dtype(dtype), little_endian=True), [height, width, 1])
        if not raw:
            image = tf.gather(greys, tf.cast(image, tf.int32))
        elif dtype == "int32":
            image = tf.cast(tf.clip_by_value(image, 0, 0xFFFF), tf.uint16)
        return {**example, "image": tf.io.encode_png(image)}

    examples = image_examples(output, manifest, ("image", "record_id", "path", "segment", "extension"))
    if extensions is not None:
        wanted = tf.constant(sorted("" if e == NO_EXTENSION else e for e in extensions))
        examples = examples.filter(lambda e: tf.reduce_any(tf.equal(e["extension"], wanted)))
    if limit is not None:
        examples = examples.take(limit)
    written: collections.Counter = collections.Counter()
    encoded = examples.map(encode, num_parallel_calls=tf.data.AUTOTUNE).as_numpy_iterator()
    for example in tqdm(encoded, total=progress_total, unit="png", disable=None, file=sys.stderr):
        folder = folder_name(example["extension"].decode("utf-8"))
        name = png_name(int(example["record_id"]), example["path"].decode("utf-8"), int(example["segment"]))
        with storage.create(storage.join(dest, folder, name), mime_type="image/png") as handle:
            handle.write(example["image"])
        written[folder] += 1
    return written


def extension_list(text: str) -> set[str]:
    """Comma-separated extensions, with or without the dot, in any case."""
    names = {part.strip().lstrip(".").lower() for part in text.split(",")} - {""}
    if not names:
        raise argparse.ArgumentTypeError("no extensions given")
    return names


def parser() -> argparse.ArgumentParser:
    export = ArgumentParser(
        prog=PROG,
        description="Write images as PNGs in DEST/<extension>/<record_id>-<path>-<segment>.png (the path "
        f"percent-encoded), the first {DEFAULT_LIMIT:,} unless --limit or --all says otherwise. {MAPPING_HELP} "
        "See docs/dataset-format.md#looking-at-images.",
        allow_abbrev=False,
    )
    export.add_argument("output", metavar="OUT", help="a dataset built by zml build")
    export.add_argument("dest", metavar="DEST", help="folder for the PNGs (a local path or a Beam FileSystems URL)")
    how_many = export.add_mutually_exclusive_group()
    how_many.add_argument(
        "--limit", type=positive_int, default=DEFAULT_LIMIT, metavar="N", help="write at most N images (default: %(default)s)"
    )
    how_many.add_argument("--all", action="store_true", help="write every image, however many")
    export.add_argument(
        "--extensions", type=extension_list, metavar="EXT,EXT", help='only these extensions, e.g. py,c ("none": files without one)'
    )
    export.add_argument("--raw", action="store_true", help="the pixel values (code points) instead of readable grey levels")
    return export


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    export = parser()
    args = export.parse_args(argv)
    manifest = require_dataset(export, args.output)
    folders = images_by_folder(args.output, args.extensions)
    for folder in ("", *folders):  # DEST itself, and each folder the PNGs go to (OUT may be DEST/py)
        refuse_dest_inside(export, args.output, storage.join(args.dest, folder) if folder else args.dest)
    available = sum(folders.values())
    limit = None if args.all else args.limit
    planned = available if limit is None else min(limit, available)
    kind = "raw" if args.raw else "readable"
    if planned < available:
        print(f"writing {planned:,} of {counted(available, 'image')} as {kind} PNGs (--limit N for more, --all for every one)", file=sys.stderr)
    else:
        print(f"writing {counted(planned, 'image')} as {kind} PNGs", file=sys.stderr)
    try:
        written = export_pngs(
            args.output, manifest, args.dest, limit=limit, extensions=args.extensions, raw=args.raw, progress_total=planned
        )
    except OSError as error:  # DEST under a file, a dangling link, no permission: bad input, one line
        export.error(f"{args.dest}: cannot write the PNGs there: {error}")
    print(f"{PROG}: wrote {counted(sum(written.values()), 'PNG')} in {counted(len(written), 'extension folder')} under {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
