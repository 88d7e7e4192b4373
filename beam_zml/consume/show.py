"""`zml show OUT PATH [--record ID] [--segment K]`: print one image of a built dataset back as text.

The file is looked up in files/ first, so a wrong path, a path that several
records hold (without `--record`), a file that was not imaged or a segment past
the file's last one gets an error that says so (with the candidates' record ids,
or which segments exist) without scanning the images; then the images shards
are scanned with tf.data until that image turns up. `zml ls` lists the records
and paths.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from beam_zml.arguments import ArgumentParser, non_negative_int
from beam_zml.consume.dataset import image_examples, read_rows, require_dataset
from beam_zml.core.imagify import to_text

PROG = "zml show"


class ImageNotFound(LookupError):
    """The dataset has no such image; the message says what it has instead."""


def pixels(image: bytes, manifest: dict) -> np.ndarray:
    """An image's bytes as its (height, width) array, in the dataset's pixel dtype (stored little-endian)."""
    dtype = np.dtype(manifest["image"]["dtype"]).newbyteorder("<")
    return np.frombuffer(image, dtype=dtype).reshape(manifest["image"]["shape"])


def find_file(output: str, path: str, record_id: int | None = None) -> dict:
    """The files/ row of `path` (in record `record_id`, if given); ImageNotFound if there is none or several."""
    rows = [r for r in read_rows(output, "files") if r["path"] == path and record_id in (None, r["record_id"])]
    return choose_row(rows, path, record_id, output)


def choose_row(rows: list[dict], path: str, record_id: int | None, output: str) -> dict:
    """The one files/ row of `path` among `rows` (all of that path); ImageNotFound if none, or if several records hold it.

    Within one record a path can have several rows (the same name twice in an archive:
    the others have reason `duplicate_path`); the imaged one is the file.
    """
    if not rows:
        where = f"record {record_id}" if record_id is not None else "the dataset"
        raise ImageNotFound(f"{where} has no file {path!r} (zml ls {output} lists records, zml ls {output} --record ID their files)")
    records = sorted({r["record_id"] for r in rows})
    if len(records) > 1:
        raise ImageNotFound(f"{path!r} is in {len(records)} records: {', '.join(map(str, records))}; choose one with --record ID")
    return next((r for r in rows if r["status"] == "imaged"), rows[-1])


def check_segment(row: dict, segment: int) -> None:
    """Raise ImageNotFound unless the files/ row says the file was imaged into more than `segment` images."""
    path, record_id = row["path"], row["record_id"]
    if row["status"] != "imaged":
        raise ImageNotFound(f"{path!r} of record {record_id} was not imaged ({row['reason']})")
    if segment >= row["n_segments"]:
        last = row["n_segments"] - 1
        have = "segment 0" if last == 0 else f"segments 0 to {last}"
        raise ImageNotFound(f"{path!r} of record {record_id} has no segment {segment}: it has {have}")


def find_image(
    output: str, manifest: dict, path: str, segment: int = 0, record_id: int | None = None
) -> tuple[np.ndarray, int]:
    """The pixels and real line count of one image of `path` (of record `record_id`, needed if several hold it).

    Pixels: shape (height, width), the dataset's pixel dtype. ImageNotFound if the dataset lacks the image.
    """
    row = find_file(output, path, record_id)
    check_segment(row, segment)
    record_id = row["record_id"]
    examples = image_examples(output, manifest, ("image", "record_id", "path", "segment", "n_lines"))
    wanted = examples.filter(
        lambda e: (e["record_id"] == record_id) & (e["path"] == path.encode("utf-8")) & (e["segment"] == segment)
    )
    for example in wanted.take(1).as_numpy_iterator():
        return pixels(example["image"], manifest), int(example["n_lines"])
    raise ImageNotFound(f"files/ lists segment {segment} of {path!r} in record {record_id}, but images/ lacks it")


def parser() -> argparse.ArgumentParser:
    show = ArgumentParser(
        prog=PROG,
        description="Print one image of a built dataset as the text it was made of. zml ls OUT lists the records, "
        "zml ls OUT --record ID the paths of one.",
        allow_abbrev=False,
    )
    show.add_argument("output", metavar="OUT", help="a dataset built by zml build")
    show.add_argument("path", metavar="PATH", help="path of the file inside its repository, as zml ls prints it")
    show.add_argument("--record", type=int, metavar="ID", help="the record holding PATH, if several records do (zml ls OUT)")
    show.add_argument("--segment", type=non_negative_int, default=0, metavar="K", help="0-based image of the file (default: 0)")
    return show


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    show = parser()
    args = show.parse_args(argv)
    manifest = require_dataset(show, args.output)
    try:
        image, n_lines = find_image(args.output, manifest, args.path, args.segment, args.record)
    except ImageNotFound as error:
        show.error(str(error))
    for line in to_text(image, n_lines, pad=manifest["image"]["pad"]):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
