"""Shared fixtures: small real repositories on disk, and readers for a built dataset."""

from __future__ import annotations

import io
import os
import shutil
import stat
import struct
import sysconfig
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import strategies as st

PYTHON_SOURCE = "".join(f"def f{i}(x):\n\treturn x + {i}  # tab above\r\n" for i in range(35))  # 70 lines, CRLF and tabs
C_SOURCE = '#include <stdio.h>\nint main(void) {\n    printf("héllo 😀\\n");\n    return 0;\n}\n'
README = "# Demo\n\n" + "A line that is much longer than eighty characters, so that it is cut at the width. " * 2 + "\n"


def write_repository(root: Path) -> Path:
    """A small repository of real files of the kinds a Zenodo record holds."""
    (root / "src").mkdir(parents=True)
    (root / "src" / "module.py").write_text(PYTHON_SOURCE)
    (root / "src" / "main.c").write_text(C_SOURCE)
    (root / "README.md").write_text(README)
    (root / "empty.txt").write_text("")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)))
    (root / "big.csv").write_text("a,b\n" * 30_000)  # 120,000 bytes: over the 100,000-byte limit
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    os.symlink("README.md", root / "link.md")
    return root


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    return write_repository(tmp_path / "repo")


@pytest.fixture
def cluster_inputs(tmp_path: Path) -> list[Path]:
    """What the cluster tests build: a directory, its zip and tar.gz, and a corrupt zip that must fail its record."""
    repository = write_repository(tmp_path / "inputs" / "repo")
    corrupt = tmp_path / "inputs" / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    return [
        repository,
        zip_directory(repository, tmp_path / "inputs" / "repo.zip"),
        tar_directory(repository, tmp_path / "inputs" / "repo.tar.gz"),
        corrupt,
    ]


def zip_directory(directory: Path, target: Path, top: str = "owner-repo-abc1234") -> Path:
    """A GitHub-style zipball of `directory`: every member under one top folder."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file() and not path.is_symlink():
                archive.write(path, f"{top}/{path.relative_to(directory).as_posix()}")
    return target


def tar_directory(directory: Path, target: Path, mode: str = "w:gz", top: str = "project-1.0") -> Path:
    with tarfile.open(target, mode) as archive:
        archive.add(directory, arcname=top)
    return target


def zip_bomb(target: Path, size: int = 64 * 2**20) -> Path:
    """A small zip whose one member inflates to `size` bytes of zeros."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("bomb/zeros.txt", "w", force_zip64=True) as member:
            chunk = bytes(2**20)
            for _ in range(size // len(chunk)):
                member.write(chunk)
        archive.writestr("bomb/ok.py", "print('fine')\n")
    return target


def traversal_tar(target: Path) -> Path:
    """A tar whose members try to escape: ../, absolute, a symlink out and a device."""
    with tarfile.open(target, "w") as archive:
        for name in ("../evil.py", "/etc/evil.py", "safe/ok.py"):
            data = b"print('x')\n"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("safe/passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
        device = tarfile.TarInfo("safe/null")
        device.type = tarfile.CHRTYPE
        archive.addfile(device)
    return target


def write_zip(path, entries, compression=zipfile.ZIP_DEFLATED):
    """`entries`: (name or ZipInfo, bytes) in archive order."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return str(path)


def tar_entry(name, data=b"", type=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = type
    info.linkname = linkname
    info.size = len(data) if type == tarfile.REGTYPE else 0
    return info, data


def write_tar(path, entries, mode="w:gz"):
    """`entries`: (TarInfo, bytes) in archive order."""
    with tarfile.open(path, mode) as archive:
        for info, data in entries:
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return str(path)


@dataclass
class ZipEntry:
    """One entry of a zip as some other tool writes it: `name` is the raw bytes of its name.

    `utf8_flag` sets general purpose bit 11 (names are UTF-8) whatever the bytes are,
    `create_system` is the "version made by" host (0 MS-DOS: PowerShell, older .NET;
    3 Unix), `external_attr` the attributes (0x10: MS-DOS directory) and `extra` the extra fields.
    """

    name: bytes
    data: bytes = b""
    utf8_flag: bool = False
    create_system: int = 3
    external_attr: int = 0o644 << 16
    extra: bytes = b""  # extra fields, as written in both headers


def write_raw_zip(target: Path, entries: list[ZipEntry]) -> Path:
    """A zip whose names are exactly the given bytes, as macOS Archive Utility, PowerShell or old Info-ZIP write them.

    Python's zipfile writes every non-ASCII name as flagged UTF-8 and clears any flag it
    is given, so such an entry is first written under an ASCII stand-in of the same length,
    which is then replaced by the real bytes, and the flag is set, in the local header and
    the central directory (the only places a name and its flag are: APPNOTE 4.3.7, 4.3.12).
    """
    stand_ins = {}
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, entry in enumerate(entries):
            name = entry.name.decode("ascii") if entry.name.isascii() else _stand_in(i, len(entry.name))
            stand_ins[name.encode()] = entry.name
            info = zipfile.ZipInfo(name)
            info.create_system = entry.create_system
            info.external_attr = entry.external_attr
            info.extra = entry.extra
            archive.writestr(info, entry.data)
        local_headers = [info.header_offset for info in archive.infolist()]
        central = archive.start_dir
    raw = bytearray(target.read_bytes())
    for entry, local in zip(entries, local_headers):
        name_length, extra_length, comment_length = struct.unpack_from("<3H", raw, central + 28)
        if entry.utf8_flag:  # bit 11 of the flags, at offset 6 of a local header and 8 of a central one
            raw[local + 7] |= 0x08
            raw[central + 9] |= 0x08
        central += 46 + name_length + extra_length + comment_length
    raw = bytes(raw)
    for stand_in, name in stand_ins.items():
        if stand_in != name:
            assert raw.count(stand_in) == 2, "a stand-in name must be in exactly two headers"
            raw = raw.replace(stand_in, name)
    target.write_bytes(raw)
    return target


def _stand_in(i: int, length: int) -> str:
    """"<~~7>": no stand-in is part of another, as each has one "<" and one ">"."""
    digits = str(i)
    assert length >= len(digits) + 2, "too short a name for a stand-in"
    return "<" + digits.rjust(length - 2, "~") + ">"


def write_raw_tar(target: Path, entries: list[tuple[bytes, bytes]], mode: str = "w") -> Path:
    """A tar whose member names are the given bytes (GNU tar on a Latin-1 file system writes such names)."""
    with tarfile.open(target, mode, format=tarfile.GNU_FORMAT, encoding="latin-1") as archive:
        for name, data in entries:
            info = tarfile.TarInfo(name.decode("latin-1"))  # written back as the same bytes
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return target


# Random member lists: names made of parts that matter (duplicates, "..", ".", "", macOS metadata, drive
# letters, backslashes, non-ASCII), of any kind, written in UTF-8 or cp1252, flagged UTF-8 or not.
NAME_PARTS = ["a", "b.py", "c.txt", ".", "..", "", "._a", "__MACOSX", "café", "C:", "top", "a\\b"]
member_lists = st.lists(
    st.tuples(
        st.lists(st.sampled_from(NAME_PARTS), min_size=1, max_size=4).map("/".join),
        st.sampled_from(["file", "dir", "symlink"]),
        st.binary(max_size=20),
        st.booleans(),  # the name in cp1252 rather than UTF-8
        st.booleans(),  # zip: flagged UTF-8, whatever its bytes
    ),
    max_size=12,
)
ARCHIVE_KINDS = ("zip", "windows zip", "tar")


def write_member_list(folder: Path, entries: list[tuple], kind: str) -> tuple[Path, int]:
    """One of `member_lists` as a zip (made on Unix or on Windows) or a tar; and how many entries are not folders."""
    if kind == "tar":
        archive = folder / "r.tar"
        types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE}
        with tarfile.open(archive, "w", format=tarfile.GNU_FORMAT, encoding="latin-1") as tar:
            for name, entry_kind, data, cp1252, _ in entries:
                info = tarfile.TarInfo(name.encode("cp1252" if cp1252 else "utf-8").decode("latin-1"))
                info.type = types[entry_kind]
                info.size = len(data) if entry_kind == "file" else 0
                tar.addfile(info, io.BytesIO(data) if entry_kind == "file" else None)
        return archive, sum(entry_kind != "dir" for _, entry_kind, _, _, _ in entries)
    windows = kind == "windows zip"
    attributes = {"file": 0x20, "dir": 0x10, "symlink": (stat.S_IFLNK | 0o777) << 16}
    zip_entries = [
        ZipEntry(
            name.encode("cp1252" if cp1252 else "utf-8") + (b"/" if entry_kind == "dir" and not windows else b""),
            data if entry_kind != "dir" else b"",
            utf8_flag=flagged,
            create_system=0 if windows else 3,
            external_attr=attributes[entry_kind],
        )
        for name, entry_kind, data, cp1252, flagged in entries
        if len(name.encode("utf-8")) >= 4  # the stand-ins of write_raw_zip need a few bytes
    ]
    archive = write_raw_zip(folder / "r.zip", zip_entries)
    return archive, sum(entry.external_attr != 0x10 and not entry.name.endswith(b"/") for entry in zip_entries)


def too_deep_tree(root: Path) -> dict[str, str]:
    """A repository with folders nested past the longest path the system takes (PATH_MAX), as deep generated trees are.

    Made one level at a time relative to an open parent folder, which no path limit
    bounds. Returns the relative paths of "ok" (a file at the top), "reachable" (a file
    in the deepest folder that can be listed), "unopenable" (a file beside it whose
    whole path is too long to open) and "unlistable" (a folder whose path is too long
    to list; it holds one file, which no one can reach by path).
    """
    path_max = os.pathconf("/", "PC_PATH_MAX")
    root.mkdir(parents=True)
    (root / "ok.py").write_text("ok = 1\n")
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    parts = []
    length = len(os.fsencode(root))
    try:
        while length + 1 + 100 < path_max - 10:
            parts.append(f"{len(parts):03d}".ljust(100, "d"))
            folder = _subfolder(folder, parts[-1])
            length += 1 + 100
        deepest = "/".join(parts)
        _write_at(folder, "s.py", b"s = 1\n")
        _write_at(folder, "f" * 250 + ".py", b"f = 1\n")
        folder = _subfolder(folder, "g" * 200)
        _write_at(folder, "lost.py", b"lost = 1\n")
    finally:
        os.close(folder)
    return {
        "ok": "ok.py",
        "reachable": f"{deepest}/s.py",
        "unopenable": f"{deepest}/{'f' * 250}.py",
        "unlistable": f"{deepest}/{'g' * 200}",
    }


def _subfolder(parent: int, name: str) -> int:
    """Make folder `name` in the open folder `parent`, close `parent` and return the new folder, open."""
    os.mkdir(name, dir_fd=parent)
    child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=parent)
    os.close(parent)
    return child


def _write_at(folder: int, name: str, data: bytes) -> None:
    handle = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=folder)
    try:
        os.write(handle, data)
    finally:
        os.close(handle)


def runner_inputs(root: Path) -> list[Path]:
    """Several repositories and archives, a few hundred files in all, and one record that fails."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    skip_caches = shutil.ignore_patterns("__pycache__")
    repository = write_repository(root / "repo")
    email = shutil.copytree(stdlib / "email", root / "email", ignore=skip_caches)
    json_package = shutil.copytree(stdlib / "json", root / "json", ignore=skip_caches)
    asyncio = shutil.copytree(stdlib / "asyncio", root / "asyncio", ignore=skip_caches)
    corrupt = root / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    return [
        repository,
        zip_directory(repository, root / "repo.zip"),
        email,
        json_package,
        tar_directory(asyncio, root / "asyncio.tar.gz"),
        traversal_tar(root / "traversal.tar"),
        corrupt,
    ]
