"""One repository (a directory or a .zip/.tar[.gz|.bz2|.xz] archive) as a flat list of files.

Archives are read member by member and never extracted, so no name in them can
reach the disk (docs/design.md#faults-and-limits). Links and devices are listed but never followed, and
limits on member size, total bytes and member count bound memory and time, so a
zip bomb becomes a recorded failure rather than a crash.

Every entry that is not a directory is one Member, whatever happened to it (docs/dataset-format.md
files): names are decoded as the tool that wrote them meant (`_zip_name`; tar and
directory names are bytes, shown by `beam_zml.core.names.escape_bytes`), `\\`
separators of DOS/Windows zips become `/` before the safety check, two entries that
end at one path are both Members (the last is read as extraction would keep it, the
others are `duplicate_path`), and macOS metadata is `os_metadata`. Only a repository
that cannot be read at all is a RepositoryError.

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
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, replace
from typing import BinaryIO, Callable, Iterator

from beam_zml import storage
from beam_zml.core.names import escape_bytes, printable

_CHUNK = 1 << 20
_ZIP_LOCAL_HEADER = b"PK\x03\x04"  # APPNOTE 4.3.7: every zip member starts with it
_TAR_MAGIC_OFFSET = 257  # "ustar" in the first header of POSIX and GNU tars
_DECOMPRESSORS = (
    (b"\x1f\x8b", lambda f: gzip.GzipFile(fileobj=f, mode="rb")),
    (b"BZh", bz2.BZ2File),
    (b"\xfd7zXZ\x00", lzma.LZMAFile),
)
# Raised by tarfile and the decompressors on corrupt or truncated input.
_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)
# APPNOTE 4.4.2.2 "version made by" hosts whose paths use a backslash (MS-DOS/FAT, OS/2 HPFS, NTFS, VFAT).
_WINDOWS_HOSTS = frozenset({0, 6, 10, 14})
_DOS_DIRECTORY = 0x10  # APPNOTE 4.4.15: the low byte of external_attr holds the MS-DOS attributes
_UTF8_NAMES = 0x800  # APPNOTE 4.4.4 general purpose bit 11: the name is UTF-8
_UNICODE_PATH = 0x7075  # APPNOTE 4.6.9: Info-ZIP Unicode Path Extra Field, a UTF-8 copy of the name
_DRIVE = re.compile(r"[A-Za-z]:")  # C: as the first part of a path: absolute on Windows
_MACOS_FOLDER = "__MACOSX"  # Finder's zips: AppleDouble copies of every file's resource fork
_APPLE_DOUBLE = "._"  # AppleDouble files of macOS tars and of __MACOSX/
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
    """One non-directory entry of a repository, read or with the reason it was not (`skip_reason`).

    `path` is a clean relative POSIX path, or for `unsafe_path` the name as it was;
    `data` is the content if it was kept (at most `Limits.max_file_bytes`); `error`
    is a failure worth an errors/ line.
    """

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


def read_repository(
    location: str,
    limits: Limits = Limits(),
    warn: Callable[[str, str], None] | None = None,
    exclude: Callable[[str], bool] | None = None,
) -> list[Member]:
    """The Members of the directory or archive at `location`, read, sorted by path (duplicates in archive order).

    `list_repository` and `read_entries` in one: holds every kept file in memory, so for large
    repositories use those two. Raises RepositoryError when the repository cannot be read at all.
    """
    listing = list_repository(location, limits, warn, exclude)
    return sorted(read_entries(listing, listing.entries, limits), key=lambda member: member.path)


def list_repository(
    location: str,
    limits: Limits = Limits(),
    warn: Callable[[str, str], None] | None = None,
    exclude: Callable[[str], bool] | None = None,
) -> Listing:
    """Every entry of the directory or archive at `location`, without keeping any file's content.

    Archive paths lose the archive's single top folder (GitHub's OWNER-REPO-sha/); directory
    paths are relative to the directory. `warn(error_type, message)` hears of what went wrong
    with the whole repository without spoiling its entries (bytes after the end of a gzip
    stream). An entry whose path `exclude` accepts is not an input at all: a folder is not
    entered, a file is not listed. The record limits are enforced here: entries
    (`max_members`) and declared bytes (`max_record_bytes`; a tar is decompressed to its end,
    which also proves it whole). Raises RepositoryError if the repository cannot be listed.
    """
    if os.path.isdir(location):
        collector = _Collector(limits)
        _walk_directory(location, collector, exclude)
        return Listing(location, "dir", collector.entries_sorted(strip_top=False))
    if not storage.exists(location):
        raise RepositoryError(f"no such file or directory: {printable(location)}")
    collector = _Collector(limits)
    shown = printable(location)
    try:
        with storage.open_read(location) as f:
            kind, stream, problem = _open_archive(f)
            if kind == "zip":
                _list_zip(f, shown, collector)
            else:
                _list_tar(stream, shown, collector, warn or _ignore, compressed=stream is not f, problem=problem)
    except OSError as error:  # Beam's BeamIOError is one too
        raise RepositoryError(f"cannot read {shown}: {type(error).__name__}: {error}") from error
    entries = collector.entries_sorted(strip_top=True)
    return Listing(location, kind, [e for e in entries if not exclude(e.path)] if exclude is not None else entries)


def _ignore(error_type: str, message: str) -> None:
    """The default `warn`: nobody is listening."""


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
                yield from _read_zip_entries(f, printable(listing.location), to_read, limits)
            else:
                yield from _read_tar_entries(stream, printable(listing.location), to_read, limits, problem)
    except OSError as error:
        raise RepositoryError(f"cannot read {printable(listing.location)}: {type(error).__name__}: {error}") from error


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
        self._entries: list[tuple[Entry, bool]] = []  # each entry, and whether its path is safe (else shown as it was)
        self._dirs: list[str] = []  # only to decide whether there is a single top folder
        self._count = 0
        self._bytes = 0

    def charge(self, n_bytes: int) -> None:
        """Count decompressed bytes against the record limit."""
        self._bytes += n_bytes
        if self._bytes > self.limits.max_record_bytes:
            raise RepositoryError(f"record limit exceeded: more than {self.limits.max_record_bytes} bytes")

    def add(
        self,
        name: str,
        kind: str,
        size: int,
        listed: Callable[[str], Entry] | None = None,
        error: str | None = None,
    ) -> None:
        """Record one entry by its shown name, with "/" separators.

        `kind` is "dir", "file" or a skip reason (then `error`, if any, says what went
        wrong); `listed(path)` makes a file's Entry, only for a safe path that is not OS metadata.
        """
        self._count += 1
        if self._count > self.limits.max_members:
            raise RepositoryError(f"record limit exceeded: more than {self.limits.max_members} members")
        path = safe_path(name)
        if path is None:
            if kind != "dir":  # an unsafe directory holds nothing by itself
                self._entries.append((Entry(name, size, "unsafe_path"), False))
        elif kind == "dir":
            if not _os_metadata(path):
                self._dirs.append(path)
        elif _os_metadata(path):
            self._entries.append((Entry(path, size, "os_metadata"), True))
        elif kind == "file":
            self._entries.append((listed(path), True))
        else:
            self._entries.append((Entry(path, 0, kind, error), True))

    def entries_sorted(self, strip_top: bool) -> list[Entry]:
        """Every entry by path, the top folder removed if asked; of duplicate paths the last is read.

        Unsafe names keep their whole name; OS metadata neither votes on the top folder
        nor counts as a duplicate. The earlier entries of a path are `duplicate_path`.
        """
        voters = [entry.path for entry, safe in self._entries if not (safe and entry.skip_reason == "os_metadata")]
        top = _single_top(voters, self._dirs) if strip_top else None
        entries = []
        for entry, safe in self._entries:
            if safe and top is not None and entry.path.startswith(top + "/"):
                entry = replace(entry, path=entry.path[len(top) + 1 :])
            entries.append((entry, safe and entry.skip_reason != "os_metadata"))
        last = {entry.path: i for i, (entry, extracted) in enumerate(entries) if extracted}
        # A file at a path that other entries use as a folder (`a` beside `a/b.py`) ends at the same path as
        # that folder: it is a duplicate too, and the folder's files are kept.
        folders = {prefix for path in last if "/" in path for prefix in _prefixes(path.rsplit("/", 1)[0])}
        kept = [
            replace(entry, skip_reason="duplicate_path", error=None)
            if extracted and (last[entry.path] != i or entry.path in folders)
            else entry
            for i, (entry, extracted) in enumerate(entries)
        ]
        return sorted(kept, key=lambda entry: entry.path)  # stable: duplicates stay in archive order


def _prefixes(folder: str) -> list[str]:
    """"a/b/c" -> ["a", "a/b", "a/b/c"]: the folders a path inside `folder` goes through."""
    parts = folder.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _os_metadata(path: str) -> bool:
    """Finder's __MACOSX/ folders and the AppleDouble ._name files of macOS archives: not the author's code."""
    parts = path.split("/")
    return _MACOS_FOLDER in parts or (parts[-1].startswith(_APPLE_DOUBLE) and parts[-1] != _APPLE_DOUBLE)


def safe_path(name: str) -> str | None:
    """The name as a clean relative POSIX path, or None if it could point outside the repository.

    Unsafe: absolute (a leading "/", or a drive letter such as "C:"), "..", a NUL byte, or nothing at all.
    """
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if name.startswith("/") or "\0" in name or ".." in parts or not parts or _DRIVE.match(parts[0]):
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
    return Member(path, size, None, None, "read_error", f"{path}: {_describe(error)}")


def _describe(error: Exception) -> str:
    """The error in a few words; an OSError without its file name, which may be thousands of characters long."""
    if isinstance(error, OSError) and error.strerror:
        return f"{type(error).__name__}: [Errno {error.errno}] {error.strerror}"
    return f"{type(error).__name__}: {error}"


def _walk_directory(root: str, collector: _Collector, exclude: Callable[[str], bool] | None) -> None:
    """Walk with an explicit stack (no recursion limit), never following a symlink or entering an excluded folder.

    A folder below `root` that cannot be listed (permission denied, a path longer than
    the system allows) is one `read_error` entry; only an unreadable `root` fails.
    """
    pending = [""]
    while pending:
        relative = pending.pop()
        try:
            with os.scandir(os.path.join(root, relative) if relative else root) as scan:
                for entry in scan:
                    path = f"{relative}/{entry.name}" if relative else entry.name
                    if exclude is not None and exclude(path):
                        continue
                    kind = _local_kind(entry)
                    if kind == "dir":
                        pending.append(path)
                    name = escape_bytes(os.fsencode(path))
                    collector.add(name, kind, 0, functools.partial(_list_local_file, entry, path, collector))
        except OSError as error:
            if not relative:
                raise RepositoryError(f"cannot read directory {printable(root)}: {_describe(error)}") from error
            collector.add(escape_bytes(os.fsencode(relative)), "read_error", 0, error=f"cannot list folder: {_describe(error)}")


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
        return Entry(path, 0, "read_error", f"{path}: {_describe(error)}")
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
    if head.startswith(_ZIP_LOCAL_HEADER):  # a zip's start without its central directory: cut short
        return "tar", _rewound(f, head), "corrupt or truncated zip archive (no central directory)"
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


def _list_tar(
    stream: BinaryIO,
    location: str,
    collector: _Collector,
    warn: Callable[[str, str], None],
    compressed: bool,
    problem: str,
) -> None:
    """List a tar in streaming mode, so non-seekable object-store streams work.

    Names are bytes in a tar: UTF-8 is read as such, other bytes are escaped
    (`escape_bytes`). Every member is charged at its declared size: the stream must be
    decompressed through it even when it is skipped. A compressed stream is read to its
    end because only there do the decompressors notice truncation; bytes after a whole
    gzip stream that are not another gzip member are only a warning, as GNU tar and
    gunzip say "trailing garbage ignored" (bzip2 and xz streams ignore them themselves).
    """
    try:
        with tarfile.open(fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape") as tar:
            for ordinal, info in enumerate(tar):
                collector.charge(info.size)
                name = escape_bytes(info.name.encode("utf-8", "surrogateescape"))
                listed = functools.partial(_archive_entry, name, info.size, ordinal)
                collector.add(name, _tar_kind(info), info.size, listed)
    except _ARCHIVE_ERRORS as error:
        raise RepositoryError(f"{problem}: {location}: {type(error).__name__}: {error}") from error
    try:
        while compressed and (rest := stream.read(_CHUNK)):
            collector.charge(len(rest))
    except gzip.BadGzipFile as error:
        warn(type(error).__name__, f"bytes after the end of the gzip stream ignored: {location}: {error}")
    except _ARCHIVE_ERRORS as error:
        raise RepositoryError(f"{problem}: {location}: {type(error).__name__}: {error}") from error


def _archive_entry(name: str, size: int, ordinal: int, path: str) -> Entry:
    return Entry(path, size, None, name=name, ordinal=ordinal)


def _read_tar_entries(stream: BinaryIO, location: str, entries: list[Entry], limits: Limits, problem: str) -> Iterator[Member]:
    """The members of `entries`, in one pass over the tar stream, stopping after the last one wanted."""
    wanted = {entry.ordinal: entry for entry in entries}
    last = max(wanted)
    try:
        with tarfile.open(fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape") as tar:
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


def _open_zip(f: BinaryIO, location: str) -> tuple[zipfile.ZipFile, list[tuple[zipfile.ZipInfo, str, bool]]]:
    """The zip, and each entry (in central-directory order) with its name and whether that name is undecodable.

    Opened through `_LenientZip`, so that no one entry can fail the whole; each decodable
    entry's `orig_filename` is set as its author meant it, since zipfile checks it against
    the member's own header when the member is opened.
    """
    view = _LenientZip(f)
    try:
        archive = zipfile.ZipFile(view)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as error:
        raise RepositoryError(f"corrupt or truncated archive: {location}: {type(error).__name__}: {error}") from error
    infos = archive.infolist()
    flagged = view.utf8_flags if len(view.utf8_flags) == len(infos) else [False] * len(infos)
    named = []
    for info, utf8 in zip(infos, flagged):
        utf8 = utf8 or bool(info.flag_bits & _UTF8_NAMES)  # zipfile saw the flag if the view did not clear it
        raw = info.orig_filename.encode("utf-8" if info.flag_bits & _UTF8_NAMES else "cp437")
        unicode_path = _unicode_path(info.extra, raw)
        windows = info.create_system in _WINDOWS_HOSTS
        name, undecodable = _zip_name(raw, utf8, windows) if unicode_path is None else _zip_name(unicode_path, True, windows)
        if not undecodable:  # zipfile checks the name in the member's own header, decoded by that header's flag
            info.orig_filename = raw.decode("utf-8" if utf8 else "cp437")
        named.append((info, name, undecodable))
    return archive, named


def _list_zip(f: BinaryIO, location: str, collector: _Collector) -> None:
    """List a zip through its central directory, charging declared sizes (a zip member never reads past its own)."""
    archive, named = _open_zip(f, location)
    with archive:
        if len(named) > collector.limits.max_members:  # fail before listing any member
            raise RepositoryError(f"record limit exceeded: more than {collector.limits.max_members} members")
        for ordinal, (info, name, undecodable) in enumerate(named):
            kind = _zip_kind(info, name)
            if undecodable and kind != "dir":
                collector.add(name, "undecodable_name", info.file_size, error=f"{name}: the name is flagged UTF-8 but is not")
                continue
            if kind == "file":
                collector.charge(info.file_size)
            collector.add(name, kind, info.file_size, functools.partial(_archive_entry, name, info.file_size, ordinal))


def _zip_name(raw: bytes, utf8: bool, windows: bool) -> tuple[str, bool]:
    """A zip entry's name as its author meant it, and whether it could not be decoded.

    UTF-8 when flagged or when it is valid UTF-8 (as Info-ZIP's unzip and libarchive
    read the names that macOS, old Info-ZIP and many Windows tools write unflagged),
    else cp437, the zip default (APPNOTE appendix D). A name flagged UTF-8 that is not
    is shown with its bad bytes escaped. "\\" is the separator of DOS/Windows hosts;
    no UTF-8 or cp437 character but "\\" itself holds its byte.
    """
    if windows:
        raw = raw.replace(b"\\", b"/")
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return (escape_bytes(raw), True) if utf8 else (raw.decode("cp437"), False)


def _unicode_path(extra: bytes, raw: bytes) -> bytes | None:
    """The UTF-8 name of an Info-ZIP Unicode Path extra field (WinZip and Info-ZIP write it), if it is for this name.

    Version 1, then the CRC-32 of the name it stands for (APPNOTE 4.6.9): a field left
    behind by a tool that renamed the entry does not count, as for Info-ZIP's unzip.
    """
    offset = 0
    while offset + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, offset)
        body = extra[offset + 4 : offset + 4 + size]
        if tag == _UNICODE_PATH and len(body) > 5 and body[0] == 1 and body[1:5] == struct.pack("<L", zlib.crc32(raw)):
            return body[5:]
        offset += 4 + size
    return None


class _LenientZip:
    """A zip file as zipfile is given it: its central directory read so that no one entry can fail the whole.

    zipfile decodes a name flagged UTF-8 (APPNOTE 4.4.4, bit 11) as strict UTF-8 while it
    opens the archive, and refuses the archive if one entry needs a "version to extract"
    above the one it knows; so one bad entry would fail them all. In this view the UTF-8
    flag is cleared, so that zipfile decodes every name as cp437, which maps each byte to
    one character and back (the flags are kept in `utf8_flags`, in central-directory
    order, which is zipfile's infolist order), and such a version is lowered to zipfile's
    own: the entry is then read, or is a read_error if its method is unknown.

    The central directory is the one read that starts with its signature and is filled
    exactly by a chain of its headers; any other read is passed through untouched.
    """

    def __init__(self, f: BinaryIO):
        self._f = f
        self.utf8_flags: list[bool] = []

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        if not self.utf8_flags and data.startswith(zipfile.stringCentralDir):
            data = self._lenient(data)
        return data

    def _lenient(self, data: bytes) -> bytes:
        headers = []
        offset = 0
        while data.startswith(zipfile.stringCentralDir, offset) and offset + zipfile.sizeCentralDir <= len(data):
            fields = struct.unpack_from(zipfile.structCentralDir, data, offset)
            headers.append(offset)
            offset += zipfile.sizeCentralDir + sum(fields[12:15])  # lengths of the name, extra field and comment
        if offset != len(data):
            return data  # not the central directory after all
        patched = bytearray(data)
        for header in headers:
            # After the 4-byte signature: version made by (2 bytes), version needed (1 + 1), flags (2).
            patched[header + 6] = min(patched[header + 6], zipfile.MAX_EXTRACT_VERSION)
            (flags,) = struct.unpack_from("<H", patched, header + 8)
            self.utf8_flags.append(bool(flags & _UTF8_NAMES))
            struct.pack_into("<H", patched, header + 8, flags & ~_UTF8_NAMES)
        return bytes(patched)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def seekable(self) -> bool:
        return True


def _zip_kind(info: zipfile.ZipInfo, name: str) -> str:
    """Unix zips keep the file mode in the high 16 bits of external_attr; DOS/Windows ones mark a folder in the low byte.

    A folder's name usually ends in "/", but some Windows tools only set the MS-DOS
    directory attribute (0x10) on an entry without content.
    """
    mode = info.external_attr >> 16
    if name.endswith("/") or stat.S_ISDIR(mode) or (info.external_attr & _DOS_DIRECTORY and info.file_size == 0):
        return "dir"
    if stat.S_IFMT(mode) in (0, stat.S_IFREG):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "special"


def _read_zip_entries(f: BinaryIO, location: str, entries: list[Entry], limits: Limits) -> Iterator[Member]:
    """The members of `entries`, through the central directory; a bad member spoils only itself."""
    archive, named = _open_zip(f, location)
    with archive:
        for entry in entries:
            info = named[entry.ordinal][0]
            try:
                with archive.open(info) as stream:
                    yield _read_member(entry.path, stream, info.file_size, limits, _already_charged)
            except _ZIP_MEMBER_ERRORS as error:
                yield _read_error(entry.path, info.file_size, error)
