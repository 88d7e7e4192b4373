"""Where a record's code comes from, and its row in records/ (docs/dataset-format.md#records), from either JSON shape (README.md#records-from-zenodo).

Zenodo writes a record in two shapes (Zenodo's developer documentation, https://developers.zenodo.org): its legacy one (`conceptrecid`, `metadata.creators[].name`,
`metadata.license`, `files: [...]`) and InvenioRDM's (`parent.id`, `pids.doi`, `metadata.creators[].person_or_org`,
`metadata.rights`, `metadata.subjects`, `files.entries`), which its API serves on `Accept:
application/vnd.inveniordm.v1+json` and its monthly export holds. Both map to the same records/ row, field for field.
A value of an unexpected type never raises out of here: the field is left at its default and named in the problems.
"""

from __future__ import annotations

import collections
import fnmatch
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Callable, Iterable

from beam_zml.core.names import printable
from beam_zml.core.rows import fit_row
from beam_zml.core.tree import build_tree

# files/ rows that are no node of the tree (docs/dataset-format.md#files): a name that would escape the
# repository, macOS metadata, and the copies that a later member of the same path replaces.
OUTSIDE_TREE = frozenset({"unsafe_path", "os_metadata", "duplicate_path"})


@dataclass(frozen=True)
class Selection:
    """Which entries of a local folder are a record's inputs; the others are not read and get no row.

    `exclude` holds fnmatch patterns (`*`, `?`, `[...]`, case-sensitive): an entry is left out
    when its name or its path inside the repository matches one (`__pycache__`, `*.pyc`,
    `docs/build`); a folder left out is not entered. `only` makes a one-file repository of
    the folder's entry of that name (`--local-each`: a loose file of DIR).
    """

    exclude: tuple[str, ...] = ()
    only: str | None = None

    def excludes(self, path: str) -> bool:
        """True if the entry at `path` ("/"-separated, relative to the folder read) is not an input."""
        if self.only is not None and path != self.only:
            return True
        name = path.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(path, p) for p in self.exclude)


_OUTSIDE_TREE = ("unsafe_path", "duplicate_path")


@dataclass(frozen=True)
class RecordSource:
    """One record to build: where its code is and what is known about it."""

    record_id: int
    location: str  # a directory or an archive, as a path or URL Beam's FileSystems can open
    source: str | None  # local, zenodo_archive, github or zenodo_files; None until a Zenodo record is fetched
    title: str | None = None
    raw: dict | None = field(default=None, compare=False)  # the record as Zenodo's API returned it
    selection: Selection | None = None  # local records only: entries left out of the reading


def local_record_id(path: str) -> int:
    """A stable positive id for a local path: the same path gets the same id in every run.

    The path's bytes are hashed, so a name that is not UTF-8 (Latin-1, say) has an id too.
    """
    digest = hashlib.sha1(os.fsencode(os.path.abspath(path))).digest()
    return int.from_bytes(digest[:7], "big")


def local_sources(paths: Iterable[str], exclude: tuple[str, ...] = ()) -> list[RecordSource]:
    """One record per distinct local directory or archive, in the order given; `exclude` as in Selection."""
    sources = {}
    selection = Selection(tuple(exclude)) if exclude else None
    for path in paths:
        absolute = os.path.abspath(path)
        record_id = local_record_id(absolute)
        name = printable(os.path.basename(absolute.rstrip(os.sep)) or absolute)
        sources.setdefault(record_id, RecordSource(record_id, absolute, "local", title=name, selection=selection))
    return list(sources.values())


def record_row(source: RecordSource, *, status: str, error: str | None, file_rows: Iterable[dict]) -> dict:
    """The records/ row: metadata, outcome, counts and tree of one record, fitted to the records schema.

    Rows whose reason is in OUTSIDE_TREE are in the files table and the counts, but
    have no place in the tree. A local path that is not UTF-8 is shown escaped
    (`beam_zml.core.names`). A metadata field that does not fit the schema is left at its
    default and fails the record, with the field named in `error` (docs/design.md#faults-and-limits).
    """
    files = sorted(file_rows, key=lambda row: row["path"])
    skipped = collections.Counter(row["reason"] for row in files if row["status"] == "skipped")
    problems: list[str] = []
    if source.raw is not None:
        row, problems = zenodo_metadata(source.raw)
    else:
        row = {"title": source.title}
    row.update(
        record_id=source.record_id,
        status=status,
        error=printable(error) if error else error,
        source=source.source,
        archive_url=printable(source.location) if source.location else None,
        n_files=len(files),
        n_imaged=sum(row["status"] == "imaged" for row in files),
        n_images=sum(row["n_segments"] for row in files),
        n_bytes=sum(row["size"] for row in files),
        skipped=dict(sorted(skipped.items())),
        tree=build_tree((row["path"], row["size"]) for row in files if row["reason"] not in OUTSIDE_TREE),
        raw_json=json.dumps(source.raw, sort_keys=True) if source.raw is not None else None,
    )
    row, unfit = fit_row(row, "record")
    problems += unfit
    if problems:
        said = error is not None and error.startswith(_SHAPE_PROBLEM)  # list_files failed the record for it already
        row.update(status="failed", error=error if said else "; ".join(filter(None, [error, _shape_problem(problems)])))
    return row


def metadata_problem(raw: dict) -> str | None:
    """Why the record's JSON cannot make a records/ row as it is (a field of an unexpected type), or None."""
    problems = zenodo_metadata(raw)[1]
    if record_id_of(raw) is None:
        problems.insert(0, f"id: {json.dumps(raw.get('id') if isinstance(raw, dict) else None)[:80]} is not a record id")
    return _shape_problem(problems) if problems else None


_SHAPE_PROBLEM = "record JSON does not fit the records schema: "


def _shape_problem(problems: list[str]) -> str:
    return _SHAPE_PROBLEM + "; ".join(problems)


def zenodo_metadata(raw: dict) -> tuple[dict, list[str]]:
    """The records/ metadata fields of a Zenodo record in either shape, and what did not fit.

    Returns ({field: value}, ["field: why", ...]): a field whose JSON has an unexpected shape or type is
    None (or empty) and has one message; the problems are empty for a well-formed record.
    """
    if not isinstance(raw, dict):
        return {}, [f"record: a {type(raw).__name__}, not a JSON object"]
    values, problems = {}, []
    for name, read in _METADATA.items():
        try:
            values[name] = read(raw)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as error:
            values[name] = None
            problems.append(f"{name}: {error}")
    fitted, unfit = fit_row(values, "record")
    problems += [problem for problem in unfit if problem.split(":", 1)[0] in _METADATA]
    return {name: fitted[name] for name in _METADATA}, problems


def record_id_of(raw) -> int | None:
    """The record's id (legacy: an int; InvenioRDM: a string of digits), or None if it has none that is one."""
    value = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and int(value) > 0:
        return int(value)
    return None


def resource_type(raw: dict) -> str | None:
    """The record's resource type in the legacy words ("software", "publication"), from either shape; None if unknown."""
    try:
        kind = _resource_type(raw)
    except (TypeError, ValueError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None


def github_url(related_identifiers: list[dict]) -> str | None:
    """The github.com/OWNER/REPO/tree/TAG url that the GitHub integration records as isSupplementTo.

    `related_identifiers` are records/ rows' (relation already in the legacy camelCase); anything else is skipped.
    """
    for item in related_identifiers if isinstance(related_identifiers, list) else []:
        identifier = item.get("identifier") if isinstance(item, dict) else None
        if item.get("relation") == "isSupplementTo" and isinstance(identifier, str) and "github.com/" in identifier:
            return identifier
    return None


# --- reading either shape ------------------------------------------------------------------------------------------

# DataCite relation types as legacy Zenodo wrote them; InvenioRDM writes the same names in lower case.
_RELATIONS = {name.lower(): name for name in (
    "isCitedBy", "cites", "isSupplementTo", "isSupplementedBy", "isContinuedBy", "continues", "isDescribedBy",
    "describes", "hasMetadata", "isMetadataFor", "hasVersion", "isVersionOf", "isNewVersionOf", "isPreviousVersionOf",
    "isPartOf", "hasPart", "isPublishedIn", "isReferencedBy", "references", "isDocumentedBy", "documents",
    "isCompiledBy", "compiles", "isVariantFormOf", "isOriginalFormOf", "isIdenticalTo", "isReviewedBy", "reviews",
    "isDerivedFrom", "isSourceOf", "isRequiredBy", "requires", "isObsoletedBy", "obsoletes", "collects",
    "isCollectedBy", "isTranslationOf", "hasTranslation",
)}


def _get(value, *keys):
    """value[k1][k2]...: None where a key is missing; TypeError where a step is not a JSON object."""
    path = []
    for key in keys:
        if value is None:
            return None
        if not isinstance(value, dict):
            where = ".".join(path) or "record"
            raise TypeError(f"{where} is a {type(value).__name__}, not an object")
        value = value.get(key)
        path.append(key)
    return value


def _items(value, what: str) -> list:
    """A JSON list (None: empty); anything else is a TypeError naming `what`."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"{what} is a {type(value).__name__}, not a list")
    return value


def _first(*values):
    return next((value for value in values if value is not None), None)


def _id_or_self(value, key: str = "id"):
    """A vocabulary entry: legacy writes a string or {"id": ...}, InvenioRDM {"id": ...}."""
    return _get(value, key) if isinstance(value, dict) else value


def _int(value) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and value.isascii() and value.lstrip("-").isdigit():
        return int(value)
    raise TypeError(f"{json.dumps(value)[:80]} is not a record id")


def _meta(raw: dict, *keys):
    return _get(raw, "metadata", *keys)


def _language(raw: dict):
    languages = _items(_meta(raw, "languages"), "metadata.languages")
    return _first(_meta(raw, "language"), _id_or_self(languages[0]) if languages else None)


def _license(raw: dict):
    rights = _items(_meta(raw, "rights"), "metadata.rights")
    return _first(_id_or_self(_meta(raw, "license")), _id_or_self(rights[0]) if rights else None)


def _access_right(raw: dict):
    """Legacy access_right; InvenioRDM's access {record, files, embargo.active} said the same way."""
    legacy = _meta(raw, "access_right")
    if legacy is not None or _get(raw, "access") is None:
        return legacy
    if _get(raw, "access", "embargo", "active") is True:
        return "embargoed"
    files = _get(raw, "access", "files")
    return {"public": "open", "restricted": "restricted"}.get(files, files) if isinstance(files, str) else files


def _resource_type(raw: dict):
    """Legacy {"type": "software", "subtype"?}; InvenioRDM {"id": "software"} or {"id": "publication-article"}."""
    value = _meta(raw, "resource_type")
    if isinstance(value, dict) and "type" not in value and isinstance(value.get("id"), str):
        return value["id"].split("-", 1)[0]
    return _id_or_self(value, "type")


def _keywords(raw: dict) -> list:
    subjects = [_id_or_self(item, "subject") for item in _items(_meta(raw, "subjects"), "metadata.subjects")]
    return _items(_meta(raw, "keywords"), "metadata.keywords") + subjects


def _creator(item) -> dict:
    """Legacy {name, affiliation, orcid}; InvenioRDM {person_or_org: {name, identifiers}, affiliations: [{name}]}."""
    if not isinstance(item, dict):
        raise TypeError(f"a creator is a {type(item).__name__}, not an object")
    if "person_or_org" not in item:
        return {"name": item.get("name") or "", "affiliation": item.get("affiliation"), "orcid": item.get("orcid")}
    person = _get(item, "person_or_org") or {}
    name = _get(person, "name")
    if name is None and _get(person, "family_name") is not None:
        name = ", ".join(part for part in (person["family_name"], _get(person, "given_name")) if part)
    orcids = [_get(i, "identifier") for i in _items(_get(person, "identifiers"), "identifiers") if _get(i, "scheme") == "orcid"]
    affiliations = [_get(a, "name") for a in _items(_get(item, "affiliations"), "affiliations")]
    names = [a for a in affiliations if a is not None]
    affiliation = "; ".join(names) if all(isinstance(a, str) for a in names) else names
    return {"name": name or "", "affiliation": affiliation or None, "orcid": orcids[0] if orcids else None}


def _communities(raw: dict) -> list:
    legacy = [_get(c, "id") for c in _items(_meta(raw, "communities"), "metadata.communities")]
    entries = _items(_get(raw, "parent", "communities", "entries"), "parent.communities.entries")
    return [c for c in legacy + [_get(entry, "slug") for entry in entries] if c]


def _related(raw: dict) -> list[dict]:
    """Legacy {identifier, relation, scheme, resource_type: str}; InvenioRDM {.., relation_type: {id}, resource_type: {id}}."""
    related = []
    for item in _items(_meta(raw, "related_identifiers"), "metadata.related_identifiers"):
        if not _get(item, "identifier"):
            continue
        relation = _first(_get(item, "relation"), _id_or_self(_get(item, "relation_type")))
        related.append({
            "identifier": item["identifier"],
            "relation": _RELATIONS.get(relation.lower(), relation) if isinstance(relation, str) else relation,
            "scheme": _get(item, "scheme"),
            "resource_type": _id_or_self(_get(item, "resource_type")),
        })
    return related


_METADATA: dict[str, Callable[[dict], object]] = {
    "concept_id": lambda raw: _int(_first(_get(raw, "conceptrecid"), _get(raw, "parent", "id"))),
    "doi": lambda raw: _first(_get(raw, "doi"), _meta(raw, "doi"), _get(raw, "pids", "doi", "identifier")),
    "concept_doi": lambda raw: _first(_get(raw, "conceptdoi"), _get(raw, "parent", "pids", "doi", "identifier")),
    "title": lambda raw: _first(_meta(raw, "title"), _get(raw, "title")),
    "description": lambda raw: _meta(raw, "description"),
    "publication_date": lambda raw: _meta(raw, "publication_date"),
    "version": lambda raw: _meta(raw, "version"),
    "language": _language,
    "license": _license,
    "access_right": _access_right,
    "resource_type": _resource_type,
    "keywords": _keywords,
    "creators": lambda raw: [_creator(item) for item in _items(_meta(raw, "creators"), "metadata.creators")],
    "communities": _communities,
    "related_identifiers": _related,
    "github_url": lambda raw: github_url(_related(raw)),
}
