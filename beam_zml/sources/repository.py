"""One repository (a directory or a .zip/.tar[.gz|.bz2|.xz] archive) as a flat list of files.

Archives are read member by member and never extracted, so no name in them can
reach the disk (SPEC §6). Links and devices are listed but never followed, and
limits on member size, total bytes and member count bound memory and time, so a
zip bomb becomes a recorded failure rather than a crash.

Reading is in two steps, so that memory stays bounded whatever the repository's size and
one repository can be read by several workers: `list_repository` lists every entry
(names, declared sizes, kinds; no file content is kept), and `read_entries` reads any
subset of the listed entries, one member at a time, lazily. `read_repository` is both.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import hashlib
import io
import lzma
import os
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, replace
from typing import BinaryIO, Callable, Iterator

from beam_zml import storage

_CHUNK = 1 << 20
_TAR_MAGIC_OFFSET = 257  # "ustar" in the first header of POSIX and GNU tars
_DECOMPRESSORS = (
    (b"\x1f\x8b", lambda f: gzip.GzipFile(fileobj=f, mode="rb")),
    (b"BZh", bz2.BZ2File),
    (b"\xfd7zXZ\x00", lzma.LZMAFile),
)
# Raised by tarfile and the decompressors on corrupt or truncated input.
_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)
# Raised while reading one zip member; the central directory, hence the other members, is still good.
_ZIP_MEMBER_ERRORS = (
    zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, OSError, NotImplementedError, RuntimeError,
)


@dataclass(frozen=True)
class Limits:
    """Bounds on what one repository may cost to read."""

    max_file_bytes: int = 100_000  # larger files are listed and hashed but their bytes are not kept
    max_member_bytes: int = 256 * 2**20  # a member bigger than this is cut off: "member_too_large"
    max_record_bytes: int = 4 * 2**30  # decompressed bytes for the whole repository: RepositoryError
    max_members: int = 200_000  # entries of any kind in the repository: RepositoryError


@dataclass(frozen=True)
class Member:
    """One non-directory entry of a repository, read or with the reason it was not."""

    path: str
    size: int
    data: bytes | None
    swhid: str | None
    skip_reason: str | None
    error: str | None = None


class RepositoryError(Exception):
    """The whole repository cannot be read: corrupt/truncated/unknown archive, missing path, a record limit exceeded."""


@dataclass(frozen=True)
class Entry:
    """One listed entry, not read yet: the path it will have, and where its bytes are.

    `skip_reason` None means a regular file that `read_entries` reads; otherwise the entry becomes a
    Member with that reason as is. `name` is its name in the directory or archive (before the top
    folder was removed), `ordinal` its position among the archive's entries (-1 in a directory).
    """

    path: str
    size: int  # declared: stat size, or the archive header's
    skip_reason: str | None
    error: str | None = None
    name: str = ""
    ordinal: int = -1


@dataclass(frozen=True)
class Listing:
    """Every entry of one repository, sorted by path, and how to read them again."""

    location: str
    kind: str  # "dir", "zip" or "tar" (a tar possibly compressed)
    entries: list[Entry]


def read_repository(location: str, limits: Limits = Limits()) -> list[Member]:
    """The files of the directory or archive at `location`, read, sorted by path.

    Archive paths lose the archive's single top folder (GitHub's OWNER-REPO-sha/);
    directory paths are relative to the directory. Holds every kept file in memory:
    for large repositories use `list_repository` and `read_entries`.
    """
    listing = list_repository(location, limits)
    return sorted(read_entries(listing, listing.entries, limits), key=lambda member: member.path)


def list_repository(location: str, limits: Limits = Limits()) -> Listing:
    """Every entry of the directory or archive at `location`, without keeping any file's content.

    The record limits are enforced here: entries (`max_members`) and declared bytes
    (`max_record_bytes`; a tar is decompressed to its end, which also proves it whole).
    Raises RepositoryError if the repository cannot be listed.
    """
    if os.path.isdir(location):
        collector = _Collector(limits)
        _walk_directory(location, collector)
        return Listing(location, "dir", collector.members_sorted(strip_top=False))
    if not storage.exists(location):
        raise RepositoryError(f"no such file or directory: {location}")
    collector = _Collector(limits)
    try:
        with storage.open_read(location) as f:
            kind, stream, problem = _open_archive(f)
            if kind == "zip":
                _list_zip(f, location, collector)
            else:
                _list_tar(stream, location, collector, compressed=stream is not f, problem=problem)
    except OSError as error:  # Beam's BeamIOError is one too
        raise RepositoryError(f"cannot read {location}: {type(error).__name__}: {error}") from error
    return Listing(location, kind, collector.members_sorted(strip_top=True))


def read_entries(listing: Listing, entries: list[Entry], limits: Limits = Limits()) -> Iterator[Member]:
    """The Members of `entries` (some of `listing.entries`), read one at a time, lazily.

    Directory and zip entries come in the order given; tar entries in the archive's order
    (a tar is read as a stream). A file that cannot be read is a Member with reason
    read_error; RepositoryError if the archive itself can no longer be opened.
    """
    to_read = []
    for entry in entries:
        if entry.skip_reason is not None:
            yield Member(entry.path, entry.size, None, None, entry.skip_reason, entry.error)
        else:
            to_read.append(entry)
    if not to_read:
        return
    if listing.kind == "dir":
        for entry in to_read:
            yield _read_local_file(os.path.join(listing.location, entry.name), entry, limits)
        return
    try:
        with storage.open_read(listing.location) as f:
            kind, stream, problem = _open_archive(f)
            if kind == "zip":
                yield from _read_zip_entries(f, listing.location, to_read, limits)
            else:
                yield from _read_tar_entries(stream, listing.location, to_read, limits, problem)
    except OSError as error:
        raise RepositoryError(f"cannot read {listing.location}: {type(error).__name__}: {error}") from error


ENTRY_COST = 1024  # bytes an entry counts for in `split_entries` whatever its size: rows cost too


def split_entries(entries: list[Entry], max_bytes: int, limits: Limits = Limits()) -> list[list[Entry]]:
    """`entries` in consecutive runs of at most `max_bytes` to read each (at least one entry a run; [] if none).

    An entry costs the bytes that reading it reads (its declared size, capped at the member limit;
    nothing if it is not read) plus ENTRY_COST. The runs keep the listing's order, so the same
    listing always splits the same way.
    """
    runs: list[list[Entry]] = []
    cost = max_bytes
    for entry in entries:
        size = ENTRY_COST + (min(entry.size, limits.max_member_bytes + 1) if entry.skip_reason is None else 0)
        if cost + size > max_bytes and (not runs or runs[-1]):
            runs.append([])
            cost = 0
        runs[-1].append(entry)
        cost += size
    return runs


class _Collector:
    """Gathers one repository's entries, checks their paths and enforces the record limits."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self._members: list[Entry] = []
        self._dirs: list[str] = []  # only to decide whether there is a single top folder
        self._count = 0
        self._bytes = 0

    def charge(self, n_bytes: int) -> None:
        """Count decompressed bytes against the record limit."""
        self._bytes += n_bytes
        if self._bytes > self.limits.max_record_bytes:
            raise RepositoryError(f"record limit exceeded: more than {self.limits.max_record_bytes} bytes")

    def add(self, name: str, kind: str, size: int, read: Callable[[str], Entry]) -> None:
        """Record one entry; `kind` is "dir", "file" or a skip reason; `read` lists a safe file (by its clean path)."""
        self._count += 1
        if self._count > self.limits.max_members:
            raise RepositoryError(f"record limit exceeded: more than {self.limits.max_members} members")
        name = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")  # so later stages can write it
        path = safe_path(name)
        if path is None:
            if kind != "dir":
                self._members.append(Entry(name, size, "unsafe_path"))
        elif kind == "dir":
            self._dirs.append(path)
        elif kind == "file":
            self._members.append(read(path))
        else:
            self._members.append(Entry(path, 0, kind))

    def members_sorted(self, strip_top: bool) -> list[Entry]:
        """The entries by path, the top folder removed if asked; of duplicate paths the last one wins."""
        members = self._members
        top = _single_top([m.path for m in members], self._dirs) if strip_top else None
        if top is not None:
            members = [replace(m, path=m.path[len(top) + 1 :]) for m in members]
        by_path = {m.path: m for m in members}
        return [by_path[path] for path in sorted(by_path)]


def safe_path(name: str) -> str | None:
    """The name as a clean relative POSIX path, or None if it could point outside the repository."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if name.startswith("/") or "\0" in name or ".." in parts or not parts:
        return None
    return "/".join(parts)


def _single_top(paths: list[str], dirs: list[str]) -> str | None:
    """The folder that wraps everything (as in GitHub zipballs), if there is one.

    Every entry votes, unsafe ones with their raw name: "../x" or "/x" next to
    "top/a" means there is no single top folder.
    """
    tops = {path.split("/", 1)[0] for path in paths + dirs}
    if len(tops) != 1 or any("/" not in path for path in paths):
        return None
    return tops.pop()


def _read_member(path: str, stream: BinaryIO, declared: int, limits: Limits, charge: Callable[[int], None]) -> Member:
    """Stream one regular file: hash all of it, keep its bytes only if small, stop at the member limit.

    The git blob header needs the size before the content, so the declared size is
    used and checked against what was read.
    """
    if declared > limits.max_member_bytes:
        return _too_large(path, declared, limits)
    sha1 = hashlib.sha1(b"blob %d\0" % declared)
    kept = []
    size = 0
    while chunk := stream.read(min(_CHUNK, limits.max_member_bytes + 1 - size)):
        size += len(chunk)
        charge(len(chunk))
        if size > limits.max_member_bytes:
            return _too_large(path, size, limits)
        sha1.update(chunk)
        if size <= limits.max_file_bytes:
            kept.append(chunk)
    if size != declared:
        return Member(path, size, None, None, "read_error", f"{path}: declared {declared} bytes but read {size}")
    data = b"".join(kept) if size <= limits.max_file_bytes else None
    return Member(path, size, data, "swh:1:cnt:" + sha1.hexdigest(), None)


def _too_large(path: str, size: int, limits: Limits) -> Member:
    message = f"{path}: member larger than {limits.max_member_bytes} bytes"
    return Member(path, size, None, None, "member_too_large", message)


def _read_error(path: str, size: int, error: Exception) -> Member:
    return Member(path, size, None, None, "read_error", f"{path}: {type(error).__name__}: {error}")


def _walk_directory(root: str, collector: _Collector) -> None:
    """Walk with an explicit stack (no recursion limit), never following a symlink."""
    pending = [""]
    while pending:
        relative = pending.pop()
        try:
            with os.scandir(os.path.join(root, relative)) as scan:
                for entry in scan:
                    path = f"{relative}/{entry.name}" if relative else entry.name
                    kind = _local_kind(entry)
                    if kind == "dir":
                        pending.append(path)
                    collector.add(path, kind, 0, functools.partial(_list_local_file, entry, path, collector))
        except OSError as error:
            raise RepositoryError(f"cannot read directory {os.path.join(root, relative)}: {error}") from error


def _local_kind(entry: os.DirEntry) -> str:
    if entry.is_symlink():
        return "symlink"
    if entry.is_dir(follow_symlinks=False):
        return "dir"
    if entry.is_file(follow_symlinks=False):
        return "file"
    return "special"


def _list_local_file(entry: os.DirEntry, name: str, collector: _Collector, path: str) -> Entry:
    try:
        size = entry.stat(follow_symlinks=False).st_size
    except OSError as error:
        return Entry(path, 0, "read_error", f"{path}: {type(error).__name__}: {error}")
    collector.charge(size)
    return Entry(path, size, None, name=name)


def _read_local_file(on_disk: str, entry: Entry, limits: Limits) -> Member:
    try:
        with open(on_disk, "rb", opener=_open_no_follow) as f:
            return _read_member(entry.path, f, entry.size, limits, _already_charged)
    except OSError as error:
        return _read_error(entry.path, 0, error)


def _open_no_follow(path: str, flags: int) -> int:
    """Refuse a file that became a symlink after it was listed."""
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0))


def _open_archive(f: BinaryIO) -> tuple[str, BinaryIO, str]:
    """Tell the format from the content (names lie): ("zip", f, _) or ("tar", the decompressed stream, problem).

    `problem` is what a tar that fails to read is called.
    """
    head = f.read(_TAR_MAGIC_OFFSET + 5)
    for magic, decompress in _DECOMPRESSORS:
        if head.startswith(magic):
            return "tar", decompress(_rewound(f, head)), "corrupt or truncated archive"
    if head[_TAR_MAGIC_OFFSET:] == b"ustar":
        return "tar", _rewound(f, head), "corrupt or truncated archive"
    if f.seekable() and zipfile.is_zipfile(f):  # zip needs seeking: its directory is at the end
        return "zip", f, ""
    # A pre-POSIX tar has no magic at all: only tarfile can tell.
    return "tar", _rewound(f, head), "not an archive (zip or tar)"


def _rewound(f: BinaryIO, head: bytes) -> BinaryIO:
    """The stream from its start again: seek back if possible, else put `head` back in front."""
    if f.seekable():
        f.seek(0)
        return f
    return io.BufferedReader(_Prepended(head, f))


class _Prepended(io.RawIOBase):
    """A non-seekable stream with the bytes already read from it put back in front."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            data, self._head = self._head[: len(buffer)], self._head[len(buffer) :]
        else:
            data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _list_tar(stream: BinaryIO, location: str, collector: _Collector, compressed: bool, problem: str) -> None:
    """List a tar in streaming mode, so non-seekable object-store streams work.

    Every member is charged at its declared size: the stream must be decompressed
    through it even when it is skipped. A compressed stream is read to its end
    because only there do the decompressors notice truncation.
    """
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for ordinal, info in enumerate(tar):
                collector.charge(info.size)
                listed = functools.partial(_archive_entry, info.name, info.size, ordinal)
                collector.add(info.name, _tar_kind(info), info.size, listed)
        while compressed and (rest := stream.read(_CHUNK)):
            collector.charge(len(rest))
    except _ARCHIVE_ERRORS as error:
        raise RepositoryError(f"{problem}: {location}: {type(error).__name__}: {error}") from error


def _archive_entry(name: str, size: int, ordinal: int, path: str) -> Entry:
    return Entry(path, size, None, name=name, ordinal=ordinal)


def _read_tar_entries(stream: BinaryIO, location: str, entries: list[Entry], limits: Limits, problem: str) -> Iterator[Member]:
    """The members of `entries`, in one pass over the tar stream, stopping after the last one wanted."""
    wanted = {entry.ordinal: entry for entry in entries}
    last = max(wanted)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for ordinal, info in enumerate(tar):
                entry = wanted.get(ordinal)
                if entry is not None:
                    yield _read_member(entry.path, tar.extractfile(info), info.size, limits, _already_charged)
                if ordinal == last:
                    return
    except _ARCHIVE_ERRORS as error:
        raise RepositoryError(f"{problem}: {location}: {type(error).__name__}: {error}") from error
    raise RepositoryError(f"{problem}: {location}: it has fewer entries than when it was listed")


def _already_charged(n_bytes: int) -> None:
    """Entries are charged when they are listed, at their declared size."""


def _tar_kind(info: tarfile.TarInfo) -> str:
    if info.isdir():
        return "dir"
    if info.isreg():
        return "file"
    if info.issym():
        return "symlink"
    if info.islnk():
        return "hardlink"
    return "special"


def _zip_archive(f: BinaryIO, location: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(f)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise RepositoryError(f"corrupt or truncated archive: {location}: {type(error).__name__}: {error}") from error


def _list_zip(f: BinaryIO, location: str, collector: _Collector) -> None:
    """List a zip through its central directory, charging declared sizes (a zip member never reads past its own)."""
    with _zip_archive(f, location) as archive:
        infos = archive.infolist()
        if len(infos) > collector.limits.max_members:  # fail before listing any member
            raise RepositoryError(f"record limit exceeded: more than {collector.limits.max_members} members")
        for ordinal, info in enumerate(infos):
            kind = _zip_kind(info)
            if kind == "file":
                collector.charge(info.file_size)
            listed = functools.partial(_archive_entry, info.filename, info.file_size, ordinal)
            collector.add(info.filename, kind, info.file_size, listed)


def _zip_kind(info: zipfile.ZipInfo) -> str:
    """Unix zips keep the file mode in the high 16 bits of external_attr; others have no type there."""
    mode = info.external_attr >> 16
    if info.is_dir() or stat.S_ISDIR(mode):
        return "dir"
    if stat.S_IFMT(mode) in (0, stat.S_IFREG):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "special"


def _read_zip_entries(f: BinaryIO, location: str, entries: list[Entry], limits: Limits) -> Iterator[Member]:
    """The members of `entries`, through the central directory; a bad member spoils only itself."""
    with _zip_archive(f, location) as archive:
        infos = archive.infolist()
        for entry in entries:
            info = infos[entry.ordinal]
            try:
                with archive.open(info) as stream:
                    yield _read_member(entry.path, stream, info.file_size, limits, _already_charged)
            except _ZIP_MEMBER_ERRORS as error:
                yield _read_error(entry.path, info.file_size, error)
