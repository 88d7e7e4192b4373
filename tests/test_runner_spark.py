"""The dataset built on a real Spark cluster equals the DirectRunner's.

The cluster is separate processes on 127.0.0.1: a standalone Master and a Worker JVM (Spark 3.5 from the
pyspark sdist's jars), Beam's Spark job server (the jar `zml setup-runner spark` puts into Beam's jar
cache, started by Beam's SparkRunner itself; the Spark driver runs in it, and the Worker starts the
executors), and an EXTERNAL Beam worker pool. The pipeline runs with the standard options only:
--runner SparkRunner --spark_master_url --environment_type --environment_config.
"""

from __future__ import annotations

import pytest

from beam_zml.runners import setup_runner as runners
from beam_zml.testing.dataset_compare import assert_same_dataset
from beam_zml.testing.runner_processes import (
    HOST,
    SPARK_VERSION,
    Processes,
    SparkCluster,
    beam_job_servers,
    free_ports,
    worker_pool,
)
from pipelines import build_dataset


@pytest.fixture(scope="module")
def job_server_jar():
    """What `zml setup-runner spark` does: built on a fresh machine, found in Beam's jar cache after."""
    return runners.ensure_job_server("spark", spark_version=SPARK_VERSION).path


@pytest.fixture
def spark(tmp_path, job_server_jar, monkeypatch):
    """A running cluster and worker pool; everything started here is stopped at the end, process groups and all."""
    # The driver runs in the job server Beam starts with this environment: it binds to and advertises 127.0.0.1.
    monkeypatch.setenv("SPARK_LOCAL_IP", HOST)
    monkeypatch.setenv("SPARK_LOCAL_HOSTNAME", HOST)
    processes = Processes(tmp_path)
    try:
        cluster = SparkCluster(processes, tmp_path, cores=2)
        cluster.start()
        (pool_port,) = free_ports(1)
        worker_pool(processes, pool_port)
        with beam_job_servers(monkeypatch) as job_servers:
            yield {"cluster": cluster, "worker_pool": f"{HOST}:{pool_port}", "job_servers": job_servers}
    finally:
        processes.stop_all()
    assert not processes.left_running(), processes.left_running()


def test_dataset_built_on_spark_equals_direct_runner(tmp_path, cluster_inputs, spark):
    local = ["--local", *map(str, cluster_inputs)]
    direct = str(tmp_path / "direct")
    build_dataset.run([*local, "--output", direct])

    on_spark = str(tmp_path / "spark")
    result = build_dataset.run(
        [*local, "--output", on_spark]
        + ["--runner", "SparkRunner", "--spark_master_url", spark["cluster"].master_url]
        + ["--environment_type", "EXTERNAL", "--environment_config", spark["worker_pool"]]
    )

    assert result.state == "DONE"
    assert_same_dataset(on_spark, direct)
    status = spark["cluster"].status()
    assert status["aliveworkers"] == 1 and [app["state"] for app in status["completedapps"]] == ["FINISHED"], status
    assert len(spark["job_servers"]) == 1  # Beam started its job server from the jar in its cache
    executor_logs = list((tmp_path / "spark-work").glob("app-*/*/stderr"))
    assert executor_logs and not [log for log in executor_logs if "Exception in task" in log.read_text()]  # no retried task
