"""`zml show` and `zml export-png` on datasets built from real code."""

from __future__ import annotations

import shutil
import struct
import sysconfig
import unicodedata
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

from beam_zml.consume import ls
from beam_zml.consume.dataset import read_examples, read_rows
from beam_zml.consume.export_png import DEFAULT_LIMIT, png_name
from beam_zml.consume.export_png import parser as export_parser
from beam_zml.core.records import local_record_id
from pipelines import build_dataset, cli
from tests.conftest import C_SOURCE

STDLIB = Path(sysconfig.get_paths()["stdlib"])
MAKEFILE = "# Build the docs; this comment line is much longer than eighty characters, so show cuts it at the width.\n" \
    "all:\n\tpython -m sphinx -b html docs build\r\n\n\ttouch done\n"


def expected_lines(data: bytes, segment: int) -> list[str]:
    """The image rules by hand (docs/dataset-format.md#image-rules): the lines of one image, tabs as 4 spaces,
    cut at 80, trailing spaces lost to the pad."""
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
    status, out, err = run_cli(capsys, ["show", built, path, "--record", str(record), "--segment", str(segment)])
    assert (status, err) == (0, "")
    expected = expected_lines((repository / path).read_bytes(), segment)
    if path == "main.c":  # uint16 cannot hold U+1F600: it became U+FFFD
        expected = [line.replace("\U0001F600", "\ufffd") for line in expected]
    assert expected and out == "".join(line + "\n" for line in expected)


def test_show_last_segment_and_default_segment(capsys, repository, built):
    record = str(local_record_id(str(repository)))
    data = (repository / "lib" / "textwrap.py").read_bytes()
    last = (len(data.decode().splitlines()) - 1) // 80
    _, out, _ = run_cli(capsys, ["show", built, "lib/textwrap.py", "--record", record, "--segment", str(last)])
    assert out.splitlines() == expected_lines(data, last) and 0 < len(out.splitlines()) <= 80
    _, default, _ = run_cli(capsys, ["show", built, "lib/textwrap.py"])  # the only record: --record not needed
    assert default.splitlines() == expected_lines(data, 0)


@pytest.mark.parametrize(
    "path, segment, message",
    [
        ("lib/missing.py", 0, "record {record} has no file 'lib/missing.py'"),
        ("lib/textwrap.py", 99, "has no segment 99: it has segments 0 to "),
        ("Makefile", 1, "has no segment 1: it has segment 0"),
        ("logo.bin", 0, "'logo.bin' of record {record} was not imaged (binary)"),
    ],
)
def test_show_missing_image_is_one_line_and_status_2(capsys, repository, built, path, segment, message):
    record = local_record_id(str(repository))
    status, out, err = run_cli(capsys, ["show", built, path, "--record", str(record), "--segment", str(segment)])
    assert status == 2 and out == ""
    assert err.startswith("zml show: error: ") and err.count("\n") == 1 and message.format(record=record) in err, err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["show"], "the following arguments are required: OUT, PATH"),
        (["show", "OUT", "a", "--record", "x"], "argument --record: invalid int value: 'x'"),
        (["show", "/nonexistent", "a"], "/nonexistent: no dataset.json"),
        (["ls", "OUT", "--record", "x"], "argument --record: invalid int value: 'x'"),
        (["ls", "/nonexistent"], "/nonexistent: no dataset.json"),
        (["export-png", "OUT", "DEST", "--limit", "5", "--all"], "argument --all: not allowed with argument --limit"),
        (["export-png", "OUT"], "the following arguments are required: DEST"),
        (["export-png", "OUT", "DEST", "--limit", "0"], "argument --limit: must be a positive integer"),
        (["export-png", "OUT", "DEST", "--extensions", ","], "argument --extensions: no extensions given"),
    ],
)
def test_bad_input_gets_one_line_and_status_2(capsys, argv, message):
    status, _, err = run_cli(capsys, argv)
    assert status == 2 and err.startswith(f"zml {argv[0]}: error: ") and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize("dest", [".", "images", "sub/../pngs"])
def test_export_and_report_refuse_to_write_inside_the_dataset(capsys, built, dest):
    before = sorted(str(p) for p in Path(built).rglob("*"))
    for argv in (["export-png", built, str(Path(built) / dest)], ["report", built, "--dest", str(Path(built) / dest)]):
        status, out, err = run_cli(capsys, argv)
        assert status == 2 and out == "" and err.count("\n") == 1 and "inside the dataset" in err, err
    assert sorted(str(p) for p in Path(built).rglob("*")) == before


def test_export_refuses_a_dest_whose_extension_folder_is_the_dataset(capsys, repository, tmp_path):
    """The PNGs go to DEST/<extension>/: a dataset named like an extension, exported to its parent, is refused."""
    build_dataset.run(["--local", str(repository), "--output", str(tmp_path / "py")])
    before = sorted(p.name for p in (tmp_path / "py").iterdir())
    status, out, err = run_cli(capsys, ["export-png", str(tmp_path / "py"), str(tmp_path)])
    assert status == 2 and out == "" and f"{tmp_path / 'py'}: inside the dataset" in err, err
    assert sorted(p.name for p in (tmp_path / "py").iterdir()) == before


@pytest.mark.parametrize("command", ["export-png", "report"])
def test_a_dest_that_cannot_be_written_is_one_line_and_status_2(capsys, built, tmp_path, command):
    (tmp_path / "a-file").write_text("mine")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere" / "at-all")
    for dest in (tmp_path / "a-file" / "x", tmp_path / "dangling"):
        argv = ["export-png", built, str(dest)] if command == "export-png" else ["report", built, "--dest", str(dest)]
        status, out, err = run_cli(capsys, argv)
        last = err.strip().splitlines()[-1]  # export-png has said what it is writing first
        assert status == 2 and "Traceback" not in err and last.startswith(f"zml {command}: error: {dest}: cannot write"), err
    assert (tmp_path / "a-file").read_text() == "mine"


def test_report_by_default_refuses_to_write_inside_the_dataset_it_is_run_in(capsys, built, monkeypatch):
    monkeypatch.chdir(built)
    status, out, err = run_cli(capsys, ["report", "."])
    assert status == 2 and "inside the dataset" in err and not list(Path(built).glob("*-report")), err


def test_ls_shows_control_characters_of_a_path_escaped():
    rows = [{"path": "a/new\nline.py", "status": "imaged", "reason": None, "language": "Python", "n_lines": 3,
             "n_segments": 1}, {"path": "tab\tx.c", "status": "skipped", "reason": "binary", "language": None,
             "n_lines": 0, "n_segments": 0}]  # fmt: skip
    lines = ls.file_lines(rows)
    assert len(lines) == 3 and lines[1].startswith("a/new\\nline.py  imaged") and lines[2].startswith("tab\\tx.c")


def test_export_raw_writes_one_16_bit_png_per_image_by_extension(capsys, built, tmp_path):
    status, out, _ = run_cli(capsys, ["export-png", built, str(tmp_path), "--raw"])
    examples = list(read_examples(built))
    assert status == 0 and out.startswith(f"zml export-png: wrote {len(examples)} PNGs in 3 extension folders")
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
    status, _, err = run_cli(capsys, ["export-png", built, str(tmp_path), "--extensions", ".PY,c", "--limit", "3"])
    written = sorted(p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*.png"))
    assert status == 0 and len(written) == 3 and set(written) <= {"py", "c"}
    available = sum(1 for e in read_examples(built) if e["extension"] in (b"py", b"c"))
    assert err.splitlines()[0] == f"writing 3 of {available} images as readable PNGs (--limit N for more, --all for every one)"
    run_cli(capsys, ["export-png", built, str(tmp_path / "none"), "--extensions", "none"])
    assert [p.parent.name for p in (tmp_path / "none").rglob("*.png")] == ["none"]


@pytest.mark.parametrize("dtype, depth", [("uint8", 8), ("int32", 16)])
def test_export_other_dtypes(capsys, repository, tmp_path, dtype, depth):
    built = build(repository, tmp_path / "dataset", dtype)
    run_cli(capsys, ["export-png", built, str(tmp_path / "png"), "--extensions", "c", "--raw"])
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


def readable_grey(point: int, pad: int) -> int:
    """The documented mapping, written out again: white for pad and whitespace, then by Unicode category."""
    character = chr(point)
    if point == pad or character.isspace():
        return 255
    return {"L": 0, "N": 64, "P": 128, "S": 128}.get(unicodedata.category(character)[0], 192)


@pytest.mark.parametrize("dtype", ["uint16", "int32", "uint8"])
def test_export_default_is_a_readable_8_bit_picture(capsys, repository, tmp_path, dtype):
    built = build(repository, tmp_path / "dataset", dtype)
    status, out, err = run_cli(capsys, ["export-png", built, str(tmp_path / "png")])
    examples = list(read_examples(built))
    assert status == 0 and err.splitlines()[0] == f"writing {len(examples)} images as readable PNGs"
    for example in examples:
        folder = example["extension"].decode() or "none"
        data = (tmp_path / "png" / folder / png_name(int(example["record_id"]), example["path"].decode(), int(example["segment"]))).read_bytes()
        assert png_header(data) == (80, 80, 8, 0)  # 8-bit grayscale
        pixels = decode_png(data, 8)
        expected = np.vectorize(lambda point: readable_grey(int(point), 32))(example["image"])
        np.testing.assert_array_equal(pixels, expected)
        assert (pixels == 255).mean() > 0.5, "code is dark on a light page"
        if example["path"] == b"main.c":
            row = "#include <stdio.h>"
            assert pixels[0, : len(row)].tolist() == [128, 0, 0, 0, 0, 0, 0, 0, 255, 128, 0, 0, 0, 0, 0, 128, 0, 128]
            assert (pixels[5:] == 255).all()  # the pad rows below the file's 5 lines are white
            (emoji,) = np.isin(example["image"][2], [0xFFFD, 0x1F600, 26]).nonzero()[0]  # printf("héllo 😀\n")
            assert pixels[2, emoji] == {"uint16": 128, "int32": 128, "uint8": 192}[dtype]  # U+FFFD, U+1F600: symbols; 26: a control


def test_export_all_and_the_default_limit(capsys, built, tmp_path):
    assert export_parser().parse_args(["OUT", "DEST"]).limit == DEFAULT_LIMIT == 1000
    status, out, err = run_cli(capsys, ["export-png", built, str(tmp_path), "--all", "--raw"])
    n = len(list(read_examples(built)))
    assert status == 0 and err.splitlines()[0] == f"writing {n} images as raw PNGs"
    assert len(list(tmp_path.rglob("*.png"))) == n and out.startswith(f"zml export-png: wrote {n} PNGs in 3 extension folders under ")


@pytest.fixture(scope="module")
def two_records(tmp_path_factory) -> tuple[str, Path, Path, Path]:
    """Two repositories that both hold main.c (with different code), and a corrupt zip whose record fails."""
    root = tmp_path_factory.mktemp("two")
    alpha, beta = root / "alpha", root / "beta"
    (alpha / "lib").mkdir(parents=True)
    shutil.copy(STDLIB / "textwrap.py", alpha / "lib" / "textwrap.py")
    (alpha / "main.c").write_text(C_SOURCE)
    beta.mkdir()
    (beta / "main.c").write_text("int main(void) { return 1; }\n")
    (beta / "logo.bin").write_bytes(b"\0PNG" * 64)
    corrupt = root / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04" + bytes(range(256)))
    output = root / "dataset"
    build_dataset.run(["--local", str(alpha), str(beta), str(corrupt), "--output", str(output)])
    return str(output), alpha, beta, corrupt


def test_show_finds_a_unique_path_and_asks_which_record_for_a_shared_one(capsys, two_records):
    built, alpha, beta, _ = two_records
    status, out, _ = run_cli(capsys, ["show", built, "lib/textwrap.py"])
    assert status == 0 and out.splitlines() == expected_lines((alpha / "lib" / "textwrap.py").read_bytes(), 0)
    ids = sorted([local_record_id(str(alpha)), local_record_id(str(beta))])
    status, out, err = run_cli(capsys, ["show", built, "main.c"])
    assert status == 2 and out == "" and err.count("\n") == 1
    assert err == f"zml show: error: 'main.c' is in 2 records: {ids[0]}, {ids[1]}; choose one with --record ID\n"
    status, out, _ = run_cli(capsys, ["show", built, "main.c", "--record", str(local_record_id(str(beta)))])
    assert status == 0 and out == "int main(void) { return 1; }\n"
    status, _, err = run_cli(capsys, ["show", built, "lib/textwrap.py", "--record", str(local_record_id(str(beta)))])
    assert status == 2 and f"record {local_record_id(str(beta))} has no file 'lib/textwrap.py'" in err


def test_ls_lists_every_record_with_its_counts(capsys, two_records):
    built, alpha, beta, corrupt = two_records
    status, out, err = run_cli(capsys, ["ls", built])
    lines = out.splitlines()
    assert status == 0 and err == "3 records in " + built + "\n"
    assert lines[0].split() == ["record", "status", "source", "files", "images", "title"]
    rows = {row["record_id"]: row for row in read_rows(built, "records")}
    assert len(lines) == 1 + len(rows) == 4
    shown = {int(line.split()[0]): line.split() for line in lines[1:]}
    for record_id, row in rows.items():
        assert shown[record_id][1:5] == [row["status"], row["source"] or "-", str(row["n_files"]), str(row["n_images"])]
        assert shown[record_id][5:] == row["title"].split()
    assert [line.split()[5] for line in lines[1:]] == ["alpha", "beta", "corrupt.zip"]  # sorted by title
    assert shown[local_record_id(str(corrupt))][1] == "failed"


def test_ls_record_lists_its_files_with_status_or_reason(capsys, two_records):
    built, _, beta, _ = two_records
    record = local_record_id(str(beta))
    status, out, err = run_cli(capsys, ["ls", built, "--record", str(record)])
    assert status == 0 and err == f"2 files in record {record}\n"
    assert [line.split() for line in out.splitlines()] == [
        ["path", "status", "language", "lines", "images"],
        ["logo.bin", "binary", "Binary", "0", "0"],
        ["main.c", "imaged", "C", "1", "1"],
    ]
    status, out, err = run_cli(capsys, ["ls", built, "--record", "12345"])
    assert status == 2 and out == "" and err == f"zml ls: error: {built} has no record 12345 (zml ls {built} lists them)\n"
    failed = local_record_id(str(two_records[3]))
    status, out, err = run_cli(capsys, ["ls", built, "--record", str(failed)])
    assert status == 0 and err.startswith(f"0 files in record {failed}; the record failed: ") and "corrupt.zip" in err, err


def test_ls_into_a_pipe_closed_early_ends_quietly(tmp_path):
    """`zml ls OUT --record ID | head -1` on a record with thousands of files: no BrokenPipeError traceback."""
    import subprocess
    import sys

    repository = tmp_path / "many"
    repository.mkdir()
    for index in range(4000):
        (repository / f"file{index:04d}.txt").write_text(f"line {index}\n")
    output = tmp_path / "dataset"
    build_dataset.run(["--local", str(repository), "--output", str(output)])
    command = [sys.executable, "-m", "pipelines.cli", "ls", str(output), "--record", str(local_record_id(str(repository)))]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = process.stdout.readline()
    process.stdout.close()  # as `head -1` does
    status = process.wait(timeout=120)
    err = process.stderr.read().decode()
    assert first.split() == [b"path", b"status", b"language", b"lines", b"images"]
    assert status == 0 and "Traceback" not in err and "BrokenPipeError" not in err, err


def test_export_shows_a_progress_bar_on_a_terminal_only(built, tmp_path):
    """A tqdm bar on stderr when it is a terminal (a pty of 24x100 here); one line and no bar when it is a pipe."""
    import fcntl
    import os
    import pty
    import subprocess
    import sys
    import termios

    n = len(list(read_examples(built)))
    command = [sys.executable, "-m", "pipelines.cli", "export-png", built]
    piped = subprocess.run([*command, str(tmp_path / "piped")], capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0 and piped.stderr == f"writing {n} images as readable PNGs\n"

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen([*command, str(tmp_path / "terminal")], stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the pty is closed once the process ends
            break
        if not chunk:
            break
        shown += chunk
    assert process.wait(timeout=300) == 0
    os.close(controller)
    assert b"100%|" in shown and f"{n}/{n} [".encode() in shown, shown


def test_a_path_twice_in_one_record_is_not_ambiguous():
    """An archive with a name twice has two rows of that path in one record: the imaged one is the file."""
    from beam_zml.consume.show import ImageNotFound, choose_row

    kept = {"record_id": 7, "path": "a.py", "status": "imaged", "reason": None}
    duplicate = {"record_id": 7, "path": "a.py", "status": "skipped", "reason": "duplicate_path"}
    assert choose_row([duplicate, kept], "a.py", None, "OUT") is kept
    assert choose_row([kept, duplicate], "a.py", 7, "OUT") is kept
    with pytest.raises(ImageNotFound, match=r"^'a.py' is in 2 records: 7, 9; choose one with --record ID$"):
        choose_row([kept, duplicate, {**kept, "record_id": 9}], "a.py", None, "OUT")
    with pytest.raises(ImageNotFound, match="^record 8 has no file 'a.py'"):
        choose_row([], "a.py", 8, "OUT")
