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
from typing import BinaryIO, Callable

from beam_zml import storage
from beam_zml.core.names import escape_bytes, printable

_CHUNK = 1 << 20
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


def read_repository(
    location: str,
    limits: Limits = Limits(),
    warn: Callable[[str, str], None] | None = None,
    exclude: Callable[[str], bool] | None = None,
) -> list[Member]:
    """The Members of the directory or archive at `location`, sorted by path (duplicates in archive order).

    Archive paths lose the archive's single top folder (GitHub's OWNER-REPO-sha/);
    directory paths are relative to the directory. `warn(error_type, message)` hears of
    what went wrong with the whole repository without spoiling its members (bytes after
    the end of a gzip stream). An entry whose path `exclude` accepts is not an input at
    all: a folder is not entered, a file gets no Member. Raises RepositoryError when the
    repository cannot be read at all.
    """
    if os.path.isdir(location):
        collector = _Collector(limits)
        _walk_directory(location, collector, exclude)
        return collector.members_sorted(strip_top=False)
    if not storage.exists(location):
        raise RepositoryError(f"no such file or directory: {printable(location)}")
    collector = _Collector(limits)
    try:
        with storage.open_read(location) as f:
            _read_archive(f, printable(location), collector, warn or _ignore)
    except OSError as error:  # Beam's BeamIOError is one too
        raise RepositoryError(f"cannot read {printable(location)}: {type(error).__name__}: {error}") from error
    members = collector.members_sorted(strip_top=True)
    return [m for m in members if not exclude(m.path)] if exclude is not None else members


def _ignore(error_type: str, message: str) -> None:
    """The default `warn`: nobody is listening."""


@dataclass(frozen=True)
class _Entry:
    """One entry as met: its Member, and whether its path is a safe one (else it is shown as it was)."""

    member: Member
    safe: bool


class _Collector:
    """Gathers one repository's entries, checks their paths and enforces the record limits."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self._entries: list[_Entry] = []
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
        read: Callable[[str], Member] | None = None,
        error: str | None = None,
    ) -> None:
        """Record one entry by its shown name, with "/" separators.

        `kind` is "dir", "file" or a skip reason (then `error`, if any, says what went
        wrong); `read(path)` reads a file, and is called at once (a tar stream moves on)
        but only for a safe path that is not OS metadata.
        """
        self._count += 1
        if self._count > self.limits.max_members:
            raise RepositoryError(f"record limit exceeded: more than {self.limits.max_members} members")
        path = safe_path(name)
        if path is None:
            if kind != "dir":  # an unsafe directory holds nothing by itself
                self._entries.append(_Entry(Member(name, size, None, None, "unsafe_path"), safe=False))
        elif kind == "dir":
            if not _os_metadata(path):
                self._dirs.append(path)
        elif _os_metadata(path):
            self._entries.append(_Entry(Member(path, size, None, None, "os_metadata"), safe=True))
        elif kind == "file":
            self._entries.append(_Entry(read(path), safe=True))
        else:
            self._entries.append(_Entry(Member(path, 0, None, None, kind, error), safe=True))

    def members_sorted(self, strip_top: bool) -> list[Member]:
        """Every entry's Member by path, the top folder removed if asked; of duplicate paths the last is kept.

        Unsafe names keep their whole name; OS metadata neither votes on the top folder
        nor counts as a duplicate.
        """
        voters = [e.member.path for e in self._entries if not (e.safe and e.member.skip_reason == "os_metadata")]
        top = _single_top(voters, self._dirs) if strip_top else None
        members = []
        for entry in self._entries:
            member = entry.member
            if entry.safe and top is not None and member.path.startswith(top + "/"):
                member = replace(member, path=member.path[len(top) + 1 :])
            members.append((member, entry.safe and member.skip_reason != "os_metadata"))
        last = {member.path: i for i, (member, extracted) in enumerate(members) if extracted}
        kept = [
            _duplicate(member) if extracted and last[member.path] != i else member
            for i, (member, extracted) in enumerate(members)
        ]
        return sorted(kept, key=lambda member: member.path)  # stable: duplicates stay in archive order


def _duplicate(member: Member) -> Member:
    """A member that a later one of the same path replaces on extraction: listed, never imaged."""
    return Member(member.path, member.size, None, member.swhid, "duplicate_path")


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
    the system allows) is one `read_error` Member; only an unreadable `root` fails.
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
                    collector.add(name, kind, 0, functools.partial(_read_local_file, entry, collector))
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


def _read_archive(f: BinaryIO, location: str, collector: _Collector, warn: Callable[[str, str], None]) -> None:
    """Tell the format from the content (names lie), then read the archive."""
    head = f.read(_TAR_MAGIC_OFFSET + 5)
    for magic, decompress in _DECOMPRESSORS:
        if head.startswith(magic):
            return _read_tar(decompress(_rewound(f, head)), location, collector, warn, compressed=True)
    if head[_TAR_MAGIC_OFFSET:] == b"ustar":
        return _read_tar(_rewound(f, head), location, collector, warn, compressed=False)
    if f.seekable() and zipfile.is_zipfile(f):  # zip needs seeking: its directory is at the end
        return _read_zip(f, location, collector)
    # A pre-POSIX tar has no magic at all: only tarfile can tell.
    problem = "not an archive (zip or tar)"
    return _read_tar(_rewound(f, head), location, collector, warn, compressed=False, problem=problem)


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
    warn: Callable[[str, str], None],
    compressed: bool,
    problem: str = "corrupt or truncated archive",
) -> None:
    """Read a tar in streaming mode, so non-seekable object-store streams work.

    Names are bytes in a tar: UTF-8 is read as such, other bytes are escaped
    (`escape_bytes`). Every member is charged at its declared size: the stream must be
    decompressed through it even when it is skipped. A compressed stream is read to its
    end because only there do the decompressors notice truncation; bytes after a whole
    gzip stream that are not another gzip member are only a warning, as GNU tar and
    gunzip say "trailing garbage ignored" (bzip2 and xz streams ignore them themselves).
    """
    try:
        with tarfile.open(fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape") as tar:
            for info in tar:
                collector.charge(info.size)
                read = functools.partial(_read_tar_member, tar, info, collector.limits)
                name = escape_bytes(info.name.encode("utf-8", "surrogateescape"))
                collector.add(name, _tar_kind(info), info.size, read)
    except _ARCHIVE_ERRORS as error:
        raise RepositoryError(f"{problem}: {location}: {type(error).__name__}: {error}") from error
    try:
        while compressed and (rest := stream.read(_CHUNK)):
            collector.charge(len(rest))
    except gzip.BadGzipFile as error:
        warn(type(error).__name__, f"bytes after the end of the gzip stream ignored: {location}: {error}")
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
    """Read a zip through its central directory; a bad member or name spoils only itself."""
    view = _LenientZip(f)
    try:
        archive = zipfile.ZipFile(view)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as error:
        raise RepositoryError(f"corrupt or truncated archive: {location}: {type(error).__name__}: {error}") from error
    with archive:
        infos = archive.infolist()
        if len(infos) > collector.limits.max_members:  # fail before reading any member
            raise RepositoryError(f"record limit exceeded: more than {collector.limits.max_members} members")
        flagged = view.utf8_flags if len(view.utf8_flags) == len(infos) else [False] * len(infos)
        for info, utf8 in zip(infos, flagged):
            utf8 = utf8 or bool(info.flag_bits & _UTF8_NAMES)  # zipfile saw the flag if the view did not clear it
            raw = info.orig_filename.encode("utf-8" if info.flag_bits & _UTF8_NAMES else "cp437")
            unicode_path = _unicode_path(info.extra, raw)
            windows = info.create_system in _WINDOWS_HOSTS
            name, undecodable = _zip_name(raw, utf8, windows) if unicode_path is None else _zip_name(unicode_path, True, windows)
            kind = _zip_kind(info, name)
            if undecodable and kind != "dir":
                error = f"{name}: the name is flagged UTF-8 but is not"
                collector.add(name, "undecodable_name", info.file_size, error=error)
                continue
            if not undecodable:  # zipfile checks the name in the member's own header, decoded by that header's flag
                info.orig_filename = raw.decode("utf-8" if utf8 else "cp437")
            read = functools.partial(_read_zip_member, archive, info, collector)
            collector.add(name, kind, info.file_size, read)


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


def _read_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, collector: _Collector, path: str) -> Member:
    try:
        with archive.open(info) as stream:
            return _read_member(path, stream, info.file_size, collector.limits, collector.charge)
    except _ZIP_MEMBER_ERRORS as error:
        return _read_error(path, info.file_size, error)
