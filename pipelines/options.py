"""The pipelines' command-line options: ours, parsed with argparse, and Beam's, passed through untouched but checked."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import urllib.parse

from apache_beam.options.pipeline_options import (
    PipelineOptions,
    StandardOptions,
    _BeamArgumentParser,
)
from apache_beam.portability import common_urns
from apache_beam.runners.runner import create_runner

from beam_zml.arguments import (
    OneLineErrors,
    non_negative_int,
    positive_float,
    positive_int,
)
from beam_zml.core.imagify import PIXEL_DTYPES
from beam_zml.core.imaging import ImageSettings
from beam_zml.sources.harvest import SEARCH_CAP, SearchQuery
from beam_zml.sources.repository import Limits
from beam_zml.sources.zenodo import ZenodoSettings

TOKEN_VARIABLE = "ZENODO_ACCESS_TOKEN"

class _BeamOptionsParser(OneLineErrors, _BeamArgumentParser):
    pass


def add_image_options(parser: argparse.ArgumentParser) -> None:
    defaults = ImageSettings()
    group = parser.add_argument_group("images (docs/dataset-format.md#image-rules)")
    group.add_argument("--height", type=positive_int, default=defaults.height, help="lines per image (default: %(default)s)")
    group.add_argument("--width", type=positive_int, default=defaults.width, help="characters per line (default: %(default)s)")
    group.add_argument("--pad", type=non_negative_int, default=defaults.pad, help="pad value (default: %(default)s, a space)")
    group.add_argument("--pixel-dtype", choices=sorted(PIXEL_DTYPES), default=defaults.pixel_dtype, help="(default: %(default)s)")
    group.add_argument(
        "--replacement",
        type=non_negative_int,
        default=defaults.replacement,
        help="uint8 only: value for code points above 255 (default: %(default)s)",
    )
    group.add_argument("--include-binary", action="store_true", help="image binary files too, as zenodo-ml did")


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    defaults = Limits()
    group = parser.add_argument_group("limits")
    group.add_argument(
        "--max-file-bytes", type=positive_int, default=defaults.max_file_bytes, help="largest file imaged (default: %(default)s)"
    )
    group.add_argument(
        "--max-member-bytes",
        type=positive_int,
        default=defaults.max_member_bytes,
        help="bytes read from one archive member before it is cut off as a failure (default: %(default)s)",
    )
    group.add_argument(
        "--max-record-bytes",
        type=positive_int,
        default=defaults.max_record_bytes,
        help="bytes read from one repository before the record fails (default: %(default)s)",
    )
    group.add_argument(
        "--max-members", type=positive_int, default=defaults.max_members, help="files in one repository (default: %(default)s)"
    )


def timestamp(text: str) -> dt.datetime:
    """A date (2019-01-31) or an ISO date-time, taken as UTC unless it says otherwise."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or ISO date-time: {text}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def http_url(text: str) -> str:
    """An http(s) URL with a host, a valid port if any, no space and no user or password in it: where the
    Zenodo or GitHub API is served (a token goes in --zenodo-token-file, never in a URL). The errors show
    the URL without its user and password."""
    shown = re.sub(r"(//)[^/@]*@", r"\1", text)
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018  raises ValueError for a port out of range or not a number
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an http(s) URL ({error}): {shown!r}") from None
    if parts.username is not None or parts.password is not None:
        raise argparse.ArgumentTypeError(f"a user or password in the URL is never sent: {shown!r} (for Zenodo, --zenodo-token-file)")
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {shown!r}")
    return text


def regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as error:
        raise argparse.ArgumentTypeError(f"not a regular expression: {error}") from None
    return text


def add_search_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Zenodo search (README.md#records-from-zenodo)")
    group.add_argument("--query", help="Zenodo search syntax, e.g. 'keywords:\"machine learning\"'")
    group.add_argument("--type", default="software", help="resource type (default: %(default)s)")
    group.add_argument("--since", type=timestamp, help="records created at or after this date")
    group.add_argument("--until", type=timestamp, help="records created before this date")
    group.add_argument("--all-versions", action="store_true", help="every version, not just the latest of each concept")
    group.add_argument("--max-records", type=positive_int, help="stop after this many records")
    group.add_argument(
        "--exclude-pattern", type=regex, help="drop records whose title or repository URL matches (zenodo-ml: gcube)"
    )
    group.add_argument(
        "--search-cap",
        type=positive_int,
        default=SEARCH_CAP,
        help="hits the search API serves for one query; larger queries are sliced by date (default: %(default)s)",
    )


def add_zenodo_options(parser: argparse.ArgumentParser) -> None:
    defaults = ZenodoSettings()
    group = parser.add_argument_group("Zenodo and GitHub access")
    group.add_argument("--zenodo-url", type=http_url, default=defaults.zenodo_url, help="(default: %(default)s; the sandbox, a mirror...)")
    group.add_argument("--github-url", type=http_url, default=defaults.github_url, help="(default: %(default)s)")
    group.add_argument(
        "--zenodo-token-file", type=argparse.FileType("r"), help=f"a file holding the access token (else ${TOKEN_VARIABLE})"
    )
    group.add_argument(
        "--requests-per-minute", type=positive_float, help="record and file requests (default: 100 with a token, else 60)"
    )
    group.add_argument(
        "--search-requests-per-minute", type=positive_float, default=defaults.search_requests_per_minute, help="(default: %(default)s)"
    )
    group.add_argument(
        "--requests-per-hour", type=positive_float,
        help="all Zenodo API requests in any hour, search included (default: 5000 with a token, else 2000)",
    )
    group.add_argument(
        "--zenodo-workers", type=positive_int, default=1, help="workers that share the limits, each taking its part (default: 1)"
    )
    group.add_argument(
        "--max-archive-bytes", type=positive_int, default=defaults.max_archive_bytes, help="largest download (default: %(default)s)"
    )
    group.add_argument(
        "--max-attempts", type=positive_int, default=defaults.max_attempts, help="tries per request (default: %(default)s)"
    )
    group.add_argument(
        "--retry-initial-seconds",
        type=positive_float,
        default=defaults.backoff_initial,
        help="first wait of the jittered exponential backoff (default: %(default)s)",
    )


def zenodo_settings(args: argparse.Namespace) -> ZenodoSettings:
    """Client settings; the token comes from --zenodo-token-file or the environment and is never printed."""
    if args.zenodo_token_file is not None:
        with args.zenodo_token_file as handle:
            token = handle.read().strip() or None
    else:
        token = os.environ.get(TOKEN_VARIABLE) or None
    return ZenodoSettings(
        zenodo_url=args.zenodo_url.rstrip("/"),
        github_url=args.github_url.rstrip("/"),
        token=token,
        requests_per_minute=args.requests_per_minute,
        search_requests_per_minute=args.search_requests_per_minute,
        requests_per_hour=args.requests_per_hour,
        workers=args.zenodo_workers,
        max_archive_bytes=args.max_archive_bytes,
        max_attempts=args.max_attempts,
        backoff_initial=args.retry_initial_seconds,
    )


def search_query(args: argparse.Namespace, parser: argparse.ArgumentParser) -> SearchQuery:
    """The search the options name; the parser's one-line error if --since is not before --until."""
    if args.since is not None and args.until is not None and args.since >= args.until:
        parser.error(f"--since {args.since:%Y-%m-%d %H:%M:%S %Z} is not before --until {args.until:%Y-%m-%d %H:%M:%S %Z}")
    return SearchQuery(
        query=args.query,
        type=args.type or None,
        since=args.since,
        until=args.until,
        all_versions=args.all_versions,
        exclude_pattern=args.exclude_pattern,
    )


def image_settings(args: argparse.Namespace, parser: argparse.ArgumentParser) -> ImageSettings:
    largest = PIXEL_DTYPES[args.pixel_dtype]
    for name in ("pad", "replacement"):
        if getattr(args, name) > largest:
            parser.error(f"--{name} {getattr(args, name)} does not fit --pixel-dtype {args.pixel_dtype} (at most {largest})")
    return ImageSettings(
        height=args.height,
        width=args.width,
        pad=args.pad,
        pixel_dtype=args.pixel_dtype,
        replacement=args.replacement,
        include_binary=args.include_binary,
    )


def limits(args: argparse.Namespace) -> Limits:
    return Limits(
        max_file_bytes=args.max_file_bytes,
        max_member_bytes=args.max_member_bytes,
        max_record_bytes=args.max_record_bytes,
        max_members=args.max_members,
    )


def beam_options(flags: list[str], prog: str) -> PipelineOptions:
    """Beam's options from the flags we did not parse, refusing any that no Beam option class knows."""
    parser = _BeamOptionsParser(prog=prog, allow_abbrev=False)
    _import_optional_runner_options()
    seen = {}
    for cls in PipelineOptions.__subclasses__():  # the registry PipelineOptions.get_all_options parses with
        seen.setdefault(str(cls), cls)
    for cls in seen.values():
        cls._add_argparse_args(parser)
    parsed, unknown = parser.parse_known_args(flags)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    _check_beam_values(parser, parsed)
    options = PipelineOptions(flags)
    standard = options.view_as(StandardOptions)
    if isinstance(standard.runner, str) and standard.runner.lower() in DASK_RUNNER_NAMES:
        standard.runner = DASK_RUNNER  # Beam 2.62 knows no such name, and its own Dask runner mixes up outputs
    elif standard.runner is not None:
        try:
            create_runner(standard.runner)  # how Beam resolves the name when the pipeline is made
        except (ValueError, ImportError, AttributeError) as error:
            parser.error(f"argument --runner: Beam cannot make a runner of {standard.runner!r}: {error}")
    return options


# Beam's options that take numbers, with the values Beam accepts (it checks none of them before the run:
# --direct_num_workers -2 is an IndexError deep in the DirectRunner). Every other number must be >= 0.
_BEAM_NUMBER_RULES = {
    "parallelism": (lambda v: v == -1 or v >= 1, "-1 (the runner's default) or a positive integer"),
    "max_parallelism": (lambda v: v == -1 or v >= 1, "-1 (the runner's default) or a positive integer"),
    "profile_sample_rate": (lambda v: 0 <= v <= 1, "a fraction from 0 to 1"),
    "job_port": (lambda v: 0 <= v <= 65535, "a port number, 0 to 65535"),
    "artifact_port": (lambda v: 0 <= v <= 65535, "a port number, 0 to 65535"),
    "expansion_port": (lambda v: 0 <= v <= 65535, "a port number, 0 to 65535"),
    "job_server_timeout": (lambda v: v > 0, "a positive number of seconds"),
    "dask_connection_limit": (lambda v: v > 0, "a positive integer"),
}
# Beam's options that take numbers as strings (no argparse type), checked the same way.
_BEAM_STRING_NUMBERS = ("sdk_worker_parallelism", "environment_cache_millis")


def _check_beam_values(parser: argparse.ArgumentParser, parsed: argparse.Namespace) -> None:
    """One-line errors for Beam options whose value Beam would only trip over during the run."""
    numeric = {action.dest: action for action in parser._actions if action.type in (int, float)}
    for dest in (*numeric, *_BEAM_STRING_NUMBERS):
        value = getattr(parsed, dest, None)
        if value is None or (dest in numeric and value == parser.get_default(dest)):
            continue
        if dest in _BEAM_STRING_NUMBERS:
            try:
                value = int(value)
            except (TypeError, ValueError):
                parser.error(f"argument --{dest}: not an integer: {value!r}")
        accept, wanted = _BEAM_NUMBER_RULES.get(dest, (lambda v: v >= 0, "zero or more"))
        if not accept(value):
            parser.error(f"argument --{dest}: must be {wanted}, got {value}")
    environment = getattr(parsed, "environment_type", None)
    if environment and not (
        environment == "LOOPBACK" or environment.startswith("beam:env:") or hasattr(common_urns.environments, environment)
    ):  # the names Beam's Environment.from_options accepts
        known = sorted(name for name in ("DOCKER", "PROCESS", "EXTERNAL", "LOOPBACK") if name == "LOOPBACK" or hasattr(common_urns.environments, name))
        parser.error(f"argument --environment_type: {environment!r} is none of {', '.join(known)} (or a beam:env: URN)")


DASK_RUNNER_NAMES = ("dask", "daskrunner")
DASK_RUNNER = "beam_zml.runners.dask_runner.DaskRunner"


def _import_optional_runner_options() -> None:
    """Register the option classes of runners whose extras may be installed (Dask)."""
    try:
        import apache_beam.runners.dask.dask_runner  # noqa: F401
    except ImportError:
        pass
