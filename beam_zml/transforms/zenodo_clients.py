"""ZenodoClients: one Zenodo client per worker process, shared by every DoFn and thread in it.

Zenodo counts its limits per IP and User-Agent, so the pacing must be per process, not per DoFn instance
(a runner may run several instances of each DoFn in one process, one per thread). Beam's
`apache_beam.utils.shared.Shared` keeps one object per process for every unpickled copy of the same handle,
as Beam's examples/rate_limiter_simple.py does for its rate limiter: a DoFn acquires the client in `setup`.
Pass the same `ZenodoClients` to every transform of a pipeline that talks to Zenodo.
"""

from __future__ import annotations

from apache_beam.utils import shared

from beam_zml.sources.zenodo import ZenodoClient, ZenodoSettings


class ZenodoClients:
    """A picklable handle on the process's `ZenodoClient` for `settings`."""

    def __init__(self, settings: ZenodoSettings):
        self.settings = settings
        self._shared = shared.Shared()

    def acquire(self) -> ZenodoClient:
        """The client of this process, made on first use; keep the reference for as long as it is used."""
        settings = self.settings
        return self._shared.acquire(lambda: ZenodoClient(settings))
