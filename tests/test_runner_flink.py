"""The dataset built on a real Flink cluster equals the DirectRunner's.

The cluster is separate processes on 127.0.0.1: a JobManager and a TaskManager JVM (Flink 1.19 from
apache-flink-libraries' jars), Beam's Flink job server (the jar `zml setup-runner flink` puts into Beam's
jar cache, started by Beam's FlinkRunner itself), and an EXTERNAL Beam worker pool. The pipeline runs with
the standard options only: --runner FlinkRunner --flink_master --flink_version --environment_type
--environment_config.
"""

from __future__ import annotations

import pytest

from beam_zml.runners import setup_runner as runners
from beam_zml.testing.dataset_compare import assert_same_dataset
from beam_zml.testing.runner_processes import (
    HOST,
    FlinkCluster,
    Processes,
    beam_job_servers,
    free_ports,
    worker_pool,
)
from pipelines import build_dataset

FLINK_MINOR = "1.19"


@pytest.fixture(scope="module")
def job_server_jar():
    """What `zml setup-runner flink` does: built on a fresh machine, found in Beam's jar cache after."""
    return runners.ensure_job_server("flink", flink_version=FLINK_MINOR).path


@pytest.fixture
def flink(tmp_path, job_server_jar, monkeypatch):
    """A running cluster and worker pool; everything started here is stopped at the end, process groups and all."""
    processes = Processes(tmp_path)
    try:
        cluster = FlinkCluster(processes, tmp_path, slots=2)
        cluster.start()
        (pool_port,) = free_ports(1)
        worker_pool(processes, pool_port)
        with beam_job_servers(monkeypatch) as job_servers:
            yield {"cluster": cluster, "worker_pool": f"{HOST}:{pool_port}", "job_servers": job_servers}
    finally:
        processes.stop_all()
    assert not processes.left_running(), processes.left_running()


def test_dataset_built_on_flink_equals_direct_runner(tmp_path, cluster_inputs, flink):
    local = ["--local", *map(str, cluster_inputs)]
    direct = str(tmp_path / "direct")
    build_dataset.run([*local, "--output", direct])

    on_flink = str(tmp_path / "flink")
    result = build_dataset.run(
        [*local, "--output", on_flink]
        + ["--runner", "FlinkRunner", "--flink_master", flink["cluster"].master, "--flink_version", FLINK_MINOR]
        + ["--environment_type", "EXTERNAL", "--environment_config", flink["worker_pool"], "--parallelism", "2"]
    )

    assert result.state == "DONE"
    assert_same_dataset(on_flink, direct)
    overview = flink["cluster"].overview()
    assert overview["taskmanagers"] == 1 and overview["jobs-finished"] == 1 and overview["jobs-failed"] == 0, overview
    assert len(flink["job_servers"]) == 1  # Beam started its job server from the jar in its cache
    assert " to FAILED" not in (tmp_path / "jobmanager.flink.log").read_text()  # no task failed and was retried
