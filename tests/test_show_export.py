"""`zml show` and `zml export-png` on datasets built from real code."""

from __future__ import annotations

import shutil
import struct
import sysconfig
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

from beam_zml.consume.dataset import read_examples
from beam_zml.consume.export_png import png_name
from beam_zml.core.records import local_record_id
from pipelines import build_dataset, cli
from tests.conftest import C_SOURCE

STDLIB = Path(sysconfig.get_paths()["stdlib"])
MAKEFILE = "# Build the docs; this comment line is much longer than eighty characters, so show cuts it at the width.\n" \
    "all:\n\tpython -m sphinx -b html docs build\r\n\n\ttouch done\n"


def expected_lines(data: bytes, segment: int) -> list[str]:
    """SPEC §3 by hand: the lines of one image, tabs as 4 spaces, cut at 80, trailing spaces lost to the pad."""
    text = data.decode("utf-8", "replace").replace("\r", "").replace("\t", "    ")
    lines = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
    return [line[:80].rstrip(" ") for line in lines[80 * segment : 80 * segment + 80]]


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("show") / "repo"
    (root / "lib").mkdir(parents=True)
    shutil.copy(STDLIB / "textwrap.py", root / "lib" / "textwrap.py")
    (root / "Makefile").write_text(MAKEFILE)
    (root / "main.c").write_text(C_SOURCE)
    (root / "logo.bin").write_bytes(b"\0PNG" * 64)
    return root


def build(repository: Path, output: Path, dtype: str) -> str:
    build_dataset.run(["--local", str(repository), "--output", str(output), "--pixel-dtype", dtype])
    return str(output)


@pytest.fixture(scope="module")
def built(repository, tmp_path_factory) -> str:
    return build(repository, tmp_path_factory.mktemp("uint16") / "dataset", "uint16")


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    try:
        status = cli.main(argv)
    except SystemExit as exit_info:
        status = exit_info.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def png_header(data: bytes) -> tuple[int, int, int, int]:
    """Width, height, bit depth and colour type from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    return width, height, depth, colour


def decode_png(data: bytes, depth: int) -> np.ndarray:
    import tensorflow as tf

    return tf.io.decode_png(data, dtype=tf.uint16 if depth == 16 else tf.uint8).numpy()[:, :, 0]


@pytest.mark.parametrize("path, segment", [("lib/textwrap.py", 0), ("lib/textwrap.py", 3), ("Makefile", 0), ("main.c", 0)])
def test_show_prints_the_original_lines(capsys, repository, built, path, segment):
    record = local_record_id(str(repository))
    status, out, err = run_cli(capsys, ["show", built, "--record", str(record), "--path", path, "--segment", str(segment)])
    assert (status, err) == (0, "")
    expected = expected_lines((repository / path).read_bytes(), segment)
    if path == "main.c":  # uint16 cannot hold U+1F600: it became U+FFFD
        expected = [line.replace("\U0001F600", "\ufffd") for line in expected]
    assert expected and out == "".join(line + "\n" for line in expected)


def test_show_last_segment_and_default_segment(capsys, repository, built):
    record = str(local_record_id(str(repository)))
    data = (repository / "lib" / "textwrap.py").read_bytes()
    last = (len(data.decode().splitlines()) - 1) // 80
    _, out, _ = run_cli(capsys, ["show", built, "--record", record, "--path", "lib/textwrap.py", "--segment", str(last)])
    assert out.splitlines() == expected_lines(data, last) and 0 < len(out.splitlines()) <= 80
    _, default, _ = run_cli(capsys, ["show", built, "--record", record, "--path", "lib/textwrap.py"])
    assert default.splitlines() == expected_lines(data, 0)


@pytest.mark.parametrize(
    "path, segment, message",
    [
        ("lib/missing.py", 0, "has no file 'lib/missing.py'"),
        ("lib/textwrap.py", 99, "has no segment 99: it has segments 0 to "),
        ("Makefile", 1, "has no segment 1: it has segment 0"),
        ("logo.bin", 0, "'logo.bin' of record {record} was not imaged (binary)"),
    ],
)
def test_show_missing_image_is_one_line_and_status_2(capsys, repository, built, path, segment, message):
    record = local_record_id(str(repository))
    status, out, err = run_cli(capsys, ["show", built, "--record", str(record), "--path", path, "--segment", str(segment)])
    assert status == 2 and out == ""
    assert err.startswith("zml show: error: ") and err.count("\n") == 1 and message.format(record=record) in err, err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["show"], "the following arguments are required: OUT, --record, --path"),
        (["show", "OUT", "--record", "x", "--path", "a"], "argument --record: invalid int value: 'x'"),
        (["show", "/nonexistent", "--record", "1", "--path", "a"], "/nonexistent: no dataset.json"),
        (["export-png", "OUT"], "the following arguments are required: DEST"),
        (["export-png", "OUT", "DEST", "--limit", "0"], "argument --limit: must be a positive integer"),
        (["export-png", "OUT", "DEST", "--extensions", ","], "argument --extensions: no extensions given"),
    ],
)
def test_bad_input_gets_one_line_and_status_2(capsys, argv, message):
    status, _, err = run_cli(capsys, argv)
    assert status == 2 and err.startswith(f"zml {argv[0]}: error: ") and err.count("\n") == 1 and message in err, err


def test_export_writes_one_16_bit_png_per_image_by_extension(capsys, built, tmp_path):
    status, out, _ = run_cli(capsys, ["export-png", built, str(tmp_path)])
    examples = list(read_examples(built))
    assert status == 0 and out.startswith(f"wrote {len(examples)} PNGs in 3 extension folders")
    assert sorted(p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*.png")) == sorted(
        e["extension"].decode() or "none" for e in examples
    )
    for example in examples:
        path = example["path"].decode()
        folder = example["extension"].decode() or "none"
        data = (tmp_path / folder / f"{example['record_id']}-{quote(path, safe='')}-{example['segment']}.png").read_bytes()
        assert png_header(data) == (80, 80, 16, 0)  # 16-bit grayscale
        np.testing.assert_array_equal(decode_png(data, 16), example["image"])


def test_export_limit_and_extensions(capsys, built, tmp_path):
    status, _, _ = run_cli(capsys, ["export-png", built, str(tmp_path), "--extensions", ".PY,c", "--limit", "3"])
    written = sorted(p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*.png"))
    assert status == 0 and len(written) == 3 and set(written) <= {"py", "c"}
    run_cli(capsys, ["export-png", built, str(tmp_path / "none"), "--extensions", "none"])
    assert [p.parent.name for p in (tmp_path / "none").rglob("*.png")] == ["none"]


@pytest.mark.parametrize("dtype, depth", [("uint8", 8), ("int32", 16)])
def test_export_other_dtypes(capsys, repository, tmp_path, dtype, depth):
    built = build(repository, tmp_path / "dataset", dtype)
    run_cli(capsys, ["export-png", built, str(tmp_path / "png"), "--extensions", "c"])
    (example,) = [e for e in read_examples(built) if e["path"] == b"main.c"]
    data = (tmp_path / "png" / "c" / png_name(int(example["record_id"]), "main.c", 0)).read_bytes()
    assert png_header(data)[2:] == (depth, 0)
    pixels = decode_png(data, depth)
    np.testing.assert_array_equal(pixels, np.minimum(example["image"].astype(np.int64), 0xFFFF))
    if dtype == "int32":  # the emoji's code point does not fit 16 bits: clipped, as documented
        assert (example["image"] == 0x1F600).any() and (pixels == 0xFFFF).any()


def test_png_names_are_single_safe_file_names():
    assert png_name(7, "src/a b/main.c", 2) == "7-src%2Fa%20b%2Fmain.c-2.png"
    long = png_name(7, "d/" * 200 + "x.py", 0)
    assert len(long) <= 240 and "/" not in long and long.endswith("-0.png")
    assert long != png_name(7, "d/" * 201 + "x.py", 0)
