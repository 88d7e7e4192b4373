"""One repository (a directory or a .zip/.tar[.gz|.bz2|.xz] archive) as a flat list of files.

Archives are read member by member and never extracted, so no name in them can
reach the disk (docs/design.md#faults-and-limits). Links and devices are listed but never followed, and
limits on member size, total bytes and member count bound memory and time, so a
zip bomb becomes a recorded failure rather than a crash.
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
from typing import BinaryIO, Callable

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


def read_repository(location: str, limits: Limits = Limits()) -> list[Member]:
    """The files of the directory or archive at `location`, sorted by path.

    Archive paths lose the archive's single top folder (GitHub's OWNER-REPO-sha/);
    directory paths are relative to the directory.
    """
    if os.path.isdir(location):
        collector = _Collector(limits)
        _walk_directory(location, collector)
        return collector.members_sorted(strip_top=False)
    if not storage.exists(location):
        raise RepositoryError(f"no such file or directory: {location}")
    collector = _Collector(limits)
    try:
        with storage.open_read(location) as f:
            _read_archive(f, location, collector)
    except OSError as error:  # Beam's BeamIOError is one too
        raise RepositoryError(f"cannot read {location}: {type(error).__name__}: {error}") from error
    return collector.members_sorted(strip_top=True)


class _Collector:
    """Gathers one repository's entries, checks their paths and enforces the record limits."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self._members: list[Member] = []
        self._dirs: list[str] = []  # only to decide whether there is a single top folder
        self._count = 0
        self._bytes = 0

    def charge(self, n_bytes: int) -> None:
        """Count decompressed bytes against the record limit."""
        self._bytes += n_bytes
        if self._bytes > self.limits.max_record_bytes:
            raise RepositoryError(f"record limit exceeded: more than {self.limits.max_record_bytes} bytes")

    def add(self, name: str, kind: str, size: int, read: Callable[[str], Member]) -> None:
        """Record one entry; `kind` is "dir", "file" or a skip reason; `read` is called only for safe files."""
        self._count += 1
        if self._count > self.limits.max_members:
            raise RepositoryError(f"record limit exceeded: more than {self.limits.max_members} members")
        name = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")  # so later stages can write it
        path = safe_path(name)
        if path is None:
            if kind != "dir":
                self._members.append(Member(name, size, None, None, "unsafe_path"))
        elif kind == "dir":
            self._dirs.append(path)
        elif kind == "file":
            self._members.append(read(path))
        else:
            self._members.append(Member(path, 0, None, None, kind))

    def members_sorted(self, strip_top: bool) -> list[Member]:
        """The members by path, the top folder removed if asked; of duplicate paths the last one wins."""
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
                    collector.add(path, kind, 0, functools.partial(_read_local_file, entry, collector))
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


def _read_local_file(entry: os.DirEntry, collector: _Collector, path: str) -> Member:
    try:
        declared = entry.stat(follow_symlinks=False).st_size
        with open(entry.path, "rb", opener=_open_no_follow) as f:
            return _read_member(path, f, declared, collector.limits, collector.charge)
    except OSError as error:
        return _read_error(path, 0, error)


def _open_no_follow(path: str, flags: int) -> int:
    """Refuse a file that became a symlink after it was listed."""
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0))


def _read_archive(f: BinaryIO, location: str, collector: _Collector) -> None:
    """Tell the format from the content (names lie), then read the archive."""
    head = f.read(_TAR_MAGIC_OFFSET + 5)
    for magic, decompress in _DECOMPRESSORS:
        if head.startswith(magic):
            return _read_tar(decompress(_rewound(f, head)), location, collector, compressed=True)
    if head[_TAR_MAGIC_OFFSET:] == b"ustar":
        return _read_tar(_rewound(f, head), location, collector, compressed=False)
    if f.seekable() and zipfile.is_zipfile(f):  # zip needs seeking: its directory is at the end
        return _read_zip(f, location, collector)
    # A pre-POSIX tar has no magic at all: only tarfile can tell.
    return _read_tar(_rewound(f, head), location, collector, compressed=False, problem="not an archive (zip or tar)")


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


def _read_tar(
    stream: BinaryIO,
    location: str,
    collector: _Collector,
    compressed: bool,
    problem: str = "corrupt or truncated archive",
) -> None:
    """Read a tar in streaming mode, so non-seekable object-store streams work.

    Every member is charged at its declared size: the stream must be decompressed
    through it even when it is skipped. A compressed stream is read to its end
    because only there do the decompressors notice truncation.
    """
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for info in tar:
                collector.charge(info.size)
                read = functools.partial(_read_tar_member, tar, info, collector.limits)
                collector.add(info.name, _tar_kind(info), info.size, read)
        while compressed and (rest := stream.read(_CHUNK)):
            collector.charge(len(rest))
    except _ARCHIVE_ERRORS as error:
        raise RepositoryError(f"{problem}: {location}: {type(error).__name__}: {error}") from error


def _read_tar_member(tar: tarfile.TarFile, info: tarfile.TarInfo, limits: Limits, path: str) -> Member:
    return _read_member(path, tar.extractfile(info), info.size, limits, _already_charged)


def _already_charged(n_bytes: int) -> None:
    """Tar members are charged before they are read."""


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


def _read_zip(f: BinaryIO, location: str, collector: _Collector) -> None:
    """Read a zip through its central directory; a bad member spoils only itself."""
    try:
        archive = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise RepositoryError(f"corrupt or truncated archive: {location}: {type(error).__name__}: {error}") from error
    with archive:
        infos = archive.infolist()
        if len(infos) > collector.limits.max_members:  # fail before reading any member
            raise RepositoryError(f"record limit exceeded: more than {collector.limits.max_members} members")
        for info in infos:
            read = functools.partial(_read_zip_member, archive, info, collector)
            collector.add(info.filename, _zip_kind(info), info.file_size, read)


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


def _read_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, collector: _Collector, path: str) -> Member:
    try:
        with archive.open(info) as stream:
            return _read_member(path, stream, info.file_size, collector.limits, collector.charge)
    except _ZIP_MEMBER_ERRORS as error:
        return _read_error(path, info.file_size, error)
