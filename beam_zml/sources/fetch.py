"""A Zenodo record's code on local disk, from the first source that serves it (README.md#records-from-zenodo).

In order: the record's own archive files (md5 checked), the GitHub release archive
named by its isSupplementTo github.com/OWNER/REPO/tree/TAG identifier, then its
loose files. A source that fails is noted and the next one is tried.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

from beam_zml.core.records import github_url
from beam_zml.sources.repository import safe_path

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")
_GITHUB_TREE = re.compile(r"github\.com/([^/]+)/([^/]+)/tree/(.+)$")


class NoCode(Exception):
    """No source served the record's code; the message lists what was tried."""


@dataclass(frozen=True)
class RecordFile:
    key: str
    size: int
    md5: str | None
    url: str


@dataclass
class FetchedCode:
    location: str  # a local archive or directory
    source: str  # zenodo_archive, github or zenodo_files
    url: str  # where it came from
    problems: list[str] = field(default_factory=list)  # sources tried before, and why they failed


def record_files(raw: dict) -> list[RecordFile]:
    """The record's files, from any of the shapes Zenodo has used (key/filename, size/filesize)."""
    files = []
    for item in raw.get("files") or []:
        key = item.get("key") or item.get("filename")
        url = (item.get("links") or {}).get("self") or (item.get("links") or {}).get("download")
        if not key or not url:
            continue
        checksum = item.get("checksum") or ""
        md5 = checksum.split(":", 1)[1] if checksum.startswith("md5:") else None
        files.append(RecordFile(key, int(item.get("size") or item.get("filesize") or 0), md5, url))
    return sorted(files, key=lambda f: f.key)


def is_archive(key: str) -> bool:
    return key.lower().endswith(ARCHIVE_SUFFIXES)


def github_archive_url(github_base: str, identifier: str | None) -> str | None:
    """GitHub's archive of the tag named by a github.com/OWNER/REPO/tree/TAG url (the tag may hold '/')."""
    match = _GITHUB_TREE.search(identifier or "")
    if match is None:
        return None
    owner, repo, tag = match.groups()
    return f"{github_base.rstrip('/')}/{owner}/{repo}/archive/refs/tags/{tag}.zip"


def fetch_code(client, raw: dict, workdir: str, github_base: str, max_bytes: int) -> FetchedCode:
    """Download the record's code into `workdir` (which the caller removes); raise NoCode if nothing served it.

    `client` is a `beam_zml.sources.zenodo.ZenodoClient`; its errors carry the reason.
    """
    from beam_zml.sources.zenodo import ZenodoError

    files = record_files(raw)
    archives = [f for f in files if is_archive(f.key)]
    problems: list[str] = []
    if archives:
        archive = archives[0]
        target = os.path.join(workdir, "archive")
        try:
            client.download(archive.url, target, md5=archive.md5)
            return FetchedCode(target, "zenodo_archive", archive.url, problems)
        except ZenodoError as error:
            problems.append(f"zenodo_archive {archive.key}: {error}")
    github = github_archive_url(github_base, github_url((raw.get("metadata") or {}).get("related_identifiers") or []))
    if github:
        target = os.path.join(workdir, "github.zip")
        try:
            client.download(github, target)
            return FetchedCode(target, "github", github, problems)
        except ZenodoError as error:
            problems.append(f"github: {error}")
    loose = [f for f in files if not is_archive(f.key)]
    if loose:
        try:
            return FetchedCode(_download_loose(client, loose, workdir, max_bytes), "zenodo_files", loose[0].url, problems)
        except ZenodoError as error:
            problems.append(f"zenodo_files: {error}")
    if not files and not github:
        problems.append("the record has no files and no GitHub release")
    raise NoCode("no source served the code: " + "; ".join(problems))


def _download_loose(client, files: list[RecordFile], workdir: str, max_bytes: int) -> str:
    """The loose files as a directory tree; keys that would escape it are left out."""
    from beam_zml.sources.zenodo import ZenodoError

    total = sum(f.size for f in files)
    if total > max_bytes:
        raise ZenodoError(f"loose files of {total} bytes exceed {max_bytes} bytes")
    root = os.path.join(workdir, "files")
    for item in files:
        relative = safe_path(item.key)
        if relative is None:
            continue
        target = os.path.join(root, *relative.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        client.download(item.url, target, md5=item.md5)
    os.makedirs(root, exist_ok=True)
    return root


def scrub_token(raw: dict, token: str | None) -> dict:
    """The record with any access token removed, as docs/dataset-format.md#records says of raw_json."""
    text = json.dumps(raw)
    text = re.sub(r"access_token=[^&\"\s]*&?", "", text)
    if token:
        text = text.replace(token, "REDACTED")
    return json.loads(text)
