"""Bad command-line input: one line naming the problem, exit status 2, no traceback (docs/design.md#faults-and-limits)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from beam_zml.core.records import local_record_id
from pipelines import cli


def run_cli(capsys, argv: list[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        status = cli.main(argv)
        raise SystemExit(status)
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--height", "abc"], "argument --height: must be a positive integer, got 'abc'"),
        (["--max-members", "1e3"], "argument --max-members: must be a positive integer, got '1e3'"),
        (["--height", "0"], "must be a positive integer"),
        (["--pixel-dtype", "float64"], "invalid choice"),
        (["--pixel-dtype", "uint8", "--pad", "300"], "--pad 300 does not fit --pixel-dtype uint8"),
        (["--direct_num_workers", "two"], "argument --direct_num_workers"),
        (["--runner"], "argument --runner: expected one argument"),
        (["--direct_num_workers", "-2"], "argument --direct_num_workers: must be zero or more, got -2"),
        (["--direct_running_mode", "bogus"], "argument --direct_running_mode: invalid choice: 'bogus'"),
        (["--runner", "NoSuchRunner"], "argument --runner: Beam cannot make a runner of 'NoSuchRunner': Unexpected pipeline runner"),
        (["--runner", "no.such.module.Runner"], "argument --runner: Beam cannot make a runner of 'no.such.module.Runner': No module named 'no'"),
        (["--environment_type", "BOGUS"], "argument --environment_type: 'BOGUS' is none of DOCKER, EXTERNAL, LOOPBACK"),
        (["--environment_cache_millis", "-5"], "argument --environment_cache_millis: must be zero or more, got -5"),
        (["--sdk_worker_parallelism", "many"], "argument --sdk_worker_parallelism: not an integer: 'many'"),
        (["--parallelism", "0"], "argument --parallelism: must be -1 (the runner's default) or a positive integer, got 0"),
        (["--job_port", "70000"], "argument --job_port: must be a port number, 0 to 65535, got 70000"),
        (["--flink_version", "1.3"], "argument --flink_version: invalid choice"),
        (["--progress-seconds", "0"], "argument --progress-seconds: must be a positive number, got 0"),
        (["--resume", "--overwrite"], "--resume and --overwrite exclude each other"),
    ],
)
def test_bad_options_get_one_line_and_status_2(capsys, repository, tmp_path, extra, expected):
    status, err = run_cli(capsys, ["build", "--local", str(repository), "--output", str(tmp_path / "out"), *extra])
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("zml build: error: ") and expected in err, err
    assert not (tmp_path / "out").exists()


def test_missing_path_is_refused(capsys, tmp_path):
    status, err = run_cli(capsys, ["build", "--local", str(tmp_path / "nope"), "--output", str(tmp_path / "out")])
    assert (status, err) == (2, f"zml build: error: --local {tmp_path / 'nope'}: no such file or directory\n")


@pytest.mark.parametrize("output", ["", "a-file"])
def test_an_output_that_is_no_folder_is_refused(capsys, repository, tmp_path, output):
    (tmp_path / "a-file").write_text("mine")
    status, err = run_cli(capsys, ["build", "--local", str(repository), "--output", output and str(tmp_path / output)])
    assert status == 2 and err.count("\n") == 1 and ("an empty path" in err or "a file, not a folder" in err), err
    assert (tmp_path / "a-file").read_text() == "mine"


def test_required_options_are_named(capsys, repository):
    status, err = run_cli(capsys, ["build", "--local", str(repository)])
    assert status == 2 and "the following arguments are required: --output" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--ids", "12,x"], "argument --ids: not a record id: 'x'"),
        (["--ids", "1", "--local", "."], "argument --local: not allowed with argument --ids"),
        (["--since", "last week"], "argument --since: not a date or ISO date-time: last week"),
        (["--exclude-pattern", "(unclosed"], "argument --exclude-pattern: not a regular expression"),
        (["--records-jsonl", "/nonexistent.jsonl"], "--records-jsonl /nonexistent.jsonl: no such file or directory"),
        (["--records-jsonl", "/"], "--records-jsonl /: a folder, not a file"),
        (["--ids", "1", "--requests-per-hour", "0"], "argument --requests-per-hour: must be a positive number, got 0"),
        (["--ids", "1", "--requests-per-minute", "-1"], "argument --requests-per-minute: must be a positive number, got -1"),
        (["--ids", "1", "--retry-initial-seconds", "-1"], "argument --retry-initial-seconds: must be a positive number"),
        (["--ids", "1", "--zenodo-url", "notaurl"], "argument --zenodo-url: not an http(s) URL: 'notaurl'"),
        (["--ids", "1", "--github-url", "ftp://github.com"], "argument --github-url: not an http(s) URL"),
        (["--ids", "1", "--zenodo-url", "https://exa mple.org"], "argument --zenodo-url: not an http(s) URL"),
        (["--ids", "1", "--zenodo-url", "https://127.0.0.1:9 "], "argument --zenodo-url: not an http(s) URL"),
        (["--ids", "1", "--zenodo-url", "https://127.0.0.1:99999"], "argument --zenodo-url: not an http(s) URL (Port out of range"),
        (["--ids", "1", "--zenodo-url", "https://[::1"], "argument --zenodo-url: not an http(s) URL (Invalid IPv6 URL)"),
        (["--ids", "1", "--zenodo-url", "https://me:s3cret@127.0.0.1:9"],
         "argument --zenodo-url: a user or password in the URL is never sent: 'https://127.0.0.1:9'"),
        (["--ids", "1", "--zenodo-url", "https://me:s3cret@127.0.0.1:99999"],
         "argument --zenodo-url: not an http(s) URL (Port out of range 0-65535): 'https://127.0.0.1:99999'"),
        (["--since", "2020-01-01", "--until", "2019-06-30"],
         "--since 2020-01-01 00:00:00 UTC is not before --until 2019-06-30 00:00:00 UTC"),
        (["--since", "2020-01-01T10:00:00+02:00", "--until", "2020-01-01T08:00:00Z"], "is not before --until"),
    ],
)
def test_bad_zenodo_options(capsys, tmp_path, extra, expected):
    status, err = run_cli(capsys, ["build", "--output", str(tmp_path / "out"), *extra])
    assert status == 2 and expected in err and err.count("\n") == 1 and "s3cret" not in err, err


def test_unknown_command(capsys):
    assert cli.main(["bulid"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zml: error: unknown command 'bulid' (choose from build, harvest, ") and err.count("\n") == 1


def test_existing_dataset_needs_overwrite(capsys, repository, tmp_path):
    output = tmp_path / "out"
    (output / "records").mkdir(parents=True)
    status, err = run_cli(capsys, ["build", "--local", str(repository), "--output", str(output)])
    assert status == 2 and "already holds the folders of a dataset that never finished; pass --overwrite" in err
    assert (output / "records").is_dir()


def test_console_script_runs_the_build_and_overwrites(repository, tmp_path):
    """The installed `zml` command, as a user runs it: a build, then a rebuild with --overwrite."""
    zml = Path(sys.executable).with_name("zml")
    output = tmp_path / "out"
    stale = output / "images" / "images-00000-of-00009.tfrecord.gz"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"stale")
    command = [str(zml), "build", "--local", str(repository), "--output", str(output), "--overwrite"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "records_ok: 1" in done.stderr and "files_imaged: 3" in done.stderr
    assert not stale.exists()
    record_id = local_record_id(str(repository))
    assert sorted(p.name for p in (output / "images").iterdir()) == [f"images-{record_id}-00000-of-00001.tfrecord.gz"]


SUBCOMMANDS = ["build", "harvest", "report", "show", "export-png", "train", "setup-runner"]


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_names_itself_in_help_and_errors(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and out.startswith(f"usage: zml {command} "), out[:200]
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--no-such-option"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith(f"zml {command}: error: ") and err.count("\n") == 1, err
