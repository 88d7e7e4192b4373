"""The image kernel (docs/dataset-format.md#image-rules): one file's bytes to fixed-size grids of code points.

Pure numpy, no Beam, so it can be tested and benchmarked on its own.

Speed matters because every text file of Zenodo goes through here, so there is
no Python loop over lines or characters. The trick is to never build a line:

* the decoded file is one flat array of code points, followed by ``width``
  spare cells;
* a "window" is the ``width`` cells starting at some position. Viewing the
  array as overlapping void items of ``width`` cells (stride one cell) makes
  every window a single numpy item, so one fancy index by the line starts
  copies every row at memcpy speed (truncation to the width is free);
* the cells of a window past the end of its line hold the next lines; they are
  cleared with a bitwise AND and set to the pad value with a bitwise OR, using
  windows over two small ramps (``width`` ones then ``width`` zeros; ``width``
  zeros then ``width`` pads) indexed by ``width - line length``.

So the output is the gathered rows themselves: the padding is gathered once and
ORed in place, with no padded buffer to fill and copy, and the padding rows of
the last block come out of the same gathers (as rows with no real cells).
"""

from __future__ import annotations

import codecs
import functools

import numpy as np

# The pixel dtypes of `--pixel-dtype`, each with the largest code point it keeps
# as is (int32 keeps every Unicode code point, up to U+10FFFF).
PIXEL_DTYPES = {"uint8": 0xFF, "uint16": 0xFFFF, "int32": 0x10FFFF}

# docs/dataset-format.md#image-rules, step 1: the byte-order marks that select an encoding. UTF-32 LE first: its
# mark begins with UTF-16 LE's.
BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_MARK_STARTS = frozenset(mark[:1] for mark, _ in BYTE_ORDER_MARKS)


def text_encoding(data: bytes) -> tuple[str, int]:
    """The encoding docs/dataset-format.md#image-rules, step 1, reads `data` in (a Python codec name) and the length of its byte-order mark.

    ``("utf-8", 0)`` without a mark. The mark is not content: the text starts after it.
    """
    if data[:1] not in _MARK_STARTS:  # most files: one look at the first byte
        return "utf-8", 0
    for mark, encoding in BYTE_ORDER_MARKS:
        if data.startswith(mark):
            return encoding, len(mark)
    return "utf-8", 0


def imagify(
    data: bytes,
    *,
    height: int = 80,
    width: int = 80,
    pad: int = 32,
    dtype: str = "uint16",
    replacement: int = 26,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut one file's bytes into images of ``height`` lines by ``width`` code points.

    Returns ``(images, n_lines)``: ``images`` has shape ``(n, height, width)`` and
    dtype ``dtype``; ``n_lines[i]`` (1 to ``height``) counts the real lines of
    image ``i``, the rest being rows of ``pad``. docs/dataset-format.md#image-rules step by step: the encoding
    a byte-order mark selects (UTF-16 or UTF-32; see `text_encoding`), else UTF-8,
    the mark dropped and invalid bytes as U+FFFD; ``\\r\\n`` and a lone ``\\r`` end a
    line as ``\\n`` does, ``\\t`` is four spaces; lines split on ``\\n``, a trailing
    ``\\n`` not starting a line (so an empty file has no lines and no images); each
    row is the first ``width`` code points of its line, right-padded with ``pad``.

    ``dtype`` is ``"uint16"`` (code points above U+FFFF become U+FFFD),
    ``"int32"`` (lossless) or ``"uint8"`` (code points above 255 become
    ``replacement``).
    """
    if dtype not in PIXEL_DTYPES:
        raise ValueError(f"unknown pixel dtype {dtype!r}: use one of {', '.join(PIXEL_DTYPES)}")
    if height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive, got {height} and {width}")
    if dtype == "uint8" and not 0 <= replacement <= 0xFF:
        raise ValueError(f"replacement {replacement} does not fit in uint8")
    keep, fill = _ramps(width, pad, dtype)

    # A "\n" is added at the end so that every line ends at a "\n".
    if data.isascii():
        # ASCII is its own code points, and has no byte-order mark: skip decoding, one byte a character.
        if b"\r" in data:  # rare, so the common file pays for one scan only
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        source = data.replace(b"\t", b"    ") + b"\n"
        points = np.frombuffer(source, np.uint8)
    else:
        # Decode before touching "\r": an invalid sequence cut by "\r" must stay invalid.
        encoding, mark = text_encoding(data)
        text = (data[mark:] if mark else data).decode(encoding, "replace")
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        source = text.replace("\t", "    ") + "\n"
        points = np.frombuffer(source.encode("utf-32-le"), np.uint32)
    size = len(points) - 1
    ends = (points == 10).nonzero()[0]
    if size == 0 or points[size - 1] == 10:
        ends = ends[:-1]  # the empty "line" after a trailing "\n", or of an empty file
    lines = len(ends)
    n_images = -(-lines // height)

    # Per output row: where its line starts and how many of its cells are real.
    # The padding rows of the last block start anywhere (0) with no real cells.
    starts = np.zeros(n_images * height, np.intp)
    starts[1:lines] = ends[:-1] + 1
    kept = np.zeros(n_images * height, np.intp)
    np.minimum(ends - starts[:lines], width, out=kept[:lines])
    ramp = width - kept  # the window of the ramps that gives `kept` real cells

    cells = np.empty(size + width, dtype)  # the spare cells keep the last windows in bounds
    cells[:size] = points[:size]
    largest = PIXEL_DTYPES[dtype]
    if dtype != "int32" and points.dtype == np.uint32:  # ASCII fits every dtype
        cells[:size][points[:size] > largest] = replacement if dtype == "uint8" else 0xFFFD

    rows = _windows(cells, width)[starts].view(dtype)
    rows &= keep[ramp].view(dtype)
    rows |= fill[ramp].view(dtype)

    n_lines = np.full(n_images, height, np.int64)
    if n_images:
        n_lines[-1] = lines - (n_images - 1) * height
    return rows.reshape(n_images, height, width), n_lines


def to_text(image: np.ndarray, n_lines: int, *, pad: int = 32) -> list[str]:
    """The lines of one image, for checking and inspecting images: the inverse of its rows.

    Takes the first ``n_lines`` rows and strips the trailing ``pad`` values of
    each, so it gives back each line truncated to the width (with any code point
    the dtype could not hold replaced). Trailing characters equal to the pad
    value cannot be told from padding: with the default pad of 32, trailing
    spaces on a line are lost.
    """
    rows = np.asarray(image)
    if rows.ndim != 2 or not 0 <= n_lines <= rows.shape[0]:
        raise ValueError(f"need a 2-d image with at least n_lines={n_lines} rows, got shape {rows.shape}")
    real = rows[:n_lines] != pad
    # A row's length: one past its last real cell, found from the right.
    lengths = np.where(real.any(axis=1), rows.shape[1] - real[:, ::-1].argmax(axis=1), 0)
    return ["".join(map(chr, row[:length])) for row, length in zip(rows[:n_lines].tolist(), lengths.tolist())]


@functools.lru_cache(maxsize=64)
def _ramps(width: int, pad: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """The windows over ``width`` all-ones then ``width`` zeros, and over ``width`` zeros then ``width`` pads.

    Window ``width - k`` of each is the AND mask and the OR fill of a row with
    ``k`` real cells. Cached: building the views costs more than small files do.
    """
    info = np.iinfo(dtype)
    if not info.min <= pad <= info.max:
        raise ValueError(f"pad {pad} does not fit in {dtype}")
    keep = np.zeros(2 * width, dtype)
    keep[:width] = ~np.dtype(dtype).type(0)  # every bit set
    fill = np.zeros(2 * width, dtype)
    fill[width:] = pad
    keep.flags.writeable = fill.flags.writeable = False
    return _windows(keep, width), _windows(fill, width)


def _windows(cells: np.ndarray, width: int) -> np.ndarray:
    """Every run of ``width`` consecutive cells, as one void item each (a view, no copy).

    One void item per window turns "copy these rows" into a 1-d fancy index,
    which numpy does as a fixed-size memcpy per row.
    """
    step = cells.itemsize
    return np.ndarray(
        (len(cells) - width + 1,), dtype=f"V{width * step}", buffer=cells, strides=(step,)
    )
