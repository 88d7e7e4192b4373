"""`zml export-png OUT DEST`: every image of a built dataset as a grayscale PNG, one folder per extension.

This is zenodo-ml's layout for sharing on data platforms, where images are files
in folders named for their class:

    DEST/<extension, or "none">/<record_id>-<path>-<segment>.png

with the path percent-encoded (``src/main.c`` becomes ``src%2Fmain.c``), so
the name is one safe file name and the path can be read back with
``urllib.parse.unquote``. A name too long for a file system is cut and ends
with a hash of the path instead.

Pixels keep their values: uint8 images become 8-bit PNGs, uint16 images 16-bit
PNGs, and int32 images 16-bit PNGs with values above 65535 clipped to 65535
(code points past U+FFFF; PNG has no deeper grayscale).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import sys
from urllib.parse import quote

from beam_zml import storage
from beam_zml.arguments import ArgumentParser, positive_int
from beam_zml.consume.dataset import image_examples, require_dataset

PROG = "zml export-png"
NO_EXTENSION = "none"
LONGEST_NAME = 240  # bytes; file systems allow 255


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


def export_pngs(
    output: str, manifest: dict, dest: str, *, limit: int | None = None, extensions: set[str] | None = None
) -> collections.Counter:
    """Write the images of `output` (only `extensions`, if given; at most `limit`) as PNGs under `dest`.

    `extensions` are lower-case without the dot, "none" meaning files without
    one. Returns the number of PNGs written per extension folder.
    """
    import tensorflow as tf

    dtype = manifest["image"]["dtype"]
    height, width = manifest["image"]["shape"]

    def encode(example: dict) -> dict:
        raw = tf.io.decode_raw(example["image"], tf.dtypes.as_dtype(dtype), little_endian=True)
        image = tf.reshape(raw, [height, width, 1])
        if dtype == "int32":
            image = tf.cast(tf.clip_by_value(image, 0, 0xFFFF), tf.uint16)
        return {**example, "image": tf.io.encode_png(image)}

    examples = image_examples(output, manifest, ("image", "record_id", "path", "segment", "extension"))
    if extensions is not None:
        wanted = tf.constant(sorted("" if e == NO_EXTENSION else e for e in extensions))
        examples = examples.filter(lambda e: tf.reduce_any(tf.equal(e["extension"], wanted)))
    if limit is not None:
        examples = examples.take(limit)
    written: collections.Counter = collections.Counter()
    for example in examples.map(encode, num_parallel_calls=tf.data.AUTOTUNE).as_numpy_iterator():
        folder = folder_name(example["extension"].decode("utf-8"))
        name = png_name(int(example["record_id"]), example["path"].decode("utf-8"), int(example["segment"]))
        target = storage.join(dest, folder, name)
        with storage.create(target, mime_type="image/png") as handle:
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
        description="Write each image as a grayscale PNG in DEST/<extension>/<record_id>-<path>-<segment>.png "
        "(the path percent-encoded). uint8 images give 8-bit PNGs; uint16 16-bit; int32 16-bit, "
        "values above 65535 clipped to 65535.",
        allow_abbrev=False,
    )
    export.add_argument("output", metavar="OUT", help="a dataset built by zml build")
    export.add_argument("dest", metavar="DEST", help="folder for the PNGs (a local path or a Beam FileSystems URL)")
    export.add_argument("--limit", type=positive_int, metavar="N", help="write at most N images")
    export.add_argument(
        "--extensions", type=extension_list, metavar="EXT,EXT", help='only these extensions, e.g. py,c ("none": files without one)'
    )
    return export


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    export = parser()
    args = export.parse_args(argv)
    manifest = require_dataset(export, args.output)
    written = export_pngs(args.output, manifest, args.dest, limit=args.limit, extensions=args.extensions)
    print(f"wrote {sum(written.values()):,} PNGs in {len(written):,} extension folders under {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
