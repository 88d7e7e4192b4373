"""The dataset built on a real Dask cluster equals the DirectRunner's, image for image.

The cluster is separate processes on 127.0.0.1: a `dask scheduler` and two `dask worker` processes of one
thread each (each under its nanny), started with `python -m distributed.cli.*` from this environment. The
pipeline runs with `--runner DaskRunner --dask_client_address HOST:PORT` and nothing else. The inputs are
seven records (directories, a zip, a tar.gz, a tar of unsafe members and a corrupt zip that fails) of a few
hundred files, which Beam's Dask translation spreads over several partitions, so both workers run bundles.

The contract is strict: every record, file row, error row and image exactly once, the same counters as the
DirectRunner's, nothing in the output but what dataset.json lists, and no process left running.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from beam_zml.testing.dataset_compare import assert_same_dataset
from beam_zml.testing.runner_processes import Processes, start_dask_cluster
from pipelines import build_dataset
from tests.conftest import runner_inputs

WORKERS = 2


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[Path]:
    return runner_inputs(tmp_path_factory.mktemp("inputs"))


@pytest.fixture
def dask_cluster(tmp_path):
    """A scheduler and two single-thread worker processes on 127.0.0.1; all of them stopped at the end."""
    processes = Processes(tmp_path)
    try:
        address = start_dask_cluster(processes, tmp_path, WORKERS)
        yield {"address": address}
    finally:
        processes.stop_all()
    assert not processes.left_running(), processes.left_running()


def test_dataset_built_on_dask_equals_direct_runner(tmp_path, inputs, dask_cluster):
    import distributed

    local = ["--local", *map(str, inputs)]
    direct = str(tmp_path / "direct")
    direct_result = build_dataset.run([*local, "--output", direct])

    on_dask = str(tmp_path / "dask")
    result = build_dataset.run(
        [*local, "--output", on_dask, "--runner", "DaskRunner", "--dask_client_address", dask_cluster["address"]]
    )

    assert result.state == "DONE"
    assert_same_dataset(on_dask, direct)  # every record, file row and image once; only what dataset.json lists
    counters = build_dataset.counter_totals(result)
    assert counters == build_dataset.counter_totals(direct_result)  # each element processed once, none twice
    assert counters["records_failed"] == 1 and counters["images"] > 300, counters
    with distributed.Client(dask_cluster["address"], timeout=60, set_as_default=False) as probe:
        tasks = probe.run(lambda dask_worker: dask_worker.state.executed_count)  # a lambda: pickled by value
    assert len(tasks) == WORKERS and all(count > 0 for count in tasks.values()), tasks  # both workers ran bundles
