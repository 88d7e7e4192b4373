"""The image kernel against a plain reference of docs/dataset-format.md#image-rules, plus hand-checked examples."""

from __future__ import annotations

import math
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from beam_zml.core.imagify import imagify, to_text

DTYPES = ("uint16", "int32", "uint8")
PAD_RANGE = {"uint16": (0, 0xFFFF), "int32": (-(2**31), 2**31 - 1), "uint8": (0, 0xFF)}


# ---------------------------------------------------------------- the reference


# docs/dataset-format.md#image-rules, step 1: the byte-order marks, written out here rather than taken from the kernel.
MARKS = {
    "utf-32-le": b"\xff\xfe\x00\x00",
    "utf-32-be": b"\x00\x00\xfe\xff",
    "utf-8": b"\xef\xbb\xbf",
    "utf-16-le": b"\xff\xfe",
    "utf-16-be": b"\xfe\xff",
}


def reference_text(data: bytes) -> str:
    """docs/dataset-format.md#image-rules, step 1: the encoding of the longest byte-order mark `data` starts with, else UTF-8; the mark dropped."""
    for encoding, mark in sorted(MARKS.items(), key=lambda item: -len(item[1])):
        if data.startswith(mark):
            return data[len(mark) :].decode(encoding, errors="replace")
    return data.decode("utf-8", errors="replace")


def reference_lines(data: bytes) -> list[str]:
    """docs/dataset-format.md#image-rules, steps 1-3, one character at a time: "\\r\\n", "\\r" and "\\n" end a line, "\\t" is four spaces."""
    text = reference_text(data)
    lines, line = [], []
    i = 0
    while i < len(text):
        char = text[i]
        if char in "\r\n":
            lines.append("".join(line))
            line = []
            if char == "\r" and text[i + 1 : i + 2] == "\n":
                i += 1  # "\r\n" is one line end
        elif char == "\t":
            line.extend("    ")
        else:
            line.append(char)
        i += 1
    if line:  # a last line without a line end; a trailing line end starts no line
        lines.append("".join(line))
    return lines


def pixel(char: str, dtype: str, replacement: int) -> int:
    code = ord(char)
    if dtype == "uint16" and code > 0xFFFF:
        return 0xFFFD
    if dtype == "uint8" and code > 0xFF:
        return replacement
    return code


def reference(data, height=80, width=80, pad=32, dtype="uint16", replacement=26):
    """docs/dataset-format.md#image-rules, steps 4-5: one row per line, one image per block of `height` lines."""
    lines = reference_lines(data)
    images, n_lines = [], []
    for first in range(0, len(lines), height):
        block = lines[first : first + height]
        image = []
        for line in block:
            row = [pixel(char, dtype, replacement) for char in line[:width]]
            image.append(row + [pad] * (width - len(row)))
        for _ in range(height - len(block)):
            image.append([pad] * width)
        images.append(image)
        n_lines.append(len(block))
    return np.array(images, dtype=dtype).reshape(len(images), height, width), n_lines


def assert_matches_reference(data, **options):
    images, n_lines = imagify(data, **options)
    expected, expected_n_lines = reference(data, **options)
    assert images.dtype == np.dtype(options.get("dtype", "uint16"))
    assert images.shape == expected.shape
    np.testing.assert_array_equal(images, expected)
    assert n_lines.tolist() == expected_n_lines
    return images, n_lines


# ---------------------------------------------------------------- strategies

# Pieces that matter to §3, mixed with any character at all (up to U+10FFFF).
special = st.sampled_from(["\n", "\n", "\r\n", "\r", "\t", " ", "a", "é", "€", "\U0001f600", "\x00", "\ufffd"])
texts = st.lists(st.one_of(special, st.characters(codec="utf-8"))).map("".join)
# Bytes that are mostly text but with invalid UTF-8 cut into them.
messy_bytes = st.lists(st.one_of(texts.map(lambda t: t.encode("utf-8")), st.binary(max_size=4))).map(b"".join)
# Text in the encoding its byte-order mark names, sometimes with stray bytes (an odd byte of UTF-16...) after it.
marked_bytes = st.builds(
    lambda encoding, text, junk: MARKS[encoding] + text.encode(encoding) + junk,
    st.sampled_from(sorted(MARKS)),
    texts,
    st.one_of(st.just(b""), st.binary(max_size=3)),
)
unmarked = messy_bytes.filter(lambda data: not any(data.startswith(mark) for mark in MARKS.values()))


@st.composite
def options(draw):
    """Any valid set of options, small enough that files span several images and lines overflow."""
    dtype = draw(st.sampled_from(DTYPES))
    low, high = PAD_RANGE[dtype]
    return {
        "height": draw(st.integers(1, 6)),
        "width": draw(st.integers(1, 12)),
        "pad": draw(st.one_of(st.sampled_from([32, 0, low]), st.integers(low, high))),
        "dtype": dtype,
        "replacement": draw(st.integers(0, 0xFF)),
    }


PROPERTY = settings(deadline=None, max_examples=300)


# ---------------------------------------------------------------- properties


@PROPERTY
@given(st.binary())
def test_arbitrary_bytes_match_reference(data):
    assert_matches_reference(data)


@PROPERTY
@given(messy_bytes)
def test_text_with_invalid_utf8_matches_reference(data):
    assert_matches_reference(data)


@PROPERTY
@given(texts)
def test_arbitrary_text_matches_reference(text):
    assert_matches_reference(text.encode("utf-8"))


@PROPERTY
@given(st.one_of(messy_bytes, marked_bytes), options())
def test_every_option_matches_reference(data, opts):
    assert_matches_reference(data, **opts)


@PROPERTY
@given(marked_bytes)
def test_text_with_a_byte_order_mark_matches_reference(data):
    assert_matches_reference(data)


@PROPERTY
@given(texts, st.sampled_from(sorted(MARKS)))
def test_a_byte_order_mark_selects_the_encoding_and_is_dropped(text, encoding):
    # The one ambiguity: UTF-16 LE's mark then U+0000 is UTF-32 LE's mark, which wins (as for Python's "utf-32" codec).
    assume(not (encoding == "utf-16-le" and text.startswith("\0")))
    images, n_lines = imagify(text.encode("utf-8"))
    marked_images, marked_n_lines = imagify(MARKS[encoding] + text.encode(encoding))
    np.testing.assert_array_equal(marked_images, images)
    np.testing.assert_array_equal(marked_n_lines, n_lines)


@PROPERTY
@given(unmarked)
def test_a_utf8_byte_order_mark_is_no_pixel(data):
    images, n_lines = imagify(data, dtype="int32")
    marked_images, marked_n_lines = imagify(MARKS["utf-8"] + data, dtype="int32")
    np.testing.assert_array_equal(marked_images, images)
    np.testing.assert_array_equal(marked_n_lines, n_lines)
    assert not (marked_images == 0xFEFF).any() or b"\xef\xbb\xbf" in data


long_lines = st.lists(st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=200), max_size=200)


@PROPERTY
@given(long_lines, st.booleans())
def test_long_lines_at_default_size_match_reference(lines, trailing_newline):
    data = ("\n".join(lines) + ("\n" if trailing_newline and lines else "")).encode("utf-8")
    assert_matches_reference(data)


@PROPERTY
@given(st.one_of(messy_bytes, marked_bytes), options())
def test_invariants(data, opts):
    images, n_lines = imagify(data, **opts)
    height, width, pad = opts["height"], opts["width"], opts["pad"]
    assert images.ndim == 3 and images.shape[1:] == (height, width)
    assert images.dtype == np.dtype(opts["dtype"])
    assert n_lines.shape == (len(images),) and n_lines.dtype.kind == "i"
    assert sum(n_lines) == len(reference_lines(data))
    assert len(images) == math.ceil(sum(n_lines) / height)
    assert all(n == height for n in n_lines[:-1])
    assert all(1 <= n <= height for n in n_lines)
    for image, n in zip(images, n_lines):
        assert (image[n:] == pad).all()


@PROPERTY
@given(texts.map(lambda text: text.replace("\r", "")))
def test_crlf_is_the_same_as_lf(text):
    images, n_lines = imagify(text.encode("utf-8"))
    crlf_images, crlf_n_lines = imagify(text.replace("\n", "\r\n").encode("utf-8"))
    np.testing.assert_array_equal(crlf_images, images)
    np.testing.assert_array_equal(crlf_n_lines, n_lines)


@PROPERTY
@given(texts.map(lambda text: text.replace("\r", "")), options())
def test_a_lone_cr_ends_a_line_as_lf_does(text, opts):
    """Classic Mac OS files end their lines in "\\r" alone."""
    images, n_lines = imagify(text.encode("utf-8"), **opts)
    mac_images, mac_n_lines = imagify(text.replace("\n", "\r").encode("utf-8"), **opts)
    np.testing.assert_array_equal(mac_images, images)
    np.testing.assert_array_equal(mac_n_lines, n_lines)


@PROPERTY
@given(messy_bytes, options())
def test_to_text_gives_back_the_lines_truncated_to_the_width(data, opts):
    images, n_lines = imagify(data, **opts)
    width, pad, dtype, replacement = opts["width"], opts["pad"], opts["dtype"], opts["replacement"]
    decoded = [line for image, n in zip(images, n_lines) for line in to_text(image, n, pad=pad)]

    expected = []
    for line in reference_lines(data):
        row = [pixel(char, dtype, replacement) for char in line[:width]]
        while row and row[-1] == pad:
            row.pop()
        expected.append("".join(map(chr, row)))
    assert decoded == expected


@PROPERTY
@given(texts, st.integers(1, 100))
def test_int32_with_a_negative_pad_round_trips_exactly(text, width):
    data = text.encode("utf-8")
    images, n_lines = imagify(data, width=width, pad=-1, dtype="int32")
    decoded = [line for image, n in zip(images, n_lines) for line in to_text(image, n, pad=-1)]
    assert decoded == [line[:width] for line in reference_lines(data)]


@PROPERTY
@given(st.integers(1, 3), st.booleans(), st.integers(0, 2), st.text(alphabet="ab \t", min_size=1, max_size=5))
def test_files_of_a_whole_number_of_blocks(k, trailing_newline, extra, line):
    n = 80 * k + extra
    data = ("\n".join([line] * n) + ("\n" if trailing_newline else "")).encode()
    images, n_lines = assert_matches_reference(data)
    assert len(images) == k + (extra > 0)
    assert n_lines.tolist() == [80] * k + ([extra] if extra else [])


# ---------------------------------------------------------------- examples


def test_hand_checked_example():
    images, n_lines = imagify(b"ab\r\tc\r\nlong line\n", height=2, width=6, pad=0)
    expected = np.array(
        [
            [[97, 98, 0, 0, 0, 0], [32, 32, 32, 32, 99, 0]],
            [[108, 111, 110, 103, 32, 108], [0, 0, 0, 0, 0, 0]],
        ],
        dtype=np.uint16,
    )
    np.testing.assert_array_equal(images, expected)
    assert images.dtype == np.uint16
    assert n_lines.tolist() == [2, 1]


def test_default_image_is_80_by_80_padded_with_spaces():
    images, n_lines = imagify(b"x = 1\n")
    assert images.shape == (1, 80, 80) and images.dtype == np.uint16
    assert n_lines.tolist() == [1]
    assert images[0, 0, :5].tolist() == [ord(c) for c in "x = 1"]
    assert (images[0, 0, 5:] == 32).all() and (images[0, 1:] == 32).all()


def test_last_line_without_newline_is_kept():
    images, n_lines = imagify(b"a\nb", height=3, width=2)
    assert images[0].tolist() == [[97, 32], [98, 32], [32, 32]]
    assert n_lines.tolist() == [2]


def test_empty_lines_are_lines_but_a_trailing_newline_is_not():
    assert imagify(b"\n")[1].tolist() == [1]
    assert imagify(b"\n\n")[1].tolist() == [2]
    assert imagify(b"a\n\n")[1].tolist() == [2]
    assert imagify(b"\n" * 80)[1].tolist() == [80]
    assert imagify(b"\n" * 81)[1].tolist() == [80, 1]


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\0\0", b"\0\0\xfe\xff"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_files_have_no_images(data, dtype):
    images, n_lines = imagify(data, dtype=dtype)
    assert images.shape == (0, 80, 80) and images.dtype == np.dtype(dtype)
    assert n_lines.shape == (0,)


def test_invalid_utf8_becomes_replacement_characters():
    images, _ = imagify(b"a\xffb\xc3", width=4)
    assert images[0, 0].tolist() == [97, 0xFFFD, 98, 0xFFFD]


def test_utf8_is_decoded_before_carriage_returns_end_lines():
    # "\xe2\x82\xac" is the euro sign; a "\r" inside it leaves three invalid bytes, on two lines.
    images, n_lines = imagify(b"\xe2\r\x82\xac", width=3, pad=0)
    assert images[0, :2].tolist() == [[0xFFFD, 0, 0], [0xFFFD, 0xFFFD, 0]]
    assert n_lines.tolist() == [2]


def test_a_classic_mac_file_keeps_its_lines():
    """200 lines ending in a lone "\\r": zenodo-ml made them one line and kept 80 characters of it."""
    data = b"".join(b"line %d\r" % i for i in range(200))
    images, n_lines = imagify(data)
    assert n_lines.tolist() == [80, 80, 40]
    assert to_text(images[2], 40)[-1] == "line 199"


@pytest.mark.parametrize(
    "data, lines",
    [(b"\r", [""]), (b"\r\r\r", ["", "", ""]), (b"a\r\n\rb", ["a", "", "b"]), (b"a\n\r", ["a", ""]), (b"\r\n", [""])],
)
def test_lone_cr_and_crlf_each_end_one_line(data, lines):
    images, n_lines = imagify(data, width=2, pad=0)
    assert [line for image, n in zip(images, n_lines) for line in to_text(image, n, pad=0)] == lines


def test_hand_checked_utf16_example():
    """A UTF-16 BE file as §3 reads it: the mark dropped, "é" one pixel, "\\r\\n" one line end, a tab four spaces."""
    data = b"\xfe\xff" + "é\tx\r\n😀".encode("utf-16-be")
    images, n_lines = imagify(data, height=3, width=7, pad=0)
    assert images[0].tolist() == [[0xE9, 32, 32, 32, 32, 120, 0], [0xFFFD, 0, 0, 0, 0, 0, 0], [0] * 7]
    assert n_lines.tolist() == [2]


def test_a_utf8_byte_order_mark_is_dropped_not_a_pixel():
    images, _ = imagify(b"\xef\xbb\xbfab", width=3, pad=0, dtype="int32")
    assert images[0, 0].tolist() == [97, 98, 0]


def test_tab_is_four_spaces_before_truncation():
    images, _ = imagify(b"\t\tx", width=9, pad=0)
    assert images[0, 0].tolist() == [32] * 8 + [120]
    images, _ = imagify(b"\t\tx", width=8, pad=0)
    assert images[0, 0].tolist() == [32] * 8


@pytest.mark.parametrize(
    "dtype, replacement, expected",
    [
        ("uint16", 26, [0x41, 0xE9, 0x20AC, 0xFFFD]),
        ("int32", 26, [0x41, 0xE9, 0x20AC, 0x1F600]),
        ("uint8", 26, [0x41, 0xE9, 26, 26]),
        ("uint8", 63, [0x41, 0xE9, 63, 63]),
    ],
)
def test_pixel_dtypes(dtype, replacement, expected):
    images, _ = imagify("Aé€\U0001f600".encode(), width=4, dtype=dtype, replacement=replacement)
    assert images.dtype == np.dtype(dtype)
    assert images[0, 0].tolist() == expected


def test_a_replacement_equal_to_newline_does_not_split_lines():
    images, n_lines = imagify("a€b".encode(), width=3, dtype="uint8", replacement=10)
    assert images[0, 0].tolist() == [97, 10, 98]
    assert n_lines.tolist() == [1]


def test_pad_above_255_with_ascii_input():
    images, _ = imagify(b"ab", width=4, pad=0xFFFF)
    assert images[0, 0].tolist() == [97, 98, 0xFFFF, 0xFFFF]


def test_images_are_fresh_writable_arrays():
    images, _ = imagify(b"abc\n", width=5)
    images[...] = 7
    again, _ = imagify(b"abc\n", width=5)
    assert again[0, 0].tolist() == [97, 98, 99, 32, 32]


def stdlib_samples() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return [root / "textwrap.py", root / "statistics.py", Path(__file__)]  # ASCII, UTF-8, UTF-8


@pytest.mark.parametrize("path", stdlib_samples(), ids=lambda path: path.name)
def test_real_source_files_match_reference(path):
    assert_matches_reference(path.read_bytes())


@pytest.mark.parametrize(
    "options",
    [
        {"dtype": "float32"},
        {"dtype": "uint32"},
        {"height": 0},
        {"width": 0},
        {"width": -3},
        {"dtype": "uint8", "pad": 256},
        {"dtype": "uint16", "pad": -1},
        {"dtype": "uint8", "replacement": 300},
    ],
)
def test_bad_options_raise_value_error(options):
    with pytest.raises(ValueError):
        imagify(b"a\n", **options)


def test_to_text_strips_only_trailing_padding():
    image = np.array([[97, 32, 98, 32], [32, 32, 32, 32], [99, 32, 32, 32]], dtype=np.uint16)
    assert to_text(image, 3) == ["a b", "", "c"]
    assert to_text(image, 1) == ["a b"]
    assert to_text(image, 0) == []
    assert to_text(image, 3, pad=98) == ["a b ", "    ", "c   "]


def test_to_text_loses_trailing_spaces_with_the_default_pad():
    images, n_lines = imagify(b"keep  \n", width=8)
    assert to_text(images[0], n_lines[0]) == ["keep"]


@pytest.mark.parametrize("n_lines", [-1, 5])
def test_to_text_rejects_impossible_n_lines(n_lines):
    with pytest.raises(ValueError):
        to_text(np.zeros((4, 4), np.uint16), n_lines)
