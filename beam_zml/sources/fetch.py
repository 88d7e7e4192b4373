"""A Zenodo record's code: all of its files, else the GitHub release it names (README.md#records-from-zenodo).

`record_members` is the one way the pipeline gets a record's code. In order:

1. Every archive file of the record (.zip, .tar[.gz|.bz2|.xz], .tgz), md5 checked and read member by member
   with `read_repository`: with one archive its members sit at the top (its single top folder stripped, as for
   a GitHub zipball); with several, each archive's members sit under a folder named after its file (the key
   without the archive suffix).
2. Every other file at its own key: downloaded and read when it is at most `max_file_bytes` (a bigger one is
   a `too_large` row from the record's metadata, never downloaded).
3. A file that cannot be had or read is one member with its reason (`download_failed`, `archive_error`) and
   one problem (an errors line); the record's other files still count. A key that would escape the
   repository is an `unsafe_path` member, never downloaded; where a loose file and an archive member end at
   the same path, the loose file is kept and the other is a `duplicate_path` member.
4. Only when the record has no files, or none of them could be had, the GitHub release archive named by its
   isSupplementTo github.com/OWNER/REPO/tree/TAG identifier.

File links: `links.download` where present, else `links.content`, else `links.self`; a link of the pre-2023
form /api/files/<bucket>/<key> that answers 404 is tried again at /api/records/<id>/files/<key>/content.
Checksums: `md5:<hex>` or a bare 32-digit hex (an md5, as records saved around the 2023 migration write it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field, replace
from typing import Callable
from urllib.parse import quote

from beam_zml.core.records import record_id_of, zenodo_metadata
from beam_zml.sources.repository import (
    Limits,
    Member,
    RepositoryError,
    read_repository,
    safe_path,
)
from beam_zml.sources.zenodo import RecordGone, ZenodoError

ARCHIVE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".zip", ".tgz", ".tar")
_GITHUB_TREE = re.compile(r"github\.com/([^/]+)/([^/]+)/tree/(.+)$")
_OLD_FILE_LINK = re.compile(r"/api/files/[^/]+/(.+)$")  # /api/files/<bucket>/<key>, Zenodo's links before 2023
_MD5 = re.compile(r"(?:md5:)?([0-9a-fA-F]{32})")


class NoCode(Exception):
    """No source served the record's code; the message lists what was tried."""


@dataclass(frozen=True)
class RecordFile:
    """One file of a record, as its JSON lists it."""

    key: str
    size: int  # bytes, as the record says
    md5: str | None  # lower-case hex
    url: str  # the link to download it from
    current_url: str | None = None  # the /api/records/<id>/files/<key>/content link, if `url` is of an older form


@dataclass
class RecordCode:
    """What `record_members` found: the members, where they came from, and what failed on the way."""

    members: list[Member]
    source: str  # zenodo_archive (an archive served), zenodo_files (only loose files served) or github
    url: str  # the first link that served code
    problems: list[str] = field(default_factory=list)  # one errors line each: files or sources that failed


def record_files(raw: dict, zenodo_url: str) -> list[RecordFile]:
    """The record's files in either JSON shape (legacy `files: [...]`, InvenioRDM `files.entries: {key: ...}`).

    Accepts `key` or `filename`, `size` or `filesize`; an entry without a link (Zenodo's export) gets the
    record's content link under `zenodo_url`. Raises TypeError when the files are not in any known shape.
    """
    files = raw.get("files")
    if isinstance(files, dict):  # InvenioRDM: {"enabled": bool, "entries": {key: entry}}
        entries = files.get("entries") or {}
        if not isinstance(entries, dict):
            raise TypeError(f"files.entries is a {type(entries).__name__}, not an object")
        entries = list(entries.values())
    elif isinstance(files, list) or files is None:
        entries = files or []
    else:
        raise TypeError(f"files is a {type(files).__name__}, not a list or an object")
    record_id = record_id_of(raw)
    content = f"{zenodo_url.rstrip('/')}/api/records/{record_id}/files/{{}}/content"
    result = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise TypeError(f"a file entry is a {type(entry).__name__}, not an object")
        key = entry.get("key") if entry.get("key") is not None else entry.get("filename")
        size = entry.get("size") if entry.get("size") is not None else entry.get("filesize")
        links = entry.get("links") or {}
        if not isinstance(key, str) or not key or not isinstance(links, dict):
            raise TypeError(f"a file entry has no usable key or links: {json.dumps(entry)[:200]}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            size = 0
        key = key.encode("utf-8", "surrogatepass").decode("utf-8", "replace")  # JSON may hold lone surrogates
        current = content.format(quote(key, safe="/()"))
        url = links.get("download") or links.get("content") or links.get("self") or current
        if not isinstance(url, str):
            raise TypeError(f"file {key}: a link is a {type(url).__name__}, not a string")
        checksum = _MD5.fullmatch(entry.get("checksum") or "") if isinstance(entry.get("checksum"), str) else None
        result.append(RecordFile(key, size, checksum.group(1).lower() if checksum else None, url,
                                 current if _OLD_FILE_LINK.search(url) and record_id is not None else None))
    return sorted(result, key=lambda f: f.key)


def is_archive(key: str) -> bool:
    return key.lower().endswith(ARCHIVE_SUFFIXES)


def archive_folder(key: str) -> str:
    """The folder an archive's members sit under when a record has several: its key without the archive suffix."""
    suffix = next(s for s in ARCHIVE_SUFFIXES if key.lower().endswith(s))
    return key[: -len(suffix)] or key


def github_archive_url(github_base: str, identifier: str | None) -> str | None:
    """GitHub's archive of the tag named by a github.com/OWNER/REPO/tree/TAG url (the tag may hold '/')."""
    match = _GITHUB_TREE.search(identifier or "")
    if match is None:
        return None
    owner, repo, tag = match.groups()
    return f"{github_base.rstrip('/')}/{owner}/{repo}/archive/refs/tags/{tag}.zip"


def record_members(
    client, raw: dict, workdir: str, *, zenodo_url: str, github_base: str, limits: Limits, warn: Callable[[str, str], None] | None = None
) -> RecordCode:
    """All of a record's code as repository members, downloaded into `workdir` (which the caller removes).

    `warn` is read_repository's: it hears of an archive read whole but not cleanly (bytes after its gzip stream).

    `client` is a `beam_zml.sources.zenodo.ZenodoClient`. Raises NoCode, with every problem in its message,
    when neither the record's files nor GitHub served any code.
    """
    files = record_files(raw, zenodo_url)
    unsafe = [f for f in files if safe_path(archive_folder(f.key) if is_archive(f.key) else f.key) is None]
    archives = [f for f in files if is_archive(f.key) and f not in unsafe]
    loose = [f for f in files if not is_archive(f.key) and f not in unsafe]
    members: list[Member] = [Member(f.key, f.size, None, None, "unsafe_path") for f in unsafe]  # never downloaded
    failed: list[Member] = []
    problems: list[str] = []
    served: list[tuple[str, str]] = []  # (source, url) of each file that gave code
    for index, archive in enumerate(archives):
        target = os.path.join(workdir, f"archive-{index}")
        try:
            _download(client, archive, target)
            read = read_repository(target, limits, warn)
        except Exception as error:  # one bad file never stops its record
            failed.append(_failed_member(archive, error))
            problems.append(f"zenodo file {archive.key}: {_message(error)}")
            continue
        finally:
            if os.path.exists(target):
                os.unlink(target)  # read: its bytes are in the members now
        prefix = safe_path(archive_folder(archive.key)) + "/" if len(archives) > 1 else ""
        members += [_under(member, prefix) for member in read]
        served.append(("zenodo_archive", archive.url))
    downloaded, listed, loose_problems, loose_failed = _loose_members(client, loose, os.path.join(workdir, "files"), limits)
    members += downloaded + listed
    problems += loose_problems
    failed += loose_failed
    if downloaded:
        served.append(("zenodo_files", next(f.url for f in loose)))
    if served:
        return RecordCode(_last_of_each_path(failed + members), served[0][0], served[0][1], problems)
    github = github_archive_url(github_base, zenodo_metadata(raw)[0].get("github_url"))
    if github:
        target = os.path.join(workdir, "github.zip")
        try:
            client.download(github, target)  # GitHub's bytes may differ from Zenodo's copy: no md5
            read = read_repository(target, limits, warn)
            return RecordCode(_last_of_each_path(failed + members + read), "github", github, problems)
        except Exception as error:
            problems.append(f"github: {_message(error)}")
    if not files:
        access = zenodo_metadata(raw)[0].get("access_right")
        problems.append(f"the record has no files{f' (access: {access})' if access not in (None, 'open') else ''}"
                        f"{'' if github else ' and no GitHub release'}")
    raise NoCode("no source served the code: " + "; ".join(problems))


def _loose_members(client, loose: list[RecordFile], root: str,
                   limits: Limits) -> tuple[list[Member], list[Member], list[str], list[Member]]:
    """The non-archive files: downloaded at their keys under `root` and read, or a row from the metadata.

    Returns (members downloaded and read, members from the metadata only (too large, unsafe key), problems,
    failed members).
    """
    listed, problems, failed = [], [], []
    wanted = []
    for item in loose:
        relative = safe_path(item.key)  # the caller left out unsafe keys
        if item.size > limits.max_file_bytes:
            listed.append(Member(relative, item.size, None, None, "too_large"))  # not downloaded
        else:
            wanted.append((item, relative))
    for item, relative in wanted:
        target = os.path.join(root, *relative.split("/"))
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            _download(client, item, target)
        except Exception as error:
            failed.append(_failed_member(item, error))
            problems.append(f"zenodo file {item.key}: {_message(error)}")
    downloaded = []
    if os.path.isdir(root):
        downloaded = read_repository(root, limits)
        shutil.rmtree(root)
    return downloaded, listed, problems, failed


def _download(client, item: RecordFile, target: str) -> None:
    """Download one record file, md5 checked; an old-style link that is gone is tried at its current address."""
    try:
        client.download(item.url, target, md5=item.md5)
    except RecordGone as error:
        if item.current_url is None or error.status != 404:
            raise
        client.download(item.current_url, target, md5=item.md5)


def _failed_member(item: RecordFile, error: Exception) -> Member:
    reason = "archive_error" if isinstance(error, RepositoryError) else "download_failed"
    return Member(safe_path(item.key), item.size, None, None, reason)


def _last_of_each_path(members: list[Member]) -> list[Member]:
    """The members sorted by path; where two end at the same path (a loose file and an archive member), the
    later one, as extraction would keep it, stays and the others are `duplicate_path` rows (docs/dataset-format.md)."""
    last = {member.path: index for index, member in enumerate(members)}
    marked = [member if last[member.path] == index or member.skip_reason == "unsafe_path"
              else replace(member, data=None, swhid=None, skip_reason="duplicate_path")
              for index, member in enumerate(members)]
    return sorted(marked, key=lambda m: m.path)


def _under(member: Member, prefix: str) -> Member:
    if not prefix or member.skip_reason == "unsafe_path":
        return member
    return replace(member, path=prefix + member.path)


def _message(error: Exception) -> str:
    return str(error) if isinstance(error, (RepositoryError, ZenodoError)) else f"{type(error).__name__}: {error}"


def scrub_token(raw: dict, token: str | None) -> dict:
    """The record with any access token removed, as docs/dataset-format.md#records says of raw_json."""
    text = json.dumps(raw)
    text = re.sub(r"access_token=[^&\"\s]*&?", "", text)
    if token:
        text = text.replace(token, "REDACTED")
    return json.loads(text)
