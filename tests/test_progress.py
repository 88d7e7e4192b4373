"""What `zml build` prints: progress lines on a terminal, the last line, and honest exits (docs/design.md#faults-and-limits)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from beam_zml.consume.dataset import read_rows
from beam_zml.testing.zenodo_server import ZenodoServer
from pipelines.progress import progress_line
from tests.conftest import write_repository

ZML = str(Path(sys.executable).with_name("zml"))
PROGRESS = re.compile(
    r"^zml build: (\d+) of (\d+) records? \((\d+) failed\), [\d,]+ files?, [\d,.]+ MB imaged, [\d,.]+ MB/s, \d+:\d\d:\d\d$"
)


def run_on_terminal(argv: list[str], timeout: float = 300) -> tuple[int, list[str]]:
    """Run `zml` with stderr on a pseudo-terminal, as in a user's shell; its stderr lines and exit status."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([ZML, *argv], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], timeout)
        if not ready:
            process.kill()
            raise AssertionError("zml wrote nothing for too long")
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal is closed: the process has ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    status = process.wait(timeout)
    return status, b"".join(chunks).decode().replace("\r\n", "\n").splitlines()


@pytest.fixture
def repositories(tmp_path: Path) -> Path:
    root = tmp_path / "repos"
    for name in ("one", "two", "three"):
        write_repository(root / name)
    return root


@pytest.mark.parametrize("mode", [[], ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]])
def test_a_terminal_gets_progress_lines_then_counters_then_one_last_line(repositories, tmp_path, mode):
    output = tmp_path / "out"
    status, lines = run_on_terminal(["build", "--local-each", str(repositories), "--output", str(output), "--progress-seconds", "0.2", *mode])
    assert status == 0, lines
    progress = [PROGRESS.match(line) for line in lines if line.startswith("zml build: ") and " MB/s, " in line]
    assert progress and all(progress), lines
    done = [int(match.group(1)) for match in progress]
    assert done == sorted(done) and {int(match.group(2)) for match in progress} == {3}
    assert lines[-1] == f"zml build: dataset in {output}: 3 records ok, 0 failed, 9 images in all; errors: none"
    assert any(line.strip() == "records_ok: 3" for line in lines)
    assert not [line for line in lines if "semi_persistent_directory" in line or "Traceback" in line]


def test_quiet_or_not_a_terminal_prints_only_the_last_line(repositories, tmp_path):
    status, lines = run_on_terminal(
        ["build", "--local-each", str(repositories), "--output", str(tmp_path / "a"), "--progress-seconds", "0.2", "--quiet"]
    )
    assert status == 0 and lines == [f"zml build: dataset in {tmp_path / 'a'}: 3 records ok, 0 failed, 9 images in all; errors: none"]
    piped = subprocess.run(
        [ZML, "build", "--local-each", str(repositories), "--output", str(tmp_path / "b"), "--progress-seconds", "0.2"],
        capture_output=True, text=True, timeout=300,
    )
    assert piped.returncode == 0 and " MB/s, " not in piped.stderr and "records_ok: 3" in piped.stderr


def test_progress_line_when_the_total_is_known_or_not():
    totals = {"records_listed": 4, "records_failed": 1, "files_seen": 1200, "bytes_imaged": 5_000_000, "records_harvested": 40}
    assert progress_line("zml build", totals, 10, 2.0) == (
        "zml build: 4 of 10 records (1 failed), 1,200 files, 5.0 MB imaged, 2.50 MB/s, 0:00:02"
    )
    assert progress_line("zml build", totals, None, 75.0).startswith("zml build: 4 of 40 records found so far (1 failed)")
    assert progress_line("zml build", {}, None, 0.0) == "zml build: 0 records (0 failed), 0 files, 0.0 MB imaged, 0.00 MB/s, 0:00:00"


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


FAST = ["--max-attempts", "2", "--retry-initial-seconds", "0.01", "--requests-per-minute", "6000", "--search-requests-per-minute", "6000"]


def assert_one_line_exit_1(done: subprocess.CompletedProcess, output: Path, cause: str) -> None:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("zml build: error: ") and cause in last and f"errors in {output}/errors/ (" in last, last


def build(argv: list[str], output: Path) -> subprocess.CompletedProcess:
    return subprocess.run([ZML, "build", *argv, "--output", str(output), *FAST], capture_output=True, text=True, timeout=300)


def test_every_record_failing_ends_with_the_first_error_and_status_1(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}"
    done = build(["--ids", "1065022,1065023", "--zenodo-url", url, "--github-url", url], tmp_path / "out")
    assert_one_line_exit_1(done, tmp_path / "out", f"all 2 records failed; the first error: cannot reach {url}: ")


@pytest.mark.parametrize("files, cause", [
    ({}, "no image made: the records hold no file"),
    ({"logo.png": b"\x89PNG\r\n\x1a\n\0\0", "empty.py": b"", "big.txt": b"x\n" * 60},
     "no image made: 3 files seen, none imaged (skipped: 1 binary, 1 empty, 1 too_large)"),
])  # fmt: skip
def test_a_build_that_makes_no_image_says_why_with_status_1(tmp_path, files, cause):
    """The dataset is written (its rows say what each file was), but a run that made nothing is no success."""
    repository = tmp_path / "code"
    repository.mkdir()
    for name, data in files.items():
        (repository / name).write_bytes(data)
    done = build(["--local", str(repository), "--max-file-bytes", "100"], tmp_path / "out")
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1 and last.startswith(f"zml build: error: {cause}"), done.stderr
    assert (f"zml ls {tmp_path / 'out'} --record ID" in last) == bool(files) and (tmp_path / "out" / "dataset.json").exists()


def test_records_the_server_does_not_have_fail_with_status_1(tmp_path):
    with ZenodoServer() as server:
        done = build(["--ids", "5", "--zenodo-url", server.url, "--github-url", server.url], tmp_path / "out")
    assert_one_line_exit_1(done, tmp_path / "out", "the only record failed; the first error: ")
    assert "404" in done.stderr.strip().splitlines()[-1]


def test_a_search_that_cannot_reach_zenodo_ends_with_one_line_and_status_1(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}"
    done = build(["--query", "beam", "--zenodo-url", url], tmp_path / "out")
    assert_one_line_exit_1(done, tmp_path / "out", f"the records to build could not all be read; the first error: the search failed after 0 records: cannot reach {url}: ")


def test_a_search_that_keeps_failing_ends_with_one_line_and_status_1(tmp_path):
    with ZenodoServer() as server:
        server.inject(lambda path: path.startswith("/api/records"), "503", times=10)
        done = build(["--query", "beam", "--zenodo-url", server.url], tmp_path / "out")
    assert_one_line_exit_1(done, tmp_path / "out", "the search failed after 0 records: ")
    assert "503" in done.stderr.strip().splitlines()[-1]


def test_a_harvest_that_cannot_reach_zenodo_ends_with_one_line_and_status_1(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}"
    done = subprocess.run(
        [ZML, "harvest", "--output", str(tmp_path / "records.jsonl"), "--zenodo-url", url, *FAST],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("zml harvest: error: the search failed after 0 records and 2 attempts: cannot reach ") and url in last, last
    assert not (tmp_path / "records.jsonl").exists()


def test_lines_of_a_records_file_that_are_no_records_are_failed_records_beside_the_good_one(tmp_path):
    """The good record is built; each bad line is a failed record with its reason (docs/design.md#faults-and-limits: nothing lost), the blank
    line is nothing, and as one record was ok the run exits 0 and says how many failed."""
    with ZenodoServer() as server:
        record = server.add_record({"id": 7, "title": "good", "metadata": {"title": "good"}}, {"code.py": b"x = 1\n"})
        harvested = tmp_path / "records.jsonl"
        harvested.write_text(json.dumps(record) + "\n\n{not json\n" + json.dumps({"title": "no id"}) + "\n")
        done = build(["--records-jsonl", str(harvested), "--zenodo-url", server.url, "--github-url", server.url], tmp_path / "out")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "1 record ok, 2 failed" in done.stderr.strip().splitlines()[-1], done.stderr
    rows = sorted((row["status"], row["record_id"] == 7) for row in read_rows(str(tmp_path / "out"), "records"))
    assert rows == [("failed", False), ("failed", False), ("ok", True)]


@pytest.mark.parametrize("path, message", [("nosuchscheme://bucket/records.jsonl", "ValueError"), ("{tmp}/none.jsonl", "no such file")])
def test_a_records_file_that_is_not_there_is_bad_input(tmp_path, path, message):
    done = build(["--records-jsonl", path.format(tmp=tmp_path)], tmp_path / "out")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def test_some_failed_records_still_exit_0_and_a_resume_counts_only_its_own_run(tmp_path):
    output = tmp_path / "out"
    with ZenodoServer() as server:
        server.add_record({"id": 7, "title": "good", "metadata": {"title": "good"}}, {"code.py": b"x = 1\n"})
        first = build(["--ids", "7,8", "--zenodo-url", server.url, "--github-url", server.url], output)
        again = build(["--ids", "7,8", "--resume", "--zenodo-url", server.url, "--github-url", server.url], output)
    assert first.returncode == 0, first.stderr
    assert first.stderr.strip().splitlines()[-1] == (
        f"zml build: dataset in {output}: 1 record ok, 1 failed, 1 image in all; errors: {output}/errors/ (1 line)"
    )
    assert again.returncode == 0, again.stderr
    assert again.stderr.strip().splitlines()[-1] == (
        f"zml build: dataset in {output}: this run 0 records ok, 0 failed, 0 images; in all 2 records, 1 image; errors: none"
    )
