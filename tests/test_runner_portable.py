"""The dataset built through Beam's portable runner equals the DirectRunner's, image for image.

Two separate processes on 127.0.0.1: Beam's local job service (`python -m
apache_beam.runners.portability.local_job_service_main`, which runs the job with the Fn API runner and
reports its port in a file) and an EXTERNAL worker pool (`python -m
apache_beam.runners.worker.worker_pool_main`), which starts the SDK worker process that runs every bundle.
So the job crosses the Job API and the Fn API over gRPC, and every element crosses process boundaries
through its coder. The pipeline runs with the standard options only: --runner PortableRunner
--job_endpoint --environment_type EXTERNAL --environment_config.

Beam's local job service runs each stage as one bundle on one SDK worker (its Fn API runner ignores
--direct_num_workers), so here it is the Dask test that has bundles split over worker processes.
"""

from __future__ import annotations

import sys

import pytest

from beam_zml.testing.dataset_compare import assert_same_dataset
from beam_zml.testing.runner_processes import (
    HOST,
    Processes,
    free_ports,
    wait_listening,
    wait_until,
    worker_pool,
)
from pipelines import build_dataset
from tests.conftest import runner_inputs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return runner_inputs(tmp_path_factory.mktemp("inputs"))


@pytest.fixture
def portable(tmp_path):
    """A job service and a worker pool on 127.0.0.1; both stopped at the end, process groups and all."""
    processes = Processes(tmp_path)
    try:
        port_file = tmp_path / "job-service.port"  # written (whole, by rename) once the server listens
        job_service = processes.start(
            "job-service",
            [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main", "--port", "0"]
            + ["--port_file", str(port_file), "--staging_dir", str(tmp_path / "staging")],
            cwd=str(tmp_path),
        )
        job_port = int(
            wait_until(lambda: port_file.exists() and port_file.read_text().strip(), 120, "its port file", job_service)
        )
        wait_listening(job_service, job_port, timeout=60)
        (pool_port,) = free_ports(1)  # the worker pool cannot report a port of its choosing
        pool = worker_pool(processes, pool_port)
        yield {"job_endpoint": f"{HOST}:{job_port}", "worker_pool": f"{HOST}:{pool_port}", "pool": pool}
    finally:
        processes.stop_all()
    assert not processes.left_running(), processes.left_running()


def test_dataset_built_on_portable_runner_equals_direct_runner(tmp_path, inputs, portable):
    local = ["--local", *map(str, inputs)]
    direct = str(tmp_path / "direct")
    direct_result = build_dataset.run([*local, "--output", direct])

    on_portable = str(tmp_path / "portable")
    result = build_dataset.run(
        [*local, "--output", on_portable, "--runner", "PortableRunner", "--job_endpoint", portable["job_endpoint"]]
        + ["--environment_type", "EXTERNAL", "--environment_config", portable["worker_pool"]]
    )

    assert result.state == "DONE"
    assert_same_dataset(on_portable, direct)  # every record, file row and image once; only what dataset.json lists
    counters = build_dataset.counter_totals(result)
    assert counters == build_dataset.counter_totals(direct_result)
    assert counters["records_failed"] == 1 and counters["images"] > 300, counters
    assert "Starting worker with command" in portable["pool"].log.read_text()  # the bundles ran in the pool's worker
