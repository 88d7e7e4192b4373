"""A polite, robust client for Zenodo's REST API and GitHub's release archives.

The rules: README.md#records-from-zenodo, docs/design.md#faults-and-limits, https://developers.zenodo.org.

No Beam here: the pipeline makes one `ZenodoClient` per worker in `DoFn.setup` from picklable `ZenodoSettings`.
The client paces itself below Zenodo's published limits (its share of them when there are several workers),
does what 429 answers and rate-limit headers say, retries transient failures with jittered exponential
backoff a bounded number of times, and keeps the access token in the Authorization header of requests to
Zenodo's API only: never in a URL, never sent to GitHub, never in an error message or a repr.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import quote, urlsplit

import requests
import tenacity
from requests.adapters import HTTPAdapter

from beam_zml import __version__

USER_AGENT = f"beam_zml/{__version__}"  # Zenodo counts limits per IP and User-Agent, and throttles generic agents
# The JSON shape the client asks for, explicitly, so that a change of the server's default cannot switch it
# silently: InvenioRDM's, which Zenodo's export also holds (beam_zml.core.records reads both shapes).
JSON_SHAPE = "application/vnd.inveniordm.v1+json"
TRANSIENT_EXCEPTIONS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
CHUNK_BYTES = 1 << 20
# Pace at 97% of a limit: exactly at it, workers that each keep their share still fill the server's
# window now and then (earned 429s), and a single worker waits on the rounded X-RateLimit-Reset once
# a window (benchmarks/bench_zenodo.py: 97% of the limit and no 429 with the margin, 91% without).
PACING_MARGIN = 0.97


@dataclass(frozen=True)
class ZenodoSettings:
    """Everything a worker needs to build its client; numbers default to ZENODO.md's documented values."""

    zenodo_url: str = "https://zenodo.org"
    github_url: str = "https://github.com"
    token: str | None = field(default=None, repr=False)  # never printed
    requests_per_minute: float | None = None  # None: 100 with a token, else 60
    search_requests_per_minute: float = 30
    requests_per_hour: float | None = None  # all of Zenodo's API together; None: 5,000 with a token, else 2,000
    workers: int = 1  # the limits are divided across this many workers
    max_attempts: int = 6
    backoff_initial: float = 1.0  # seconds; jittered exponential
    backoff_max: float = 60.0
    timeout: float = 60.0
    max_archive_bytes: int = 2 * 2**30
    page_size: int | None = None  # None: 100 with a token, else 25

    def __post_init__(self):
        if self.workers < 1 or self.max_attempts < 1:
            raise ValueError("workers and max_attempts must be at least 1")

    @property
    def effective_requests_per_minute(self) -> float:
        if self.requests_per_minute is not None:
            return self.requests_per_minute
        return 100 if self.token else 60

    @property
    def effective_requests_per_hour(self) -> float:
        if self.requests_per_hour is not None:
            return self.requests_per_hour
        return 5000 if self.token else 2000

    @property
    def effective_page_size(self) -> int:
        if self.page_size is not None:
            return self.page_size
        return 100 if self.token else 25


class ZenodoError(Exception):
    """A request that failed for good. `url` and the message never hold the token."""

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None,
                 attempts: int = 1, transient: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.url = url
        self.attempts = attempts
        self.transient = transient  # worth another attempt
        self.retry_after = retry_after  # seconds the server asked us to wait before that attempt


class RecordGone(ZenodoError):
    """404 or 410: the record (or file, or tag) is not there, and asking again will not bring it back."""


class Window:
    """At most `limit` requests in any `seconds`-long moving window, as Zenodo counts its hourly limits.

    Several pacers may share one window (Zenodo's hourly limit covers search and record requests together).
    """

    def __init__(self, limit: float, seconds: float, sleep: Callable[[float], None], clock: Callable[[], float]):
        self.limit = max(1, int(limit))
        self.seconds = seconds
        self._sleep = sleep
        self._clock = clock
        self._sent: collections.deque[float] = collections.deque()  # clock times of the requests in the window
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until one more request fits in the window, and count it."""
        with self._lock:
            while True:
                now = self._clock()
                while self._sent and self._sent[0] <= now - self.seconds:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    break
                free_at = self._sent[len(self._sent) - self.limit] + self.seconds
                self._sleep(max(free_at - now, 0.001))  # at least a millisecond, whatever the clock's rounding
            self._sent.append(now)


class Pacer:
    """Spaces requests at least 60/rate seconds apart, keeps them within any hourly `windows`, and holds them
    while the server has asked us to wait.

    Even spacing with no burst never exceeds a moving-window limit of the same rate, which is how Zenodo counts.
    """

    def __init__(self, per_minute: float | None, sleep: Callable[[float], None], clock: Callable[[], float],
                 windows: tuple[Window, ...] = ()):
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._sleep = sleep
        self._clock = clock
        self._windows = windows
        self._next = float("-inf")  # clock time of the earliest next request
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next request may go, and book the slot after it."""
        with self._lock:
            now = self._clock()
            if self._next > now:
                self._sleep(self._next - now)
                now = self._next
            for window in self._windows:
                window.wait()
                now = max(now, self._clock())
            self._next = now + self.interval

    def hold(self, seconds: float) -> None:
        """Let no request go for `seconds` from now."""
        with self._lock:
            self._next = max(self._next, self._clock() + seconds)


class ZenodoClient:
    """Search, read records and download files from Zenodo, and download release archives from GitHub."""

    def __init__(self, settings: ZenodoSettings, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.page_size = settings.effective_page_size  # what search() asks for; callers page with it
        self._attempts = threading.local()  # one client serves every thread of a worker process
        self._zenodo_api = settings.zenodo_url.rstrip("/") + "/api/"
        self._sleep = sleep
        share = PACING_MARGIN / settings.workers
        hourly = (Window(settings.effective_requests_per_hour * share, 3600.0, sleep, clock),)
        self._search_pacer = Pacer(settings.search_requests_per_minute * share, sleep, clock, hourly)
        self._zenodo_pacer = Pacer(settings.effective_requests_per_minute * share, sleep, clock, hourly)
        self._other_pacer = Pacer(None, sleep, clock)  # GitHub: no Zenodo limit, but 429s still hold it
        self._backoff = tenacity.wait_exponential_jitter(
            multiplier=settings.backoff_initial, max=settings.backoff_max, jitter=settings.backoff_initial)
        self._session = requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=8, max_retries=0)  # tenacity does the retrying
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    @property
    def last_attempts(self) -> int:
        """The attempts the calling thread's last request took."""
        return getattr(self._attempts, "count", 0)

    def __enter__(self) -> ZenodoClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # --- the API ------------------------------------------------------------------------------------------------

    def search(self, params: dict) -> dict:
        """One page of `GET /api/records` (the envelope), at our page size unless `params` sets one."""
        url = self._zenodo_api + "records"
        params = {"size": self.page_size, **params}
        return self._retrying(lambda: self._get_json(url, params, self._search_pacer))

    def record(self, record_id: int | str) -> dict:
        """`GET /api/records/{id}`; a concept id redirects to its latest version."""
        url = self._zenodo_api + "records/" + quote(str(record_id), safe="")
        return self._retrying(lambda: self._get_json(url, None, self._zenodo_pacer))

    def download(self, url: str, destination: str, *, md5: str | None = None) -> int:
        """Stream `url` into `destination` (whole or not at all); `md5` may be bare hex or Zenodo's "md5:<hex>".

        Returns the bytes written. A body cut short or failing its md5 is fetched again; one over
        `max_archive_bytes` is not.
        """
        expected = md5.removeprefix("md5:").lower() if md5 else None
        return self._retrying(lambda: self._download_once(url, destination, expected))

    # --- one attempt ------------------------------------------------------------------------------------------------

    def _get_json(self, url: str, params: dict | None, pacer: Pacer) -> dict:
        with self._get(url, params, pacer, stream=False, accept=JSON_SHAPE) as response:
            try:
                return response.json()
            except ValueError:
                raise ZenodoError(f"HTTP {response.status_code} from {url} is not JSON: {_snippet(response)}",
                                  status=response.status_code, url=url, transient=True) from None

    def _download_once(self, url: str, destination: str, expected_md5: str | None) -> int:
        """One try, into a hidden temporary file beside `destination`, so a failure never looks like a download."""
        limit = self.settings.max_archive_bytes
        directory, name = os.path.split(os.path.abspath(destination))
        handle, partial = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
        try:
            with os.fdopen(handle, "wb") as out, self._get(url, None, self._pacer_for(url), stream=True) as response:
                digest, size = hashlib.md5(), 0
                with _classified(url):  # a body cut short shows up here, as urllib3 checks Content-Length
                    for chunk in response.iter_content(CHUNK_BYTES):
                        size += len(chunk)
                        if size > limit:
                            raise ZenodoError(f"archive larger than {limit} bytes", status=response.status_code, url=url)
                        out.write(chunk)
                        digest.update(chunk)
            if expected_md5 and digest.hexdigest() != expected_md5:
                raise ZenodoError(f"md5 mismatch for {url}: expected {expected_md5}, got {digest.hexdigest()}",
                                  url=url, transient=True)
            os.replace(partial, destination)
            return size
        except BaseException:
            os.unlink(partial)
            raise

    def _get(self, url: str, params: dict | None, pacer: Pacer, *, stream: bool, accept: str | None = None) -> requests.Response:
        """One paced GET that either returns a 2xx response or raises a classified ZenodoError."""
        pacer.wait()
        headers = self._headers(url) | ({"Accept": accept} if accept else {})
        with _classified(url):
            response = self._session.get(url, params=params, headers=headers,
                                         timeout=self.settings.timeout, stream=stream)
        retry_after = self._obey_rate_headers(response, pacer)
        if response.ok:
            return response
        with response:
            message = f"HTTP {response.status_code} from {url}: {_snippet(response)}"
        status = response.status_code
        if status in (404, 410):
            raise RecordGone(message, status=status, url=url)
        raise ZenodoError(message, status=status, url=url,
                          transient=status == 429 or status >= 500, retry_after=retry_after)

    # --- rules ------------------------------------------------------------------------------------------------------

    def _headers(self, url: str) -> dict[str, str]:
        """The token goes only to Zenodo's API, as a header (a query parameter would leak into logs)."""
        if not url.startswith(self._zenodo_api):
            return {}
        return {"Authorization": f"Bearer {self.settings.token}"} if self.settings.token else {}

    def _pacer_for(self, url: str) -> Pacer:
        return self._zenodo_pacer if url.startswith(self._zenodo_api) else self._other_pacer

    def _obey_rate_headers(self, response: requests.Response, pacer: Pacer) -> float | None:
        """Hold the pacer as the server asks: Retry-After, else X-RateLimit-Reset on a 429 or at Remaining 0.

        Returns the wait a 429 asked for, if it said.
        """
        headers = response.headers
        wait = None
        if response.status_code == 429:
            wait = _seconds(headers.get("Retry-After"))
        if wait is None and (response.status_code == 429 or headers.get("X-RateLimit-Remaining") == "0"):
            reset = _seconds(headers.get("X-RateLimit-Reset"))
            wait = max(0.0, reset - time.time()) if reset is not None else None
        if wait is not None:
            pacer.hold(wait)
        return wait if response.status_code == 429 else None

    def _retrying(self, attempt: Callable[[], object]):
        """Run `attempt` until it succeeds, fails for good, or max_attempts is spent; errors carry the count."""
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.settings.max_attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception(lambda error: getattr(error, "transient", False)),
            before=lambda state: setattr(self._attempts, "count", state.attempt_number),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except ZenodoError as error:
            error.attempts = self.last_attempts
            self._redact(error)
            raise

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """What a 429 asked for, else jittered exponential backoff."""
        retry_after = state.outcome.exception().retry_after
        return retry_after if retry_after is not None else self._backoff(state)

    def _redact(self, error: ZenodoError) -> None:
        """Cut the token out of the error's message, should a server ever echo it back."""
        token = self.settings.token
        if token and token in str(error):
            error.args = (str(error).replace(token, "***"),)


@contextlib.contextmanager
def _classified(url: str):
    """Turn requests' exceptions into ZenodoErrors: resets, timeouts and cut bodies are worth another try."""
    try:
        yield
    except requests.RequestException as error:
        transient = isinstance(error, TRANSIENT_EXCEPTIONS)
        raise ZenodoError(_describe(error, url), url=url, transient=transient) from error


def _describe(error: requests.RequestException, url: str) -> str:
    """One readable line: "cannot reach http://host:port: [Errno 111] Connection refused" for a connection
    that never opened (refused, no route, unknown host), else the exception's type, the url and its text."""
    text = str(error)
    if isinstance(error, requests.ConnectionError) and not isinstance(error, requests.Timeout):
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
        if "Failed to resolve " in text:
            return f"cannot reach {origin}: its host name does not resolve"
        marker = "Failed to establish a new connection: "
        if marker in text:
            return f"cannot reach {origin}: {text.split(marker, 1)[1].rstrip(chr(34) + chr(39) + ') ')}"
    return f"{type(error).__name__} for {url}: {text}"


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP-date Retry-After: fall back to the other rules


def _snippet(response: requests.Response, limit: int = 160) -> str:
    """A short, readable excerpt of an error body: JSON's message, or the text of an HTML or plain page."""
    try:
        text = response.text
    except requests.RequestException:
        return "(body unreadable)"
    try:
        payload = response.json()
        if isinstance(payload, dict) and payload.get("message"):
            text = str(payload["message"])
    except ValueError:
        text = re.sub(r"<[^>]+>", " ", text)
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "") if text else "(empty body)"
