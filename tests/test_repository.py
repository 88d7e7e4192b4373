"""read_repository: directories and archives read member by member, safely (docs/design.md#faults-and-limits)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import stat
import struct
import subprocess
import tarfile
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from apache_beam.io.filesystems import FileSystems
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_zml.core.tree import build_tree
from beam_zml.sources.repository import (
    Entry,
    Limits,
    Member,
    RepositoryError,
    list_repository,
    read_entries,
    read_repository,
    split_entries,
)
from tests.conftest import (
    ARCHIVE_KINDS,
    ZipEntry,
    member_lists,
    tar_entry,
    too_deep_tree,
    write_member_list,
    write_raw_tar,
    write_raw_zip,
    write_tar,
    write_zip,
)

EMPTY_BLOB = "swh:1:cnt:e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
FILES = {
    "README.md": b"# demo\n\nA tiny repository.\n",
    "setup.py": b"from setuptools import setup\nsetup(name='demo')\n",
    "src/demo/__init__.py": b"",
    "src/demo/core.py": b"def add(a, b):\n\treturn a + b\n",
    "tests/test_core.py": b"from demo.core import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
}
TOP = "owner-demo-1a2b3c4"
TAR_MODES = {".tar": "w", ".tar.gz": "w:gz", ".tgz": "w:gz", ".tar.bz2": "w:bz2", ".tar.xz": "w:xz"}


def blob_swhid(data: bytes) -> str:
    """What `git hash-object` gives, as a SWHID."""
    return "swh:1:cnt:" + hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def by_path(members: list[Member]) -> dict[str, Member]:
    return {m.path: m for m in members}


def write_files(root, files):
    for name, data in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def write_archive(path, files, top=TOP):
    """`files` as a zip or tar (by the suffix of `path`), each under the folder `top`."""
    entries = {f"{top}/{name}" if top else name: data for name, data in files.items()}
    if str(path).endswith(".zip"):
        return write_zip(path, entries.items())
    mode = next(mode for suffix, mode in TAR_MODES.items() if str(path).endswith(suffix))
    return write_tar(path, [tar_entry(name, data) for name, data in entries.items()], mode)


def assert_round_trip(members, files):
    assert [m.path for m in members] == sorted(files)
    for member in members:
        data = files[member.path]
        assert member == Member(member.path, len(data), data, blob_swhid(data), None, None)


# Directories


def test_directory_walk_lists_nested_files_with_content_and_swhid(tmp_path):
    repo = write_files(tmp_path / "repo", {**FILES, ".git/config": b"[core]\n"})
    (repo / "empty_dir").mkdir()

    members = read_repository(str(repo))

    assert_round_trip(members, {**FILES, ".git/config": b"[core]\n"})


def test_directory_location_is_never_stripped(tmp_path):
    write_files(tmp_path / "repo", {"only/a.py": b"x = 1\n"})

    assert [m.path for m in read_repository(str(tmp_path / "repo"))] == ["only/a.py"]


def test_directory_symlinks_are_listed_not_followed(tmp_path):
    outside = write_files(tmp_path / "outside", {"secret.txt": b"secret\n", "sub/deep.txt": b"deep\n"})
    repo = write_files(tmp_path / "repo", {"a.py": b"a = 1\n"})
    (repo / "link.txt").symlink_to(outside / "secret.txt")
    (repo / "linked_dir").symlink_to(outside, target_is_directory=True)
    (repo / "dangling").symlink_to(tmp_path / "nowhere")

    members = by_path(read_repository(str(repo)))

    assert sorted(members) == ["a.py", "dangling", "link.txt", "linked_dir"]
    for name in ("link.txt", "linked_dir", "dangling"):
        assert members[name] == Member(name, 0, None, None, "symlink")


def test_folders_and_files_past_the_path_limit_are_read_errors_alone(tmp_path):
    paths = too_deep_tree(tmp_path / "repo")

    members = by_path(read_repository(str(tmp_path / "repo")))

    assert sorted(members) == sorted([paths["ok"], paths["reachable"], paths["unopenable"], paths["unlistable"]])
    assert members[paths["ok"]].data == b"ok = 1\n" and members[paths["reachable"]].data == b"s = 1\n"
    for name in ("unopenable", "unlistable"):
        member = members[paths[name]]
        assert member.skip_reason == "read_error" and member.data is None
        assert "File name too long" in member.error and len(member.error) < 2 * len(paths[name])
    assert members[paths["unlistable"]].error.startswith("cannot list folder")


def read_as_nobody(location: str) -> list:
    """read_repository(location) as [path, skip_reason, error] lists, by the user nobody if we are root.

    Root may read anything, so a forked child gives up root first (no exec: the
    interpreter and the package are already loaded), then reads and sends the result back.
    """
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        status = 1
        try:
            os.close(reader)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setresgid(65534, 65534, 65534)
                os.setresuid(65534, 65534, 65534)
            result = [[m.path, m.skip_reason, m.error] for m in read_repository(location)]
            os.write(writer, json.dumps(result).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        sent = pipe.read()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return json.loads(sent)


def test_a_folder_and_a_file_the_build_user_may_not_read_are_read_errors_alone():
    """Permission denied for the user running the build."""
    with tempfile.TemporaryDirectory() as tmp:  # not under pytest's folders, which only their owner may enter
        os.chmod(tmp, 0o755)
        repo = write_files(Path(tmp) / "repo", {"ok.py": b"ok = 1\n", "secret/x.py": b"x = 1\n", "locked.py": b"l = 1\n"})
        os.chmod(repo / "secret", 0)
        os.chmod(repo / "locked.py", 0)
        try:
            members = {path: (reason, error) for path, reason, error in read_as_nobody(str(repo))}
        finally:
            os.chmod(repo / "secret", 0o755)  # so that it can be removed

    assert members == {
        "ok.py": (None, None),
        "secret": ("read_error", "cannot list folder: PermissionError: [Errno 13] Permission denied"),
        "locked.py": ("read_error", "locked.py: PermissionError: [Errno 13] Permission denied"),
    }


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_directory_fifo_is_special_and_never_opened(tmp_path):
    repo = write_files(tmp_path / "repo", {"a.py": b"a = 1\n"})
    os.mkfifo(repo / "pipe")  # opening it for reading would block forever

    members = by_path(read_repository(str(repo)))

    assert members["pipe"].skip_reason == "special"
    assert members["a.py"].data == b"a = 1\n"


# Archive formats and content


@pytest.mark.parametrize("suffix", [".zip", *TAR_MODES])
def test_every_archive_format_round_trips_content_and_swhid(tmp_path, suffix):
    archive = write_archive(tmp_path / f"repo{suffix}", FILES)

    assert_round_trip(read_repository(archive), FILES)


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_format_is_detected_by_content_not_name(tmp_path, suffix):
    archive = write_archive(tmp_path / f"repo{suffix}", FILES)
    renamed = str(shutil.copy(archive, tmp_path / "download.bin"))

    assert_round_trip(read_repository(renamed), FILES)


def test_empty_file_has_the_known_empty_blob_swhid(tmp_path):
    archive = write_archive(tmp_path / "repo.zip", {"a/empty.txt": b"", "b.txt": b"b"}, top=None)

    members = by_path(read_repository(archive))

    assert members["a/empty.txt"].swhid == EMPTY_BLOB
    assert members["a/empty.txt"].data == b""


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_swhid_matches_git_hash_object(tmp_path):
    data = "héllo\r\nwörld\n".encode() + bytes(range(256))
    repo = write_files(tmp_path / "repo", {"f.bin": data})
    git = subprocess.run(["git", "hash-object", str(repo / "f.bin")], capture_output=True, text=True, check=True)

    assert read_repository(str(repo))[0].swhid == "swh:1:cnt:" + git.stdout.strip()


class NonSeekable(io.RawIOBase):
    """An object-store download that can only be read forward."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self._data.read(min(len(buffer), 100))  # short reads, as from a network
        buffer[: len(data)] = data
        return len(data)


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz", ".tar.xz"])
def test_tar_is_streamed_from_a_non_seekable_source(tmp_path, monkeypatch, suffix):
    archive = write_archive(tmp_path / f"r{suffix}", FILES)
    content = open(archive, "rb").read()
    monkeypatch.setattr(FileSystems, "open", lambda path, compression_type: io.BufferedReader(NonSeekable(content)))

    assert_round_trip(read_repository(archive), FILES)


def test_plain_tar_ending_in_a_zip_is_read_as_tar(tmp_path):
    inner = open(write_zip(tmp_path / "inner.zip", [("inner.txt", b"inner\n")]), "rb").read()
    files = {"a.py": b"a = 1\n", "z/data.zip": inner}  # zip's end record lands near the tar's end

    assert_round_trip(read_repository(write_archive(tmp_path / "r.tar", files, top=None)), files)


def test_old_tar_without_ustar_magic_is_still_read(tmp_path):
    raw = bytearray(open(write_archive(tmp_path / "new.tar", {"a.py": b"a = 1\n"}, top=None), "rb").read())
    raw[257:265] = bytes(8)  # no magic, as in pre-POSIX tars; then fix the header checksum
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\0 " % sum(raw[:512])
    (tmp_path / "old.tar").write_bytes(bytes(raw))

    assert_round_trip(read_repository(str(tmp_path / "old.tar")), {"a.py": b"a = 1\n"})


@given(
    files=st.dictionaries(
        st.text("abcxyz_.-", min_size=1, max_size=8).filter(lambda name: name.strip(".") and not name.startswith("._")),
        st.binary(max_size=300),
        min_size=1,
        max_size=5,
    ),
    suffix=st.sampled_from([".zip", ".tar", ".tar.gz"]),
)
@settings(max_examples=30, deadline=None)
def test_any_content_round_trips(files, suffix):
    files = {f"src/{name}": data for name, data in files.items()}
    with tempfile.TemporaryDirectory() as tmp:
        archive = write_archive(os.path.join(tmp, "repo" + suffix), files)

        assert_round_trip(read_repository(archive), files)


# Single top folder


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_two_top_entries_are_not_stripped(tmp_path, suffix):
    files = {"one/a.py": b"a\n", "two/b.py": b"b\n"}

    assert_round_trip(read_repository(write_archive(tmp_path / f"r{suffix}", files, top=None)), files)


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_single_top_level_file_is_not_stripped(tmp_path, suffix):
    files = {"README": b"hello\n"}

    assert_round_trip(read_repository(write_archive(tmp_path / f"r{suffix}", files, top=None)), files)


def test_a_top_level_directory_entry_prevents_stripping(tmp_path):
    archive = write_zip(tmp_path / "r.zip", [("top/a.py", b"a\n"), ("docs/", b"")])

    assert [m.path for m in read_repository(archive)] == ["top/a.py"]


def test_top_folder_with_directory_entries_is_stripped(tmp_path):
    archive = write_tar(
        tmp_path / "r.tar",
        [tar_entry(TOP, type=tarfile.DIRTYPE), tar_entry(f"{TOP}/src", type=tarfile.DIRTYPE),
         tar_entry(f"{TOP}/src/a.py", b"a\n"), tar_entry(f"{TOP}/link", type=tarfile.SYMTYPE, linkname="src")],
        "w",
    )

    assert [(m.path, m.skip_reason) for m in read_repository(archive)] == [("link", "symlink"), ("src/a.py", None)]


def test_dot_slash_names_are_normalised(tmp_path):
    archive = write_tar(
        tmp_path / "r.tgz",
        [tar_entry(".", type=tarfile.DIRTYPE), tar_entry("./a.py", b"a\n"), tar_entry("./lib//b.py", b"b\n")],
    )

    assert_round_trip(read_repository(archive), {"a.py": b"a\n", "lib/b.py": b"b\n"})


@pytest.mark.parametrize("suffix", [".zip", ".tar"])
def test_duplicate_paths_are_all_rows_and_the_last_is_kept(tmp_path, suffix):
    entries = [("x/a.txt", b"first"), ("x/b.txt", b"b"), ("x/a.txt", b"second")]
    if suffix == ".zip":
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive = write_zip(tmp_path / "r.zip", entries)
    else:
        archive = write_tar(tmp_path / "r.tar", [tar_entry(name, data) for name, data in entries], "w")

    members = read_repository(archive)

    assert [(m.path, m.skip_reason) for m in members] == [("a.txt", "duplicate_path"), ("a.txt", None), ("b.txt", None)]
    assert members[0] == Member("a.txt", 5, None, None, "duplicate_path")  # listed, never read: no content id
    assert members[1].data == b"second"


def test_spellings_of_one_path_are_duplicates(tmp_path):
    archive = write_tar(
        tmp_path / "r.tar",
        [tar_entry("a.py", b"1"), tar_entry("./a.py", b"2"), tar_entry("b//b.py", b"3"), tar_entry("./b/./b.py", b"4"),
         tar_entry("b/c.py", b"5")],
        "w",
    )

    members = read_repository(archive)

    assert [(m.path, m.skip_reason, m.data) for m in members] == [
        ("a.py", "duplicate_path", None), ("a.py", None, b"2"),
        ("b/b.py", "duplicate_path", None), ("b/b.py", None, b"4"), ("b/c.py", None, b"5"),
    ]


def test_two_undecodable_names_that_meet_are_both_rows(tmp_path):
    # Latin-1 "caf\xe9" escapes to the very text of the UTF-8 name "caf\\xe9" (a real backslash).
    archive = write_raw_tar(tmp_path / "r.tar", [(b"caf\\xe9.py", b"utf8\n"), (b"caf\xe9.py", b"latin1\n")])

    members = read_repository(str(archive))

    assert [(m.path, m.skip_reason) for m in members] == [("caf\\xe9.py", "duplicate_path"), ("caf\\xe9.py", None)]
    assert members[1].data == b"latin1\n"


# Hostile names and member kinds


TRAVERSALS = ["../evil", "/abs/x", "a/../../b", "ok/../../../../tmp/evil2"]


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_traversal_names_are_unsafe_and_nothing_is_written(tmp_path, suffix):
    repo_dir = tmp_path / "work"
    repo_dir.mkdir()
    entries = [(name, b"pwned\n") for name in TRAVERSALS] + [("good.py", b"ok\n")]
    if suffix == ".zip":
        archive = write_zip(repo_dir / "r.zip", entries)
    else:
        archive = write_tar(repo_dir / "r.tar.gz", [tar_entry(name, data) for name, data in entries])
    before = sorted(p for p in tmp_path.rglob("*"))

    members = by_path(read_repository(archive))

    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not os.path.exists("/abs/x")
    assert members["good.py"].data == b"ok\n"
    unsafe = {path: m for path, m in members.items() if m.skip_reason == "unsafe_path"}
    assert len(unsafe) == len(TRAVERSALS)
    assert all(m.data is None and m.swhid is None for m in unsafe.values())
    assert "../evil" in unsafe


def test_unsafe_names_vote_on_the_top_folder_and_are_shown_as_they_were(tmp_path):
    outside = write_zip(tmp_path / "out.zip", [("top/a.py", b"a\n"), ("../evil", b"x")])
    inside = write_zip(tmp_path / "in.zip", [("top/a.py", b"a\n"), ("top/../../evil", b"x")])

    assert [(m.path, m.skip_reason) for m in read_repository(outside)] == [("../evil", "unsafe_path"), ("top/a.py", None)]
    assert [(m.path, m.skip_reason) for m in read_repository(inside)] == [("a.py", None), ("top/../../evil", "unsafe_path")]


@pytest.mark.parametrize("suffix", [".zip", ".tar"])
def test_absolute_names_keep_their_leading_slash(tmp_path, suffix):
    entries = [("/etc/evil.py", b"x"), ("//etc/evil2.py", b"y"), ("/top/a.py", b"z")]
    if suffix == ".zip":
        archive = write_zip(tmp_path / "r.zip", entries)
    else:
        archive = write_tar(tmp_path / "r.tar", [tar_entry(name, data) for name, data in entries], "w")

    members = read_repository(archive)

    assert [(m.path, m.skip_reason) for m in members] == [
        ("//etc/evil2.py", "unsafe_path"), ("/etc/evil.py", "unsafe_path"), ("/top/a.py", "unsafe_path")
    ]


# Names as their tools wrote them


def test_unflagged_utf8_zip_names_are_utf8(tmp_path):
    """macOS Archive Utility and old Info-ZIP: UTF-8 bytes, no UTF-8 flag."""
    archive = write_raw_zip(tmp_path / "r.zip", [
        ZipEntry("proj/café.py".encode(), b"x = 1\n"), ZipEntry("proj/naïve/ü.txt".encode(), b"u\n"),
    ])

    assert [(m.path, m.data) for m in read_repository(str(archive))] == [("café.py", b"x = 1\n"), ("naïve/ü.txt", b"u\n")]


def test_unflagged_names_that_are_not_utf8_are_cp437(tmp_path):
    """Old DOS tools: cp437 bytes ("été" is 82 74 82), which are not valid UTF-8."""
    archive = write_raw_zip(tmp_path / "r.zip", [ZipEntry(b"proj/\x82t\x82.txt", b"ete\n"), ZipEntry(b"proj/a.txt", b"a\n")])

    assert [(m.path, m.data) for m in read_repository(str(archive))] == [("a.txt", b"a\n"), ("été.txt", b"ete\n")]


def test_an_info_zip_unicode_path_field_names_the_entry(tmp_path):
    """WinZip and Info-ZIP keep a cp437 name plus its UTF-8 form in extra field 0x7075 (APPNOTE 4.6.9)."""
    def unicode_path(raw: bytes, utf8: str) -> bytes:
        body = b"\x01" + struct.pack("<L", zlib.crc32(raw)) + utf8.encode()
        return struct.pack("<HH", 0x7075, len(body)) + body

    entries = [
        ZipEntry(b"proj/\x82t\x82.txt", b"ete\n", extra=unicode_path(b"proj/\x82t\x82.txt", "proj/été.txt")),
        ZipEntry(b"proj/stale.txt", b"s\n", extra=unicode_path(b"proj/old-name.txt", "proj/wrong.txt")),  # CRC of another name
    ]

    members = read_repository(str(write_raw_zip(tmp_path / "r.zip", entries)))

    assert [(m.path, m.data) for m in members] == [("stale.txt", b"s\n"), ("été.txt", b"ete\n")]


def test_a_name_falsely_flagged_utf8_spoils_only_itself(tmp_path):
    """A zip whose entries say UTF-8 but one name is cp1252: zipfile alone fails the whole archive."""
    archive = write_raw_zip(tmp_path / "r.zip", [
        ZipEntry(b"proj/ok.py", b"ok = 1\n", utf8_flag=True),
        ZipEntry(b"proj/caf\xe9.py", b"cafe = 1\n", utf8_flag=True),
        ZipEntry("proj/süß.py".encode(), b"s = 1\n", utf8_flag=True),
        ZipEntry(b"proj/sub/\x80\x81.txt", b"x\n", utf8_flag=True),
    ])
    with pytest.raises(UnicodeDecodeError):
        zipfile.ZipFile(archive)

    members = by_path(read_repository(str(archive)))

    assert members["ok.py"].data == b"ok = 1\n" and members["süß.py"].data == b"s = 1\n"
    for path in ("caf\\xe9.py", "sub/\\x80\\x81.txt"):
        assert members[path].skip_reason == "undecodable_name" and members[path].data is None
        assert "flagged UTF-8" in members[path].error


@pytest.mark.parametrize("system", [0, 10])  # MS-DOS (PowerShell's Compress-Archive, older .NET), NTFS
def test_windows_separators_are_slashes_before_the_safety_check(tmp_path, system):
    archive = write_raw_zip(tmp_path / "r.zip", [
        ZipEntry(b"proj\\src\\main.c", b"int x;\n", create_system=system, external_attr=0x20),
        ZipEntry(b"proj\\..\\..\\outside.txt", b"pwned\n", create_system=system, external_attr=0x20),
        ZipEntry(b"proj\\docs", create_system=system, external_attr=0x10),  # a folder: no slash, DOS attribute only
        ZipEntry(b"proj\\docs\\a.txt", b"a\n", create_system=system, external_attr=0x20),
    ])

    members = read_repository(str(archive))

    assert [(m.path, m.skip_reason) for m in members] == [
        ("docs/a.txt", None), ("proj/../../outside.txt", "unsafe_path"), ("src/main.c", None)
    ]


def test_backslashes_of_unix_zips_and_tars_are_part_of_the_name(tmp_path):
    zipped = write_raw_zip(tmp_path / "r.zip", [ZipEntry(b"top/a\\b.txt", b"x"), ZipEntry(b"top/c.txt", b"y")])
    tarred = write_raw_tar(tmp_path / "r.tar", [(b"top/a\\b.txt", b"x"), (b"top/c.txt", b"y")])

    for archive in (zipped, tarred):
        assert [m.path for m in read_repository(str(archive))] == ["a\\b.txt", "c.txt"]


@pytest.mark.parametrize("name", [b"C:\\Users\\me\\evil.txt", b"c:evil.txt", b"\\\\server\\share\\evil.txt"])
def test_drive_letters_and_unc_names_are_absolute(tmp_path, name):
    archive = write_raw_zip(tmp_path / "r.zip", [
        ZipEntry(name, b"pwned\n", create_system=0), ZipEntry(b"proj\\ok.txt", b"ok\n", create_system=0),
    ])

    members = read_repository(str(archive))

    assert [(m.path, m.skip_reason) for m in members if m.skip_reason] == [(name.decode().replace("\\", "/"), "unsafe_path")]
    assert [m.path for m in members if not m.skip_reason] == ["proj/ok.txt"]  # the unsafe name votes: no single top


def test_unix_zip_folder_marked_only_by_its_mode_or_dos_attribute(tmp_path):
    archive = write_raw_zip(tmp_path / "r.zip", [
        ZipEntry(b"top/unixdir", external_attr=(stat.S_IFDIR | 0o755) << 16),
        ZipEntry(b"top/dosdir", external_attr=0x10),
        ZipEntry(b"top/unixdir/a.txt", b"a"),
        ZipEntry(b"top/dosdir/b.txt", b"b"),
    ])

    assert [(m.path, m.skip_reason) for m in read_repository(str(archive))] == [("dosdir/b.txt", None), ("unixdir/a.txt", None)]


@pytest.mark.parametrize("where", ["tar", "dir"])
def test_names_that_are_not_utf8_stay_distinct_and_escaped(tmp_path, where):
    files = {b"r\xe9sum\xe9.py": b"e = 1\n", b"r\xe8sum\xe8.py": b"e = 2\n", "r\u00e9sum\u00e9.py".encode(): b"e = 3\n"}
    if where == "tar":
        location = str(write_raw_tar(tmp_path / "r.tar", [(b"top/" + name, data) for name, data in files.items()]))
    else:
        root = tmp_path / "repo"
        root.mkdir()
        for name, data in files.items():
            with open(os.path.join(os.fsencode(root), name), "wb") as handle:
                handle.write(data)
        location = str(root)

    members = by_path(read_repository(location))

    assert {path: m.data for path, m in members.items()} == {
        "r\\xe9sum\\xe9.py": b"e = 1\n", "r\\xe8sum\\xe8.py": b"e = 2\n", "résumé.py": b"e = 3\n"
    }


def test_a_directory_whose_own_name_is_not_utf8_is_read(tmp_path):
    root = os.path.join(os.fsencode(tmp_path), b"d\xe9mo")
    os.makedirs(os.path.join(root, b"src"))
    with open(os.path.join(root, b"src", b"a.py"), "wb") as handle:
        handle.write(b"a = 1\n")

    assert [(m.path, m.data) for m in read_repository(os.fsdecode(root))] == [("src/a.py", b"a = 1\n")]


def test_macos_metadata_is_listed_and_does_not_stop_the_top_folder_strip(tmp_path):
    apple_double = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "
    finder = write_raw_zip(tmp_path / "finder.zip", [
        ZipEntry(b"proj/", external_attr=0x10), ZipEntry(b"proj/a.py", b"a = 1\n"),
        ZipEntry(b"__MACOSX/", external_attr=0x10), ZipEntry(b"__MACOSX/proj/", external_attr=0x10),
        ZipEntry(b"__MACOSX/proj/._a.py", apple_double),
    ])
    mac_tar = write_tar(tmp_path / "mac.tar", [tar_entry("./proj/._a.py", apple_double), tar_entry("./proj/a.py", b"a = 1\n"),
                                               tar_entry("./._proj", apple_double)], "w")

    assert [(m.path, m.skip_reason, m.data) for m in read_repository(str(finder))] == [
        ("__MACOSX/proj/._a.py", "os_metadata", None), ("a.py", None, b"a = 1\n")
    ]
    assert [(m.path, m.skip_reason) for m in read_repository(mac_tar)] == [
        ("._a.py", "os_metadata"), ("._proj", "os_metadata"), ("a.py", None)
    ]


def test_nul_in_name_is_unsafe(tmp_path):
    info, data = tar_entry("ab.txt", b"x")
    info.pax_headers = {"path": "a\0b.txt"}  # zip and plain tar headers cut names at NUL; PAX does not
    archive = tmp_path / "r.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(data))
        tar.addfile(tar_entry("c.txt", b"c")[0], io.BytesIO(b"c"))

    members = by_path(read_repository(str(archive)))

    assert members["a\0b.txt"].skip_reason == "unsafe_path"
    assert members["c.txt"].data == b"c"


def test_tar_links_and_devices_are_skipped(tmp_path):
    archive = write_tar(
        tmp_path / "r.tar.gz",
        [
            tar_entry("top/a.py", b"a = 1\n"),
            tar_entry("top/passwd", type=tarfile.SYMTYPE, linkname="/etc/passwd"),
            tar_entry("top/hard", type=tarfile.LNKTYPE, linkname="top/a.py"),
            tar_entry("top/null", type=tarfile.CHRTYPE),
            tar_entry("top/disk", type=tarfile.BLKTYPE),
            tar_entry("top/fifo", type=tarfile.FIFOTYPE),
        ],
    )

    members = by_path(read_repository(archive))

    assert {path: m.skip_reason for path, m in members.items()} == {
        "a.py": None, "passwd": "symlink", "hard": "hardlink", "null": "special", "disk": "special", "fifo": "special",
    }
    assert all(m.data is None and m.error is None for path, m in members.items() if path != "a.py")


def test_zip_symlink_and_special_entries_are_skipped(tmp_path):
    link = zipfile.ZipInfo("top/link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    fifo = zipfile.ZipInfo("top/fifo")
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    no_mode = zipfile.ZipInfo("top/dos.txt")  # made on Windows: no Unix mode at all
    no_mode.external_attr = 0
    archive = write_zip(tmp_path / "r.zip", [(link, b"/etc/passwd"), (fifo, b""), (no_mode, b"dos\r\n")])

    members = by_path(read_repository(archive))

    assert members["link"] == Member("link", 0, None, None, "symlink")
    assert members["fifo"].skip_reason == "special"
    assert members["dos.txt"].data == b"dos\r\n"


# Limits


def test_zip_bomb_is_cut_off_quickly(tmp_path):
    archive = write_zip(tmp_path / "bomb.zip", [("top/zeros.bin", bytes(50 * 2**20)), ("top/a.py", b"a\n")])
    assert os.path.getsize(archive) < 1_000_000

    start = time.monotonic()
    members = by_path(read_repository(archive, Limits(max_member_bytes=2**20)))

    assert time.monotonic() - start < 5
    assert members["zeros.bin"].skip_reason == "member_too_large"
    assert members["zeros.bin"].data is None and members["zeros.bin"].swhid is None
    assert "larger than 1048576 bytes" in members["zeros.bin"].error
    assert members["a.py"].data == b"a\n"


def test_zip_bomb_with_lying_declared_size_is_not_read_past_it(tmp_path):
    raw = bytearray(open(write_zip(tmp_path / "honest.zip", [("zeros.bin", bytes(50 * 2**20))]), "rb").read())
    central = raw.index(b"PK\x01\x02")
    raw[22:26] = (1000).to_bytes(4, "little")  # local header: uncompressed size
    raw[central + 24 : central + 28] = (1000).to_bytes(4, "little")  # central directory: same
    (tmp_path / "liar.zip").write_bytes(bytes(raw))

    start = time.monotonic()
    [member] = read_repository(str(tmp_path / "liar.zip"), Limits(max_member_bytes=2**20))

    assert time.monotonic() - start < 5
    assert member.skip_reason == "read_error" and member.data is None
    assert "CRC" in member.error


def test_tar_bomb_is_cut_off(tmp_path):
    archive = write_tar(tmp_path / "bomb.tgz", [tar_entry("zeros.bin", bytes(50 * 2**20)), tar_entry("b.py", b"b\n")])

    members = by_path(read_repository(archive, Limits(max_member_bytes=2**20)))

    assert members["zeros.bin"] == Member(
        "zeros.bin", 50 * 2**20, None, None, "member_too_large", members["zeros.bin"].error
    )
    assert members["zeros.bin"].error
    assert members["b.py"].data == b"b\n"


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz", "dir"])
def test_large_file_is_hashed_but_not_kept(tmp_path, suffix):
    big = os.urandom(5000)
    files = {"big.bin": big, "small.txt": b"small\n"}
    if suffix == "dir":
        location = str(write_files(tmp_path / "repo", files))
    else:
        location = write_archive(tmp_path / f"r{suffix}", files)

    members = by_path(read_repository(location, Limits(max_file_bytes=1000)))

    assert members["big.bin"] == Member("big.bin", 5000, None, blob_swhid(big), None, None)
    assert members["small.txt"].data == b"small\n"


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz", "dir"])
def test_record_byte_limit(tmp_path, suffix):
    files = {f"f{i}.txt": bytes([65 + i]) * 1000 for i in range(3)}
    if suffix == "dir":
        location = str(write_files(tmp_path / "repo", files))
    else:
        location = write_archive(tmp_path / f"r{suffix}", files)

    assert len(read_repository(location, Limits(max_record_bytes=3000))) == 3
    with pytest.raises(RepositoryError, match="record limit exceeded: more than 2500 bytes"):
        read_repository(location, Limits(max_record_bytes=2500))


@pytest.mark.parametrize("suffix", [".zip", ".tar.bz2", "dir"])
def test_member_count_limit(tmp_path, suffix):
    files = {f"f{i}.txt": b"x" for i in range(5)}
    if suffix == "dir":
        location = str(write_files(tmp_path / "repo", files))
    else:
        location = write_archive(tmp_path / f"r{suffix}", files, top=None)

    assert len(read_repository(location, Limits(max_members=5))) == 5
    with pytest.raises(RepositoryError, match="record limit exceeded: more than 4 members"):
        read_repository(location, Limits(max_members=4))


def test_limits_pickle():
    limits = Limits(max_file_bytes=1, max_member_bytes=2, max_record_bytes=3, max_members=4)

    assert pickle.loads(pickle.dumps(limits)) == limits


# Corrupt, truncated and wrong input


def test_zip_member_with_bad_crc_fails_alone(tmp_path):
    archive = write_zip(
        tmp_path / "r.zip", [("top/a.txt", b"alpha\n"), ("top/b.txt", b"bravo\n"), ("top/c.txt", b"charlie\n")],
        compression=zipfile.ZIP_STORED,
    )
    raw = bytearray(open(archive, "rb").read())
    raw[raw.index(b"bravo")] = ord("B")
    (tmp_path / "r.zip").write_bytes(bytes(raw))

    members = by_path(read_repository(archive))

    assert members["b.txt"].skip_reason == "read_error"
    assert members["b.txt"].data is None and members["b.txt"].swhid is None
    assert "b.txt" in members["b.txt"].error and "CRC" in members["b.txt"].error
    assert members["a.txt"].data == b"alpha\n" and members["c.txt"].data == b"charlie\n"


def test_zip_member_with_corrupt_deflate_data_fails_alone(tmp_path):
    archive = write_zip(tmp_path / "r.zip", [("a.bin", os.urandom(3000)), ("b.txt", b"bravo\n")])
    raw = bytearray(open(archive, "rb").read())
    raw[40:1040] = bytes(1000)  # inside a.bin's deflate stream
    (tmp_path / "r.zip").write_bytes(bytes(raw))

    members = by_path(read_repository(archive))

    assert members["a.bin"].skip_reason == "read_error"
    assert members["b.txt"].data == b"bravo\n"


def test_an_entry_that_needs_an_unknown_zip_version_spoils_only_itself(tmp_path):
    archive = write_zip(tmp_path / "r.zip", [("top/a.txt", b"alpha\n"), ("top/b.txt", b"bravo\n")])
    raw = bytearray(open(archive, "rb").read())
    central = raw.index(b"PK\x01\x02")
    raw[central + 6] = 64  # "version needed to extract" 6.4: Python's zipfile refuses the whole archive
    (tmp_path / "r.zip").write_bytes(bytes(raw))
    with pytest.raises(NotImplementedError):
        zipfile.ZipFile(archive)

    assert [(m.path, m.data) for m in read_repository(archive)] == [("a.txt", b"alpha\n"), ("b.txt", b"bravo\n")]


def test_zip_with_broken_central_directory_is_a_repository_error(tmp_path):
    archive = write_archive(tmp_path / "r.zip", FILES)
    raw = bytearray(open(archive, "rb").read())
    central = raw.index(b"PK\x01\x02")
    raw[central : central + 4] = b"XXXX"
    (tmp_path / "r.zip").write_bytes(bytes(raw))

    with pytest.raises(RepositoryError, match="corrupt or truncated"):
        read_repository(archive)


def test_a_zip_cut_in_half_is_named_a_truncated_zip(tmp_path):
    archive = write_archive(tmp_path / "r.zip", FILES)
    raw = open(archive, "rb").read()
    (tmp_path / "r.zip").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(RepositoryError, match=r"corrupt or truncated zip archive \(no central directory\)"):
        read_repository(archive)


@pytest.mark.parametrize("junk", [b"garbage after the stream\n", bytes(1000) + b"then text", os.urandom(3 * 2**20)])
def test_bytes_after_a_whole_gzip_stream_are_a_warning(tmp_path, junk):
    archive = write_archive(tmp_path / "r.tar.gz", FILES)
    (tmp_path / "r.tar.gz").write_bytes(open(archive, "rb").read() + b"J" + junk)  # never a gzip magic
    warnings = []

    members = read_repository(archive, warn=lambda *warning: warnings.append(warning))

    assert_round_trip(members, FILES)
    assert [error_type for error_type, message in warnings] == ["BadGzipFile"]
    assert "bytes after the end of the gzip stream" in warnings[0][1]


@pytest.mark.parametrize("suffix", [".tar.bz2", ".tar.xz"])
def test_bytes_after_a_bzip2_or_xz_stream_are_ignored_by_their_decompressors(tmp_path, suffix):
    archive = write_archive(tmp_path / f"r{suffix}", FILES)
    (tmp_path / f"r{suffix}").write_bytes(open(archive, "rb").read() + b"garbage after the stream\n")

    assert_round_trip(read_repository(archive, warn=pytest.fail), FILES)


def test_corrupt_gzip_is_a_repository_error(tmp_path):
    archive = write_archive(tmp_path / "r.tar.gz", {"a.bin": os.urandom(5000)})
    raw = bytearray(open(archive, "rb").read())
    raw[20:2000] = bytes(1980)
    (tmp_path / "r.tar.gz").write_bytes(bytes(raw))

    with pytest.raises(RepositoryError, match="corrupt or truncated archive"):
        read_repository(archive)


@pytest.mark.parametrize("cut", ["half", "trailer"])
@pytest.mark.parametrize("suffix", [".tar.gz", ".tar.bz2", ".tar.xz"])
def test_truncated_compressed_tar_is_a_repository_error(tmp_path, suffix, cut):
    archive = write_archive(tmp_path / f"r{suffix}", {"a.bin": os.urandom(20000), "b.bin": os.urandom(20000)})
    raw = open(archive, "rb").read()
    (tmp_path / f"r{suffix}").write_bytes(raw[: len(raw) // 2] if cut == "half" else raw[:-6])

    with pytest.raises(RepositoryError, match="corrupt or truncated archive"):
        read_repository(archive)


@pytest.mark.parametrize(
    "content, message",
    [(b"just some text\nnot an archive\n" * 40, "not an archive"), (b"", "not an archive"),
     (b"PK\x03\x04garbage", "corrupt or truncated zip archive")],
)
def test_not_an_archive(tmp_path, content, message):
    (tmp_path / "notes.zip").write_bytes(content)

    with pytest.raises(RepositoryError, match=message):
        read_repository(str(tmp_path / "notes.zip"))


def test_missing_path(tmp_path):
    with pytest.raises(RepositoryError, match="no such file or directory: .*missing.tar.gz"):
        read_repository(str(tmp_path / "missing.tar.gz"))


def test_reading_twice_gives_the_same_result(tmp_path):
    archive = write_archive(tmp_path / "r.tar.xz", FILES)

    assert read_repository(archive) == read_repository(archive)


# Nothing lost: one Member per entry that is not a folder, whatever the entries are

@pytest.mark.filterwarnings("ignore:Duplicate name")
@given(entries=member_lists, kind=st.sampled_from(ARCHIVE_KINDS))
@settings(max_examples=60, deadline=None)
def test_every_entry_that_is_not_a_folder_is_one_member(entries, kind):
    """Whatever the names (duplicates, unsafe, metadata, undecodable), members written == Members read."""
    with tempfile.TemporaryDirectory() as tmp:
        archive, written = write_member_list(Path(tmp), entries, kind)

        members = read_repository(str(archive))

    assert len(members) == written
    kept = [m.path for m in members if m.skip_reason not in ("duplicate_path", "unsafe_path", "os_metadata")]
    assert len(kept) == len(set(kept)), "two members would be extracted to one path"
    build_tree((path, 0) for path in kept)  # every kept path is a clean relative path


# Listing, then reading any part: what lets a big repository be read by several workers in bounded memory


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz", "dir"])
def test_listing_keeps_no_content_and_any_split_reads_back_the_whole(tmp_path, suffix):
    files = {f"pkg{i % 3}/m{i:02d}.py": f"x = {i}\n".encode() * (i + 1) for i in range(20)}
    location = str(write_files(tmp_path / "repo", files)) if suffix == "dir" else write_archive(tmp_path / f"r{suffix}", files)

    listing = list_repository(location)
    assert [entry.path for entry in listing.entries] == sorted(files)
    assert all(not hasattr(entry, "data") for entry in listing.entries)
    assert pickle.loads(pickle.dumps(listing)) == listing  # a work item travels to another worker

    for max_bytes in (1, 2000, 10**9):
        runs = split_entries(listing.entries, max_bytes)
        assert [entry for run in runs for entry in run] == listing.entries
        assert len(runs) == (20 if max_bytes == 1 else 1 if max_bytes == 10**9 else len(runs))
        read = [member for run in runs for member in read_entries(listing, run)]
        assert_round_trip(sorted(read, key=lambda m: m.path), files)


def test_read_entries_is_lazy(tmp_path):
    repo = write_files(tmp_path / "repo", {"a.py": b"a\n", "b.py": b"b\n"})
    listing = list_repository(str(repo))
    members = read_entries(listing, listing.entries)
    (repo / "b.py").write_bytes(b"bb\n")  # changed after a was read: only b sees it
    assert next(members).data == b"a\n"
    second = next(members)
    assert second.skip_reason == "read_error" and "declared 2 bytes but read 3" in second.error


def test_split_entries_bounds_the_bytes_each_run_reads():
    entries = [Entry(f"f{i}", 6000, None) for i in range(10)] + [Entry("link", 0, "symlink")]
    runs = split_entries(entries, 16_000)
    assert [len(run) for run in runs] == [2, 2, 2, 2, 3]  # 2 x (6000 + 1024) each; a skipped entry costs 1024
    assert split_entries([], 16_000) == []
    assert [len(run) for run in split_entries([Entry("huge", 10**9, None)] * 2, 16_000)] == [1, 1]


@pytest.mark.parametrize("suffix", [".zip", ".tar"])
def test_a_file_at_a_path_that_is_also_a_folder_is_a_duplicate(tmp_path, suffix):
    """`a` and `a/b.py` (and `x/y` beside `x/y/z/w.py`) cannot both be extracted: the folder's files are kept."""
    entries = [("a", b"file a"), ("a/b.py", b"b = 1\n"), ("x/y", b"file y"), ("x/y/z/w.py", b"w = 1\n"), ("ok.py", b"1\n")]
    if suffix == ".zip":
        archive = write_zip(tmp_path / "r.zip", entries)
    else:
        archive = write_tar(tmp_path / "r.tar", [tar_entry(name, data) for name, data in entries], "w")
    members = {m.path: m.skip_reason for m in read_repository(archive)}
    assert members == {"a": "duplicate_path", "a/b.py": None, "ok.py": None, "x/y": "duplicate_path", "x/y/z/w.py": None}
    build_tree((path, 0) for path, reason in members.items() if reason is None)  # a consistent tree
