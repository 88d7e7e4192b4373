"""Where a record's code comes from, and its row in records/ (docs/dataset-format.md#records)."""

from __future__ import annotations

import collections
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Iterable

from beam_zml.core.tree import build_tree


@dataclass(frozen=True)
class RecordSource:
    """One record to build: where its code is and what is known about it."""

    record_id: int
    location: str  # a directory or an archive, as a path or URL Beam's FileSystems can open
    source: str | None  # local, zenodo_archive, github or zenodo_files; None until a Zenodo record is fetched
    title: str | None = None
    raw: dict | None = field(default=None, compare=False)  # the record as Zenodo's API returned it


def local_record_id(path: str) -> int:
    """A stable positive id for a local path: the same path gets the same id in every run."""
    digest = hashlib.sha1(os.path.abspath(path).encode("utf-8")).digest()
    return int.from_bytes(digest[:7], "big")


def local_sources(paths: Iterable[str]) -> list[RecordSource]:
    """One record per distinct local directory or archive, in the order given."""
    sources = {}
    for path in paths:
        absolute = os.path.abspath(path)
        record_id = local_record_id(absolute)
        name = os.path.basename(absolute.rstrip(os.sep)) or absolute
        sources.setdefault(record_id, RecordSource(record_id, absolute, "local", title=name))
    return list(sources.values())


def record_row(source: RecordSource, *, status: str, error: str | None, file_rows: Iterable[dict]) -> dict:
    """The records/ row: metadata, outcome, counts and tree of one record.

    Members whose path would escape the repository (reason unsafe_path) are in the
    files table and the counts, but have no place in the tree.
    """
    files = sorted(file_rows, key=lambda row: row["path"])
    skipped = collections.Counter(row["reason"] for row in files if row["status"] == "skipped")
    row = zenodo_metadata(source.raw) if source.raw else {"title": source.title}
    row.update(
        record_id=source.record_id,
        status=status,
        error=error,
        source=source.source,
        archive_url=source.location or None,
        n_files=len(files),
        n_imaged=sum(row["status"] == "imaged" for row in files),
        n_images=sum(row["n_segments"] for row in files),
        n_bytes=sum(row["size"] for row in files),
        skipped=dict(sorted(skipped.items())),
        tree=build_tree((row["path"], row["size"]) for row in files if row["reason"] != "unsafe_path"),
        raw_json=json.dumps(source.raw, sort_keys=True) if source.raw else None,
    )
    return row


def zenodo_metadata(raw: dict) -> dict:
    """The records/ metadata fields from a Zenodo record in its legacy JSON shape (../shared/ZENODO.md)."""
    meta = raw.get("metadata") or {}
    license_ = meta.get("license")
    resource_type = meta.get("resource_type")
    related = [
        {
            "identifier": str(item["identifier"]),
            "relation": item.get("relation"),
            "scheme": item.get("scheme"),
            "resource_type": item.get("resource_type"),
        }
        for item in meta.get("related_identifiers") or []
        if item.get("identifier")
    ]
    return {
        "concept_id": _int_or_none(raw.get("conceptrecid")),
        "doi": raw.get("doi") or meta.get("doi"),
        "concept_doi": raw.get("conceptdoi"),
        "title": meta.get("title") or raw.get("title"),
        "description": meta.get("description"),
        "publication_date": meta.get("publication_date"),
        "version": meta.get("version"),
        "language": meta.get("language"),
        "license": license_.get("id") if isinstance(license_, dict) else license_,
        "access_right": meta.get("access_right"),
        "resource_type": resource_type.get("type") if isinstance(resource_type, dict) else resource_type,
        "keywords": [str(k) for k in meta.get("keywords") or []],
        "creators": [
            {"name": c.get("name") or "", "affiliation": c.get("affiliation"), "orcid": c.get("orcid")}
            for c in meta.get("creators") or []
        ],
        "communities": [c["id"] for c in meta.get("communities") or [] if c.get("id")],
        "related_identifiers": related,
        "github_url": github_url(related),
    }


def github_url(related_identifiers: list[dict]) -> str | None:
    """The github.com/OWNER/REPO/tree/TAG url that the GitHub integration records as isSupplementTo."""
    for item in related_identifiers:
        if item.get("relation") == "isSupplementTo" and "github.com/" in item["identifier"]:
            return item["identifier"]
    return None


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
