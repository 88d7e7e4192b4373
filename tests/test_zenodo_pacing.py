"""Pacing for Zenodo's hourly windows as well as its per-minute ones, on a fake clock (issue 11 §6), and one
client per worker process (apache_beam.utils.shared)."""

from __future__ import annotations

import pickle

import pytest

from beam_zml.arguments import ArgumentParser
from beam_zml.sources.zenodo import PACING_MARGIN, Pacer, Window, ZenodoSettings
from beam_zml.testing.zenodo_server import ZenodoServer
from beam_zml.transforms.zenodo_clients import ZenodoClients
from pipelines import options as cli
from tests.test_zenodo_client import FakeTime, make_client


def most_in_any_window(times: list[float], seconds: float) -> int:
    times = sorted(times)
    start, most = 0, 0
    for end, moment in enumerate(times):
        while times[start] <= moment - seconds:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_a_multi_hour_run_stays_within_both_windows():
    clock = FakeTime()
    hourly = Window(2000 * PACING_MARGIN, 3600.0, clock.sleep, clock.clock)
    pacer = Pacer(60 * PACING_MARGIN, clock.sleep, clock.clock, (hourly,))
    sent = []
    for _ in range(5000):  # two and a half hours' worth of a guest's requests
        pacer.wait()
        sent.append(clock.now)

    assert most_in_any_window(sent, 3600.0) <= 2000 * PACING_MARGIN
    assert most_in_any_window(sent, 60.0) <= 60
    assert sent[-1] - sent[0] >= 2 * 3600, "the hourly window, not the minute one, sets the pace of a long run"
    assert sent[1939] - sent[0] < 3600 and sent[1940] - sent[0] >= 3600  # it uses the whole hour's allowance


def test_search_and_record_requests_share_the_hourly_window(fake_time=None):
    fake_time = FakeTime()
    with ZenodoServer() as server:
        server.limits = None
        server.add_record({"id": 2, "conceptrecid": "1", "title": "t", "metadata": {"resource_type": {"type": "software"}}})
        client = make_client(server, fake_time, requests_per_hour=10)  # 9 in any hour, at 97%
        sent = []
        for index in range(20):
            client.search({}) if index % 2 else client.record(2)
            sent.append(fake_time.now)
    assert len(server.log) == 20 and all(entry.status == 200 for entry in server.log)
    assert most_in_any_window(sent, 3600.0) == 9
    assert sent[-1] - sent[0] >= 2 * 3600


def test_hourly_limits_default_to_zenodos_and_are_options():
    assert ZenodoSettings().effective_requests_per_hour == 2000
    assert ZenodoSettings(token="t").effective_requests_per_hour == 5000
    parser = ArgumentParser(prog="test")
    cli.add_zenodo_options(parser)
    assert cli.zenodo_settings(parser.parse_args(["--requests-per-hour", "1200"])).effective_requests_per_hour == 1200


def test_one_client_per_process_whatever_the_number_of_dofn_copies():
    handle = ZenodoClients(ZenodoSettings())
    first, second = pickle.loads(pickle.dumps(handle)), pickle.loads(pickle.dumps(handle))  # two DoFn instances
    client = first.acquire()
    assert second.acquire() is client
    assert ZenodoClients(ZenodoSettings()).acquire() is not client, "another pipeline's handle, another client"
    with pytest.raises(AttributeError):
        client.last_attempts = 3  # per thread, read-only: shared clients serve many threads
