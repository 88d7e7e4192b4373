"""Local code as records: every entry of a folder of repositories, and this Python's standard library.

`zml build --local-each DIR` makes one record of each entry directly inside DIR (a folder,
an archive, or any other file on its own); `zml build --python-stdlib` does the same on the
standard library's folder, keeping what every install of this Python version ships.
"""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig
from typing import Callable, Iterable

from beam_zml.core.names import printable
from beam_zml.core.records import RecordSource, Selection
from beam_zml.sources.repository import Limits, Listing, list_repository

# The names `zml build --local` and the reader take as archives; the reader tells the format from the content.
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")

# Left out of every package of --python-stdlib: compiled caches (written or not at install time) and test
# suites (Debian and Ubuntu ship them in libpython3.X-testsuite, so many installs lack them).
STDLIB_EXCLUDE = ("__pycache__", "*.pyc", "test", "tests", "idle_test")
# Top-level parts of the standard library that not every install has (as Debian and Ubuntu package
# Python 3.10-3.12), or that hold no source code of their own.
STDLIB_LEFT_OUT = {
    "test": "the test suite (libpython3.X-testsuite)",
    "idlelib": "the IDLE editor (idle-python3.X)",
    "tkinter": "Tk bindings (python3-tk)",
    "turtledemo": "Tk demo scripts (python3-examples)",
    "lib2to3": "python3-lib2to3",
    "distutils": "python3-distutils",
    "ensurepip": "pip's bundled wheels, binary (python3.X-venv)",
}


def named_record_id(name: str) -> int:
    """A stable positive id for a record named `name` ("python3.11/asyncio"): the same on every machine."""
    return int.from_bytes(hashlib.sha1(name.encode("utf-8", "surrogateescape")).digest()[:7], "big")


def is_archive_name(name: str) -> bool:
    """True if `name` ends like an archive `zml build` reads (ARCHIVE_SUFFIXES, any case)."""
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def local_each_sources(
    directories: Iterable[str], exclude: tuple[str, ...] = (), keep: Callable[[str], bool] | None = None
) -> list[RecordSource]:
    """One record per entry directly inside each directory, in the order of the names.

    A folder (not a symlink to one) or a file named like an archive (ARCHIVE_SUFFIXES) is
    one repository; any other entry (a loose file, a symlink, a fifo) is a one-file
    repository, so nothing directly inside DIR is lost. Entries whose name matches an
    `exclude` pattern, or that `keep(name)` refuses, are not records; inside each record
    `exclude` applies as in Selection. A record's id is that of "DIRNAME/ENTRY", so the same
    folder gets the same ids (and the same train/validation/test split) wherever it lies.

    Raises ValueError when two entries would get the same id (two DIRs of the same name
    holding an entry of the same name) and OSError when a directory cannot be listed.
    """
    sources: dict[int, RecordSource] = {}
    for directory in directories:
        absolute = os.path.abspath(directory)
        parent = os.path.basename(absolute.rstrip(os.sep)) or absolute
        with os.scandir(absolute) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        for entry in entries:
            if Selection(tuple(exclude)).excludes(entry.name) or (keep is not None and not keep(entry.name)):
                continue
            name = f"{parent}/{entry.name}"
            whole = entry.is_dir(follow_symlinks=False) or (entry.is_file(follow_symlinks=False) and is_archive_name(entry.name))
            selection = Selection(tuple(exclude), only=None if whole else entry.name)
            title = printable(entry.name)  # an OS name that is not UTF-8 is shown escaped, as --local does
            source = RecordSource(named_record_id(name), entry.path, "local", title=title, selection=selection)
            other = sources.setdefault(source.record_id, source)
            if other is not source:
                raise ValueError(f"{other.location} and {entry.path} are both {name}: a record's id comes from that name")
    return list(sources.values())


def python_stdlib() -> str:
    """The folder of this interpreter's standard library (sysconfig's "stdlib" path)."""
    return sysconfig.get_paths()["stdlib"]


def stdlib_sources(stdlib: str | None = None) -> list[RecordSource]:
    """This Python's standard library as records: each top-level package one repository, each top-level module one.

    What is kept is what every install of this Python version has: the entries named in
    sys.stdlib_module_names (so site-packages, lib-dynload, config-*, _sysconfigdata_*,
    __pycache__ and LICENSE.txt are not), less STDLIB_LEFT_OUT, and inside each package
    less STDLIB_EXCLUDE.
    """

    def keep(name: str) -> bool:
        module = name[:-3] if name.endswith(".py") else name
        return module in sys.stdlib_module_names and module not in STDLIB_LEFT_OUT

    return local_each_sources([stdlib or python_stdlib()], STDLIB_EXCLUDE, keep)


def list_selected(
    location: str, limits: Limits, selection: Selection | None, warn: Callable[[str, str], None] | None = None
) -> Listing:
    """The listing of a record's code at `location`, less the entries its Selection leaves out (`warn`: list_repository's)."""
    if selection is None:
        return list_repository(location, limits, warn)
    if selection.only is not None:  # a one-file repository: its folder, listed for that one entry
        return list_repository(os.path.dirname(location), limits, warn, exclude=selection.excludes)
    return list_repository(location, limits, warn, exclude=selection.excludes if selection.exclude else None)
