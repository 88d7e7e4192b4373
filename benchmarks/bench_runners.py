"""How fast is a build on each runner, with 1 and 2 workers, beside the DirectRunner?

    python benchmarks/bench_runners.py [--corpus PATH ...] [--repeats N] [--runners direct,portable,dask,flink,spark]
                                       [--fixed-cost] [--compare-images] [--one-sdk-worker] [--beam-option FLAG]
                                       [--timeout S] [--keep]

One corpus of real code is built on every runner: by default a copy of a few packages of
the Python standard library (asyncio, email, idlelib, unittest, encodings, ...; about
9 MB of source in four folders, one `--local` record each), made once per run in a
temporary folder; --corpus takes one or more directories or archives instead, one
record each.

For each runner and worker count it starts a real cluster on 127.0.0.1 with the test
suite's helpers (tests/runner_processes.py), times the build, checks the output, and
stops the cluster, process groups and all:

- DirectRunner: 1 worker in_memory (the default, and the reference), then
  --direct_num_workers 2 --direct_running_mode multi_processing; no cluster.
- PortableRunner: Beam's local job service and one EXTERNAL worker pool. One row only:
  the local job service runs the job with an Fn API runner that runs each stage as one
  bundle on one SDK worker (it ignores --direct_num_workers), so it has no 2-worker form.
- DaskRunner (beam_zml.runners.dask_runner): a scheduler and 1, then 2, worker processes of
  one thread each.
- FlinkRunner: a JobManager and one TaskManager with 1, then 2, slots, run with
  --parallelism 1, then 2, and an EXTERNAL worker pool; Beam starts its Flink job
  server (the jar `zml setup-runner flink` builds) for each run.
- SparkRunner: a standalone Master and one Worker with 1, then 2, cores (one executor
  with that many cores), and an EXTERNAL worker pool; Beam starts its Spark job server
  (the driver runs in it) for each run.

For Flink and Spark it passes --sdk_worker_parallelism equal to the slots or cores, so
that each slot or core has its own Python SDK worker process; Beam's default, 1, puts
every slot's bundles into one Python process (--one-sdk-worker measures that instead).

How a run is timed: every build is a fresh Python process (this script with --child),
which imports pipelines.build_dataset and Beam first and then times
`pipelines.build_dataset.run([...])` alone, from the call to its return after
wait_until_finish: graph construction, job submission, the job server's start-up where
Beam starts one (also reported on its own), the job, and the wait. Python's start-up
and imports are not in the wall time; the cluster's start-up is not either (it has its
own column). The same for every runner, DirectRunner included. A fresh process per
run keeps runners from sharing state, and lets a hung run be killed whole.

Every run's dataset.json counts must equal the DirectRunner's (and so its counters,
where the runner reports them), and nothing may be in the output but what dataset.json
lists; --compare-images also compares every record and file row and the multiset of
images with the DirectRunner's. A run that fails is reported in the table and makes
the exit status 1. The table also shows what each run shuffled, per MB of source imaged:
the sum of the build's `shuffled_bytes:*` counters (each shuffle's input, encoded with
Beam's default coder), where the runner reports counters.

Each configuration runs --repeats times (default 1) on the same cluster and the table
shows the median. One repeat is the default because a full run starts eight clusters
and takes 5-10 minutes on two cores; so the figures carry the machine's noise (the
DirectRunner is run again at the end to show how much it drifted). --fixed-cost also
times each configuration on a 16-file corpus: that run's time is the configuration's
fixed cost, whatever the input. Not part of the test run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from beam_zml.testing.corpus import stdlib_packages
from beam_zml.testing.runner_processes import (
    HOST,
    SPARK_VERSION,
    FlinkCluster,
    Process,
    Processes,
    SparkCluster,
    free_ports,
    http_json,
    start_dask_cluster,
    wait_listening,
    wait_until,
    worker_pool,
)

RUNNERS = ("direct", "portable", "dask", "flink", "spark")
FLINK_MINOR = "1.19"

# The default corpus: stdlib packages of real code, in four records of about 2-2.5 MB of source each.
RECORDS = {
    "stdlib-net": ["asyncio", "email", "http", "urllib", "xml", "xmlrpc", "json", "multiprocessing", "concurrent",
                   "importlib", "logging"],
    "stdlib-idle": ["idlelib", "tkinter", "turtledemo"],
    "stdlib-tools": ["lib2to3", "distutils", "unittest"],
    "stdlib-misc": ["encodings", "ctypes", "sqlite3", "wsgiref", "zoneinfo", "tomllib", "re", "collections", "html"],
}  # fmt: skip
TINY_FILES = 16
IN_MEMORY_FLAGS = ["--direct_num_workers", "1", "--direct_running_mode", "in_memory"]
CHILD_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    # The Spark driver runs in the job server Beam starts from the child: it binds to and advertises 127.0.0.1.
    "SPARK_LOCAL_IP": HOST,
    "SPARK_LOCAL_HOSTNAME": HOST,
}
SHUFFLED = "shuffled_bytes:"  # beam_zml.transforms.counters.SHUFFLED_BYTES: what each shuffle moved
POOL_STARTED_WORKER = "Starting worker with command"  # what Beam's worker pool logs for each SDK worker it starts


class RunFailed(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# The corpus


def tiny_corpus(destination: Path, n_files: int = TINY_FILES) -> list[Path]:
    """A few one-line files: a run on it costs what every run costs whatever its input."""
    destination.mkdir(parents=True)
    for index in range(n_files):
        (destination / f"hello{index:02d}.py").write_text(f'print("hello {index}")\n')
    return [destination]


# ---------------------------------------------------------------------------------------------
# One build, in a fresh process


def child(result_path: str, build_argv: list[str]) -> None:
    """`--child RESULT -- BUILD ARGS`: import, then time build_dataset.run(BUILD ARGS) alone; facts to RESULT (JSON)."""
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    from apache_beam.runners.portability import job_server

    from pipelines import build_dataset

    imported = time.perf_counter() - started
    job_server_starts: list[float] = []

    class TimedJobServer(job_server.StopOnExitJobServer):
        """Beam's wrapper of the job server it starts (Flink, Spark), with the start-up timed."""

        def start(self):
            first = not self._started
            start = time.perf_counter()
            endpoint = super().start()
            if first:
                job_server_starts.append(time.perf_counter() - start)
            return endpoint

    job_server.StopOnExitJobServer = TimedJobServer  # looked up by the runners at call time

    start = time.perf_counter()
    result = build_dataset.run(build_argv)
    seconds = time.perf_counter() - start
    try:
        counters = build_dataset.counter_totals(result)
    except Exception as error:  # noqa: BLE001 - a runner without metrics: the counts in dataset.json are still checked
        counters = {"<no metrics>": repr(error)}
    Path(result_path).write_text(
        json.dumps(
            {
                "import_s": imported,
                "run_s": seconds,
                "job_server_s": sum(job_server_starts),
                "job_servers": len(job_server_starts),
                "state": str(result.state),
                "counters": counters,
            }
        )
    )


def child_env() -> dict:
    env = dict(os.environ)
    env.update(CHILD_ENV)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


# ---------------------------------------------------------------------------------------------
# The clusters: each a context manager yielding a Cluster, everything it started stopped at its end


@dataclasses.dataclass
class Cluster:
    flags: list[str]  # the Beam options that run the build on it
    startup_s: float | None = None  # from starting its first process to ready
    snapshot: Callable[[], dict] = dict  # facts taken before and after each run...
    evidence: Callable[[dict, dict], str] = lambda before, after: "—"  # ...and what they say about the run
    problems: Callable[[], list[str]] = list  # what the cluster says went wrong (failed jobs, retried tasks)


@contextlib.contextmanager
def stopping(processes: Processes) -> Iterator[None]:
    try:
        yield
    finally:
        processes.stop_all()
        left = processes.left_running()
        if left:
            print(f"warning: still running after stop: {left}", file=sys.stderr)


def pool_snapshot(pool: Process) -> dict:
    text = pool.log.read_text(errors="replace") if pool.log.exists() else ""
    return {"sdk_workers": text.count(POOL_STARTED_WORKER)}


def pool_evidence(before: dict, after: dict) -> str:
    started = after["sdk_workers"] - before["sdk_workers"]
    return f"{started} SDK worker{'s' * (started != 1)}"


@contextlib.contextmanager
def no_cluster(flags: list[str]) -> Iterator[Cluster]:
    yield Cluster(flags=flags)


@contextlib.contextmanager
def portable_cluster(directory: Path) -> Iterator[Cluster]:
    """Beam's local job service and an EXTERNAL worker pool, as tests/test_runner_portable.py starts them."""
    processes = Processes(directory)
    with stopping(processes):
        start = time.perf_counter()
        port_file = directory / "job-service.port"
        job_service = processes.start(
            "job-service",
            [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main", "--port", "0"]
            + ["--port_file", str(port_file), "--staging_dir", str(directory / "staging")],
            cwd=str(directory),
        )
        job_port = int(wait_until(lambda: port_file.exists() and port_file.read_text().strip(), 120, "its port file", job_service))
        wait_listening(job_service, job_port, timeout=60)
        (pool_port,) = free_ports(1)
        pool = worker_pool(processes, pool_port)
        yield Cluster(
            flags=["--runner", "PortableRunner", "--job_endpoint", f"{HOST}:{job_port}"]
            + ["--environment_type", "EXTERNAL", "--environment_config", f"{HOST}:{pool_port}"],
            startup_s=time.perf_counter() - start,
            snapshot=lambda: pool_snapshot(pool),
            evidence=pool_evidence,
        )


def _executed_counts(address: str) -> dict:
    import distributed

    with distributed.Client(address, timeout=60, set_as_default=False) as probe:
        return probe.run(lambda dask_worker: dask_worker.state.executed_count)  # a lambda: pickled by value


@contextlib.contextmanager
def dask_cluster(directory: Path, workers: int) -> Iterator[Cluster]:
    """A scheduler and `workers` single-thread worker processes, as tests/test_runner_dask.py starts them."""
    processes = Processes(directory)
    with stopping(processes):
        start = time.perf_counter()
        address = start_dask_cluster(processes, directory, workers, env=child_env())
        startup = time.perf_counter() - start

        def evidence(before: dict, after: dict) -> str:
            tasks = [after[name] - before.get(name, 0) for name in sorted(after)]
            return "tasks per worker " + "/".join(str(count) for count in tasks)

        yield Cluster(
            flags=["--runner", "DaskRunner", "--dask_client_address", address],
            startup_s=startup,
            snapshot=lambda: _executed_counts(address),
            evidence=evidence,
        )


def _flink_parallelism(cluster: FlinkCluster) -> int | None:
    """The highest parallelism of any task of the newest job, from Flink's REST API."""
    jobs = (http_json(f"http://{cluster.master}/jobs/overview") or {}).get("jobs", [])
    if not jobs:
        return None
    newest = max(jobs, key=lambda job: job.get("start-time", 0))
    vertices = (http_json(f"http://{cluster.master}/jobs/{newest['jid']}") or {}).get("vertices", [])
    return max((vertex.get("parallelism", 0) for vertex in vertices), default=None)


@contextlib.contextmanager
def flink_cluster(directory: Path, slots: int, sdk_workers: int) -> Iterator[Cluster]:
    """A JobManager, one TaskManager with `slots` slots and an EXTERNAL worker pool, as tests/test_runner_flink.py."""
    from beam_zml.runners import setup_runner as runners

    runners.ensure_job_server("flink", flink_version=FLINK_MINOR)  # at once when the jar is in Beam's cache
    processes = Processes(directory)
    with stopping(processes):
        start = time.perf_counter()
        cluster = FlinkCluster(processes, directory, slots=slots)
        cluster.start()
        (pool_port,) = free_ports(1)
        pool = worker_pool(processes, pool_port)
        startup = time.perf_counter() - start

        def evidence(before: dict, after: dict) -> str:
            return f"parallelism {_flink_parallelism(cluster)}, {pool_evidence(before, after)}"

        def problems() -> list[str]:
            overview = cluster.overview()
            found = [f"{overview.get('jobs-failed')} Flink jobs failed"] if overview.get("jobs-failed") else []
            log = directory / "jobmanager.flink.log"
            if log.exists() and " to FAILED" in log.read_text(errors="replace"):
                found.append("a Flink task failed and was retried")
            return found

        yield Cluster(
            flags=["--runner", "FlinkRunner", "--flink_master", cluster.master, "--flink_version", FLINK_MINOR]
            + ["--environment_type", "EXTERNAL", "--environment_config", f"{HOST}:{pool_port}"]
            + ["--parallelism", str(slots), "--sdk_worker_parallelism", str(sdk_workers)],
            startup_s=startup,
            snapshot=lambda: pool_snapshot(pool),
            evidence=evidence,
            problems=problems,
        )


@contextlib.contextmanager
def spark_cluster(directory: Path, cores: int, sdk_workers: int) -> Iterator[Cluster]:
    """A Master, one Worker with `cores` cores and an EXTERNAL worker pool, as tests/test_runner_spark.py."""
    from beam_zml.runners import setup_runner as runners

    runners.ensure_job_server("spark", spark_version=SPARK_VERSION)
    processes = Processes(directory)
    with stopping(processes):
        start = time.perf_counter()
        cluster = SparkCluster(processes, directory, cores=cores)
        cluster.start()
        (pool_port,) = free_ports(1)
        pool = worker_pool(processes, pool_port)
        startup = time.perf_counter() - start

        def evidence(before: dict, after: dict) -> str:
            apps = cluster.status().get("completedapps", [])
            granted = f"executor cores {apps[-1].get('cores')}, " if apps else ""
            return granted + pool_evidence(before, after)

        def problems() -> list[str]:
            apps = cluster.status().get("completedapps", [])
            found = [f"Spark app {app.get('id')} {app.get('state')}" for app in apps if app.get("state") != "FINISHED"]
            logs = (directory / "spark-work").glob("app-*/*/stderr")
            if any("Exception in task" in log.read_text(errors="replace") for log in logs):
                found.append("a Spark task failed and was retried")
            return found

        yield Cluster(
            flags=["--runner", "SparkRunner", "--spark_master_url", cluster.master_url]
            + ["--environment_type", "EXTERNAL", "--environment_config", f"{HOST}:{pool_port}"]
            + ["--sdk_worker_parallelism", str(sdk_workers)],
            startup_s=startup,
            snapshot=lambda: pool_snapshot(pool),
            evidence=evidence,
            problems=problems,
        )


# ---------------------------------------------------------------------------------------------
# Measuring


@dataclasses.dataclass
class Row:
    runner: str
    workers: str
    walls: list[float] = dataclasses.field(default_factory=list)
    shuffled: list[int] = dataclasses.field(default_factory=list)  # bytes, from the shuffled_bytes:* counters
    job_server: list[float] = dataclasses.field(default_factory=list)
    startup_s: float | None = None
    fixed_s: float | None = None
    evidence: str = "—"
    check: str = ""
    error: str | None = None

    @property
    def wall(self) -> float | None:
        return statistics.median(self.walls) if self.walls else None


@dataclasses.dataclass
class Bench:
    work: Path
    corpus: list[Path]
    tiny: list[Path]
    repeats: int
    timeout: float
    fixed_cost: bool
    compare_images: bool
    beam_options: list[str] = dataclasses.field(default_factory=list)
    runs: int = 0
    reference: dict | None = None  # the DirectRunner in_memory run's counts, counters and output
    imports: list[float] = dataclasses.field(default_factory=list)

    def build(self, inputs: list[Path], flags: list[str], what: str) -> dict:
        """One build in a fresh process (see child()); its facts, with its output folder as "output"."""
        self.runs += 1
        out = self.work / f"out-{self.runs}"
        result_file = self.work / f"result-{self.runs}.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--child", str(result_file), "--"]
        command += ["--local", *map(str, inputs), "--output", str(out), *flags, *self.beam_options]
        process = Process(what, command, self.work / f"run-{self.runs}.log", env=child_env(), cwd=str(ROOT))
        try:
            try:
                process.popen.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                raise RunFailed(f"{what}: not done in {self.timeout:.0f} s; {process.log}:\n{process.tail(20)}") from None
            if process.popen.returncode != 0 or not result_file.exists():
                raise RunFailed(f"{what}: exit status {process.popen.returncode}; {process.log}:\n{process.tail(20)}")
        finally:
            process.stop()  # the child's group: a job server or SDK worker it left, or all of it on a timeout
        facts = json.loads(result_file.read_text())
        if facts["state"] not in ("DONE", "PipelineState.DONE"):
            raise RunFailed(f"{what}: the pipeline ended {facts['state']}")
        facts["output"] = out
        self.imports.append(facts["import_s"])
        return facts

    def check(self, facts: dict) -> str:
        """'' if the output is the reference's (counts, counters, only listed files); else what differs."""
        from beam_zml.testing.dataset_compare import (
            assert_only_listed_files,
            assert_same_dataset,
        )

        out = facts["output"]
        counts = json.loads((out / "dataset.json").read_text())["counts"]
        problems = []
        if counts != self.reference["counts"]:
            problems.append(f"dataset.json counts {counts} != {self.reference['counts']}")
        counters, expected = without_shuffled(facts["counters"]), without_shuffled(self.reference["counters"])
        if "<no metrics>" not in counters and "<no metrics>" not in expected and counters != expected:
            differ = {key: (expected.get(key), counters.get(key)) for key in set(counters) | set(expected) if counters.get(key) != expected.get(key)}
            problems.append(f"counters (DirectRunner, this run) {differ}")
        try:
            assert_only_listed_files(str(out))
            if self.compare_images:
                assert_same_dataset(str(out), str(self.reference["output"]))
        except AssertionError as error:
            problems.append(str(error))
        return "; ".join(problems)

    def measure(self, runner: str, workers: str, cluster_factory: Callable[[], contextlib.AbstractContextManager]) -> Row:
        row = Row(runner, workers)
        label = f"{runner}, {workers}"
        print(f"{label}: starting", file=sys.stderr, flush=True)
        try:
            with cluster_factory() as cluster:
                row.startup_s = cluster.startup_s
                problems: list[str] = []
                for repeat in range(self.repeats):
                    before = cluster.snapshot()
                    facts = self.build(self.corpus, cluster.flags, label)
                    row.evidence = cluster.evidence(before, cluster.snapshot())
                    row.walls.append(facts["run_s"])
                    if "<no metrics>" not in facts["counters"]:
                        row.shuffled.append(sum(v for k, v in facts["counters"].items() if k.startswith(SHUFFLED)))
                    if facts["job_servers"]:
                        row.job_server.append(facts["job_server_s"])
                    if self.reference is None:  # the first run, DirectRunner in_memory, is what the others must equal
                        self.reference = {"counts": json.loads((facts["output"] / "dataset.json").read_text())["counts"],
                                          "counters": facts["counters"], "output": facts["output"]}
                    else:
                        problem = self.check(facts)
                        if problem:
                            problems.append(problem)
                        shutil.rmtree(facts["output"], ignore_errors=True)
                    print(f"{label}: run {repeat + 1}/{self.repeats}: {facts['run_s']:.2f} s ({row.evidence})",
                          file=sys.stderr, flush=True)
                if self.fixed_cost:
                    facts = self.build(self.tiny, cluster.flags, label + f", {TINY_FILES}-file corpus")
                    row.fixed_s = facts["run_s"]
                    shutil.rmtree(facts["output"], ignore_errors=True)
                problems += cluster.problems()
                row.check = "; ".join(problems) if problems else "yes"
                if problems:
                    row.error = "output differs"
        except Exception as error:  # noqa: BLE001 - a runner that fails is reported, and the others still run
            row.error = f"{type(error).__name__}: {error}"
            print(f"{label}: FAILED: {row.error}", file=sys.stderr, flush=True)
        return row


def without_shuffled(counters: dict) -> dict:
    """The counters a run must share with the DirectRunner's: the shuffled bytes are reported, not compared."""
    return {key: value for key, value in counters.items() if not key.startswith(SHUFFLED)}


def configurations(runners: list[str], work: Path, one_sdk_worker: bool) -> Iterator[tuple[str, str, Callable]]:
    """(runner, workers, cluster factory) for every measured configuration, in the table's order."""

    def sdk(n: int) -> int:
        return 1 if one_sdk_worker else n

    if "direct" in runners:
        yield "DirectRunner", "2 (multi_processing)", lambda: no_cluster(
            ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]
        )
    if "portable" in runners:
        yield "PortableRunner (local job service)", "1 (worker pool)", lambda: portable_cluster(folder(work, "portable"))
    for n in (1, 2):
        if "dask" in runners:
            yield "DaskRunner", f"{n} worker process{'es' * (n > 1)}", lambda n=n: dask_cluster(folder(work, f"dask-{n}"), n)
    for n in (1, 2):
        if "flink" in runners:
            yield "FlinkRunner", f"{n} slot{'s' * (n > 1)}", lambda n=n: flink_cluster(folder(work, f"flink-{n}"), n, sdk(n))
    for n in (1, 2):
        if "spark" in runners:
            yield "SparkRunner", f"{n} core{'s' * (n > 1)}", lambda n=n: spark_cluster(folder(work, f"spark-{n}"), n, sdk(n))


def folder(work: Path, name: str) -> Path:
    path = work / name
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------------------------------------
# Printing


def table(rows: list[Row], reference: float, facts: dict, fixed_cost: bool) -> str:
    mb_imaged = facts["bytes"]["imaged"] / 1e6
    files = facts["files"]["seen"]
    head = ["runner", "workers", "wall s", "files/s", "MB imaged/s", "KB shuffled per MB imaged", "wall / DirectRunner in_memory",
            "of which job server start s", "parallel work seen", "cluster start s (not in wall)", "output = DirectRunner's"]  # fmt: skip
    if fixed_cost:
        head.insert(8, f"{TINY_FILES}-file run s")
    text = {"runner", "workers", "parallel work seen", "output = DirectRunner's"}
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if name in text else "---:" for name in head) + "|"]
    for row in rows:
        if row.wall is None:
            cells = [row.runner, row.workers, "failed", "", "", "", "", "", "—", fmt(row.startup_s), row.error or ""]
            if fixed_cost:
                cells.insert(8, "")
        else:
            cells = [
                row.runner, row.workers, f"{row.wall:.2f}", f"{files / row.wall:,.0f}", f"{mb_imaged / row.wall:.2f}",
                f"{statistics.median(row.shuffled) / 1e3 / mb_imaged:.1f}" if row.shuffled else "—",
                f"{row.wall / reference:.2f}x", fmt(statistics.median(row.job_server) if row.job_server else None),
                row.evidence, fmt(row.startup_s),
                "yes (reference)" if row.check == "reference" else row.check or f"failed: {row.error}",
            ]  # fmt: skip
            if fixed_cost:
                cells.insert(8, fmt(row.fixed_s))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fmt(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.2f}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:  # one build in this fresh process: --child RESULT -- BUILD ARGS
        child(argv[1], argv[3:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", nargs="+", metavar="PATH", help="directories or archives, one record each (default: stdlib packages, four records)")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of each configuration on the same cluster; the median is shown (default 1)")
    parser.add_argument("--runners", default=",".join(RUNNERS), help=f"comma-separated, of {','.join(RUNNERS)} (default all); "
                        "the DirectRunner in_memory reference always runs")  # fmt: skip
    parser.add_argument("--fixed-cost", action="store_true", help=f"also time each configuration on a {TINY_FILES}-file corpus")
    parser.add_argument("--compare-images", action="store_true", help="compare every row and image with the DirectRunner's, not only the counts")
    parser.add_argument("--one-sdk-worker", action="store_true", help="Flink and Spark with Beam's default --sdk_worker_parallelism 1")
    parser.add_argument("--beam-option", action="append", default=[], metavar="FLAG",
                        help="a Beam option added to every build, e.g. --beam-option=--environment_cache_millis=60000 (repeatable)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a build may take before it is killed (default 600)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, outputs) and print its path")
    args = parser.parse_args(argv)
    runners = [name.strip() for name in args.runners.split(",") if name.strip()]
    unknown = sorted(set(runners) - set(RUNNERS))
    if unknown:
        parser.error(f"--runners: unknown {', '.join(unknown)}; choose from {','.join(RUNNERS)}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    for path in args.corpus or []:
        if not os.path.exists(path):
            parser.error(f"--corpus {path}: no such file or directory")

    began, load_before = time.perf_counter(), os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench_runners-"))
    try:
        if args.corpus:
            corpus, described = [Path(path).resolve() for path in args.corpus], "--corpus"
        else:
            corpus = stdlib_packages(work / "corpus", RECORDS)
            described = f"stdlib packages of Python {sys.version.split()[0]} ({', '.join(p for ps in RECORDS.values() for p in ps)})"
        bench = Bench(work, corpus, tiny_corpus(work / "tiny"), args.repeats, args.timeout, args.fixed_cost, args.compare_images,
                      args.beam_option)
        warm_up = bench.build(bench.tiny, IN_MEMORY_FLAGS, "warm-up")  # untimed: the first run pays for a cold disk cache
        shutil.rmtree(warm_up["output"], ignore_errors=True)

        rows = [bench.measure("DirectRunner", "1 (in_memory)", lambda: no_cluster(IN_MEMORY_FLAGS))]
        if bench.reference is None:
            print(f"The DirectRunner reference run failed: {rows[0].error}", file=sys.stderr)
            return 1
        rows[0].check = "reference"
        for runner, workers, factory in configurations(runners, work, args.one_sdk_worker):
            rows.append(bench.measure(runner, workers, factory))
        again = None
        if len(rows) > 1:  # the reference again, to show how much the machine drifted meanwhile
            again = bench.measure("DirectRunner", "1 (in_memory), again at the end", lambda: no_cluster(IN_MEMORY_FLAGS))

        counts = bench.reference["counts"]
        print(f"Corpus: {described}: {len(corpus)} record{'s' * (len(corpus) != 1)}, {counts['files']['seen']:,} files, "
              f"{counts['bytes']['seen'] / 1e6:.1f} MB seen; {counts['files']['imaged']:,} files, "
              f"{counts['bytes']['imaged'] / 1e6:.1f} MB imaged into {counts['images']:,} images.")
        print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load_before[0]:.2f} at the start and "
              f"{os.getloadavg()[0]:.2f} at the end; {'median of ' + str(args.repeats) + ' runs' if args.repeats > 1 else 'one run'} "
              f"per row. Wall = `pipelines.build_dataset.run([...])` in a fresh process, imports excluded "
              f"(they took {statistics.median(bench.imports):.2f} s a process); files/s counts files seen, MB/s bytes imaged.\n")
        print(table(rows, rows[0].wall, counts, args.fixed_cost))
        print()
        if again is not None and again.wall is not None:
            print(f"DirectRunner in_memory: {rows[0].wall:.2f} s at the start, {again.wall:.2f} s at the end "
                  f"({100 * (again.wall / rows[0].wall - 1):+.0f}%: the machine's drift over the run).")
        if "portable" in runners:
            print("PortableRunner: Beam's local job service runs every stage as one bundle on one SDK worker, "
                  "so it has no 2-worker row.")
        if "flink" in runners or "spark" in runners:
            print("FlinkRunner and SparkRunner ran with " + ("Beam's default --sdk_worker_parallelism 1 (one SDK worker per "
                  "TaskManager or executor)." if args.one_sdk_worker else "--sdk_worker_parallelism equal to the slots or cores."))
        if args.beam_option:
            print(f"Every build ran with {' '.join(args.beam_option)}.")
        print(f"Total time of this benchmark: {time.perf_counter() - began:.0f} s.")
        failed = [row for row in [*rows, again] if row is not None and row.error]
        for row in failed:
            print(f"FAILED: {row.runner}, {row.workers}: {row.error}", file=sys.stderr)
        return 1 if failed else 0
    finally:
        if args.keep:
            print(f"Work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
