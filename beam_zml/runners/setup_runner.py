"""`zml setup-runner flink|spark`: put Beam's job-server jar for the installed Beam into Beam's jar cache.

Beam's FlinkRunner and SparkRunner start a Java job server from the jar
`beam-runners-flink-<flink>-job-server-<beam>.jar` or `beam-runners-spark-3-job-server-<beam>.jar`,
which they take from their jar cache (~/.apache_beam/cache/jars, or --jar_cache_dir) or else download
from Maven Central. Maven Central as reached here serves no job-server jar of any Beam version, but it
does serve the runner libraries with all their dependencies. So this builds the job server the way
Beam's own build does (one jar: the runner library and its dependencies merged, service files merged,
Main-Class the job-server driver), with Maven, from the small poms in beam_zml/runners/poms/, and writes it into the
cache under the exact name Beam looks for. Afterwards the standard options just work:

    --runner FlinkRunner --flink_master HOST:8081 --flink_version 1.19 ...
    --runner SparkRunner --spark_master_url spark://HOST:7077 ...

Exit status: 0 when the jar is there (built now, or already there: then nothing is done); 1 when it
cannot be had (no Maven, the registry refuses an artifact, the build fails), in one line naming what
failed, since the command was right and trying again elsewhere or later may work; 2 for a bad command
line, as everywhere in zml.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from apache_beam.options.pipeline_options import FlinkRunnerOptions
from apache_beam.utils.subprocess_server import JavaJarServer
from apache_beam.version import __version__ as BEAM_VERSION

PROG = "zml setup-runner"

POM_DIR = Path(__file__).resolve().parent / "poms"

FLINK_VERSIONS = tuple(FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS)  # the --flink_version choices of this Beam
DEFAULT_FLINK_VERSION = FLINK_VERSIONS[-1]
# The Spark inside the job server runs the driver, so it must be the cluster's version: the tests run
# a Spark 3.5.9 standalone cluster. Beam 2.62's Spark 3 runner is compiled against 3.2.2 and tested up to 3.5.
DEFAULT_SPARK_VERSION = "3.5.9"

MAVEN_TIMEOUT_SECONDS = 1800


class SetupError(Exception):
    """The job-server jar cannot be had; the message is one line."""


@dataclass(frozen=True)
class JobServer:
    runner: str
    gradle_target: str  # what Beam's Python runner names the jar after
    pom: str
    artifact: str  # the Maven artifact the jar is built from, for messages
    properties: dict


@dataclass(frozen=True)
class SetupResult:
    path: Path
    built: bool
    seconds: float


def job_server(
    runner: str,
    flink_version: str = DEFAULT_FLINK_VERSION,
    spark_version: str = DEFAULT_SPARK_VERSION,
    beam_version: str = BEAM_VERSION,
) -> JobServer:
    """What to build for `runner`, and the name Beam gives its jar."""
    if runner == "flink":
        return JobServer(
            runner="flink",
            gradle_target=f":runners:flink:{flink_version}:job-server:shadowJar",  # as FlinkJarJobServer.path_to_jar
            pom="flink-job-server.pom.xml",
            artifact=f"org.apache.beam:beam-runners-flink-{flink_version}:{beam_version}",
            properties={"beam.version": beam_version, "flink.minor": flink_version},
        )
    if runner == "spark":
        return JobServer(
            runner="spark",
            gradle_target=":runners:spark:3:job-server:shadowJar",  # as SparkJarJobServer.path_to_jar
            pom="spark-job-server.pom.xml",
            artifact=f"org.apache.beam:beam-runners-spark-3:{beam_version} with Spark {spark_version}",
            properties={"beam.version": beam_version, "spark.version": spark_version},
        )
    raise ValueError(f"unknown runner {runner!r}")


def jar_path(server: JobServer, jar_cache_dir: str | os.PathLike | None = None) -> Path:
    """Where Beam's runner looks for the jar: its cache folder and the file name of its Maven Central URL."""
    try:
        url = JavaJarServer.path_to_beam_jar(server.gradle_target, version=server.properties["beam.version"])
    except RuntimeError as error:  # a .dev Beam: Beam wants a jar built from its own source tree
        raise SetupError(str(error).replace("\n", " ")) from None
    return Path(jar_cache_dir or JavaJarServer.JAR_CACHE).expanduser() / os.path.basename(url)


def ensure_job_server(
    runner: str,
    *,
    flink_version: str = DEFAULT_FLINK_VERSION,
    spark_version: str = DEFAULT_SPARK_VERSION,
    beam_version: str = BEAM_VERSION,
    jar_cache_dir: str | os.PathLike | None = None,
    force: bool = False,
) -> SetupResult:
    """The job-server jar for `runner` in Beam's jar cache: built with Maven unless it is already there."""
    started = time.monotonic()
    server = job_server(runner, flink_version, spark_version, beam_version)
    target = jar_path(server, jar_cache_dir)
    if target.is_file() and not force:
        return SetupResult(target, built=False, seconds=time.monotonic() - started)
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.with_name(target.name + ".lock")):  # one build at a time; a waiter then finds the jar
        if target.is_file() and not force:
            return SetupResult(target, built=False, seconds=time.monotonic() - started)
        _build(server, target)
    return SetupResult(target, built=True, seconds=time.monotonic() - started)


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive lock held through `path`, so that two processes filling one cache take turns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(server: JobServer, target: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SetupError(f"cannot build {target.name}: Maven (mvn) is not on PATH, and it needs Maven and a JDK")
    pom = POM_DIR / server.pom
    if not pom.is_file():
        raise SetupError(f"cannot build {target.name}: {pom} is missing (it ships with the beam_zml package)")
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with tempfile.TemporaryDirectory(prefix="zml-job-server-") as build_dir:
        log = Path(build_dir) / "mvn.log"
        command = [mvn, "-B", "-q", "-U", "-Dstyle.color=never", "-f", str(pom), "package"]
        command += [f"-D{key}={value}" for key, value in server.properties.items()]
        command += [f"-Dbuild.dir={build_dir}/target", f"-Djob.server.jar={partial}"]
        try:
            with open(log, "wb") as output:
                status = subprocess.run(
                    command, check=False, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=MAVEN_TIMEOUT_SECONDS
                ).returncode
        except subprocess.TimeoutExpired:
            partial.unlink(missing_ok=True)
            raise SetupError(f"cannot build {target.name}: Maven took more than {MAVEN_TIMEOUT_SECONDS} s") from None
        if status != 0 or not partial.is_file():
            partial.unlink(missing_ok=True)
            kept = _keep_log(log, target)
            raise SetupError(f"cannot build {target.name} from {server.artifact}: {_maven_error(log)} (Maven log: {kept})")
    os.replace(partial, target)  # whole or not at all: Beam never sees half a jar


def _keep_log(log: Path, target: Path) -> Path:
    kept = target.with_name(target.name + ".mvn.log")
    shutil.copyfile(log, kept)
    return kept


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _maven_error(log: Path) -> str:
    """The first [ERROR] line of a Maven run, on one line, without Maven's boilerplate."""
    lines = [_ANSI.sub("", line).strip() for line in log.read_text(errors="replace").splitlines()]
    errors = [line.removeprefix("[ERROR]").strip() for line in lines if line.startswith("[ERROR]")]
    message = next((line for line in errors if line), None) or next((line for line in reversed(lines) if line), "no output")
    message = re.sub(r"^Failed to execute goal (?:\S+ (?:\(\S+\) )?)?on project [^:]+: ", "", message)
    message = re.sub(r"^Could not resolve dependencies for project [^:]+(?::[^:\s]+)*: ", "", message)
    message = re.sub(r" -> \[Help 1\]$", "", message)
    return message


def parser() -> argparse.ArgumentParser:
    from beam_zml.arguments import ArgumentParser

    setup = ArgumentParser(
        prog=PROG,
        description="Put Beam's job-server jar for this Beam version into Beam's jar cache, built with Maven from the "
        "runner library and its dependencies; do nothing if it is already there. Needs Maven and a JDK.",
        epilog="Then: zml build ... --runner FlinkRunner --flink_master HOST:8081 --flink_version "
        f"{DEFAULT_FLINK_VERSION} --environment_type EXTERNAL --environment_config HOST:PORT "
        "(or --runner SparkRunner --spark_master_url spark://HOST:7077 ...). "
        "Exit status: 0 done, 1 the jar cannot be had, 2 bad arguments.",
        allow_abbrev=False,
    )
    setup.add_argument("runner", choices=("flink", "spark"))
    setup.add_argument(
        "--flink-version", choices=FLINK_VERSIONS, default=DEFAULT_FLINK_VERSION, help="Flink minor version (default: %(default)s)"
    )
    setup.add_argument(
        "--spark-version",
        default=DEFAULT_SPARK_VERSION,
        help="the Spark 3 version bundled, which must be the cluster's (default: %(default)s)",
    )
    setup.add_argument("--beam-version", default=BEAM_VERSION, help="(default: the installed Beam, %(default)s)")
    setup.add_argument("--jar-cache-dir", help=f"Beam's --jar_cache_dir (default: {JavaJarServer.JAR_CACHE})")
    setup.add_argument("--force", action="store_true", help="build again even if the jar is there")
    return setup


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result = ensure_job_server(
            args.runner,
            flink_version=args.flink_version,
            spark_version=args.spark_version,
            beam_version=args.beam_version,
            jar_cache_dir=args.jar_cache_dir,
            force=args.force,
        )
    except SetupError as error:
        sys.stderr.write(f"{PROG}: error: {error}\n")
        return 1
    if result.built:
        size = result.path.stat().st_size / 2**20
        print(f"built {result.path} ({size:,.0f} MiB in {result.seconds:,.0f} s)")
    else:
        print(f"already there: {result.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
