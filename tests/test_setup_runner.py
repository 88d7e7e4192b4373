"""`zml setup-runner flink|spark`: the job-server jar where Beam's runners look, nothing done when it is
already there, and one line and exit status 1 when it cannot be had (2 for a bad command line)."""

from __future__ import annotations

import os
import time
import zipfile

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.flink_runner import FlinkJarJobServer
from apache_beam.runners.portability.job_server import JavaJarJobServer
from apache_beam.runners.portability.spark_runner import SparkJarJobServer
from apache_beam.utils.subprocess_server import JavaJarServer

from beam_zml.runners import setup_runner as runners
from pipelines import cli

BEAM_LOOKUP = {
    "flink": lambda: FlinkJarJobServer(PipelineOptions(["--flink_version", runners.DEFAULT_FLINK_VERSION])).path_to_jar(),
    "spark": lambda: SparkJarJobServer(PipelineOptions([])).path_to_jar(),
}
MAIN_CLASS = {
    "flink": "org.apache.beam.runners.flink.FlinkJobServerDriver",
    "spark": "org.apache.beam.runners.spark.SparkJobServerDriver",
}


@pytest.mark.parametrize("runner", ["flink", "spark"])
def test_the_jar_has_the_name_beams_runner_looks_for(runner, tmp_path):
    beam_url = BEAM_LOOKUP[runner]()  # Maven Central's URL, which serves nothing here
    assert runners.jar_path(runners.job_server(runner), tmp_path) == tmp_path / os.path.basename(beam_url)
    assert str(runners.jar_path(runners.job_server(runner)).parent) == JavaJarServer.JAR_CACHE  # ~/.apache_beam/cache/jars


@pytest.mark.parametrize("runner", ["flink", "spark"])
def test_the_second_call_does_nothing_and_beam_finds_the_jar(runner, capsys):
    assert cli.main(["setup-runner", runner]) == 0  # builds it on a fresh machine; the runner tests need it anyway
    jar = runners.jar_path(runners.job_server(runner))
    first = capsys.readouterr().out
    assert first == f"already there: {jar}\n" or first.startswith(f"built {jar} (")
    before = jar.stat()

    started = time.monotonic()
    assert cli.main(["setup-runner", runner]) == 0
    assert time.monotonic() - started < 5
    assert capsys.readouterr().out == f"already there: {jar}\n"
    after = jar.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)

    assert JavaJarJobServer.local_jar(BEAM_LOOKUP[runner]()) == str(jar)  # Beam takes it from its cache: no download
    with zipfile.ZipFile(jar) as built:
        manifest = built.read("META-INF/MANIFEST.MF").decode()
        assert f"Main-Class: {MAIN_CLASS[runner]}" in manifest
        assert built.getinfo(MAIN_CLASS[runner].replace(".", "/") + ".class")
    assert not list(jar.parent.glob(f".{jar.name}.*.tmp"))


@pytest.mark.parametrize(
    "flags, missing",
    [
        (["flink", "--beam-version", "2.0.99"], "org.apache.beam:beam-runners-flink-1.19:jar:2.0.99"),
        (["spark", "--spark-version", "3.5.99"], "org.apache.spark:spark-core_2.12:jar:3.5.99"),
    ],
)
def test_an_artifact_maven_cannot_get_fails_with_one_line(flags, missing, tmp_path, capsys):
    assert cli.main(["setup-runner", *flags, "--jar-cache-dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("zml setup-runner: error: cannot build beam-runners-")
    assert f"Could not find artifact {missing}" in captured.err
    assert not list(tmp_path.glob("*.jar")) and not list(tmp_path.glob(".*.tmp"))  # no jar, whole or partial


def test_without_maven_it_fails_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cli.main(["setup-runner", "spark", "--jar-cache-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    jar = f"beam-runners-spark-3-job-server-{runners.BEAM_VERSION}.jar"
    assert err == f"zml setup-runner: error: cannot build {jar}: Maven (mvn) is not on PATH, and it needs Maven and a JDK\n"


@pytest.mark.parametrize("flags", [["storm"], ["flink", "--flink-version", "1.12"], []])
def test_a_bad_command_line_is_one_line_and_status_2(flags, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["setup-runner", *flags])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("zml setup-runner: error: ")
