"""One file of a repository in, its files/ row and its compressed images out."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from beam_zml.core import fileinfo
from beam_zml.core.examples import encode_file_images
from beam_zml.core.imagify import imagify
from beam_zml.core.notes import IMAGE_MEMBER


@dataclass(frozen=True)
class ImageSettings:
    """Every option that changes the images (docs/dataset-format.md#image-rules); all go into dataset.json."""

    height: int = 80
    width: int = 80
    pad: int = 32
    pixel_dtype: str = "uint16"
    replacement: int = 26
    include_binary: bool = False


def image_file(record_id: int, member, settings: ImageSettings) -> tuple[dict, bytes | None]:
    """The files/ row of one repository member and, if it was imaged, its gzip member of Examples.

    `member` is a `beam_zml.sources.repository.Member`. Skip reasons, in order: the one the
    archive reader gave (symlink, unsafe_path, ...), vcs_dir, too_large, binary, empty.
    """
    binary = fileinfo.is_binary(member.data) if member.data is not None else None
    row = file_row(
        record_id,
        member,
        reason=_skip_reason(member, binary, settings),
        extension=fileinfo.extension(member.path),
        labels=fileinfo.labels(member.path, member.data, binary=bool(binary)),  # language and Linguist's FLAGS
        is_binary=binary,
    )
    if row["reason"] is not None:
        return row, None
    images, n_lines = imagify(
        member.data,
        height=settings.height,
        width=settings.width,
        pad=settings.pad,
        dtype=settings.pixel_dtype,
        replacement=settings.replacement,
    )
    if len(images) == 0:
        row["reason"] = "empty"
        return row, None
    row.update(status="imaged", reason=None, n_lines=int(n_lines.sum()), n_segments=len(images))
    blob = encode_file_images(
        record_id=record_id,
        path=member.path,
        images=images,
        n_lines=n_lines,
        extension=row["extension"],
        language=row["language"],
        swhid=member.swhid or "",
        flags={name: row[name] for name in fileinfo.FLAGS},
    )
    return row, blob


def file_row(
    record_id: int,
    member,
    *,
    reason: str | None,
    extension: str = "",
    labels: dict | None = None,
    is_binary: bool | None = None,
) -> dict:
    """The files/ row of a member not (yet) imaged: status "skipped" with `reason` (None while imaging goes on).

    The one constructor of a files/ row: `image_file` fills in the imaged fields, and a file whose imaging
    raised gets this row with reason "error". `labels` are `fileinfo.labels(...)`: the language and the FLAGS,
    all None (unknown) when not given.
    """
    return FileRow({
        "record_id": record_id,
        "path": member.path,
        "size": member.size,
        "extension": extension,
        "language": None,
        **dict.fromkeys(fileinfo.FLAGS),
        **(labels or {}),
        "swhid": member.swhid,
        "is_binary": is_binary,
        "n_lines": 0,
        "n_segments": 0,
        "status": "skipped",
        "reason": reason,
    })


class FileRow(dict):
    """A files/ row: a dict that crosses a shuffle as its values alone.

    Beam's coder decodes every key and string of a plain dict as a new object, so a decoded row would
    hold its 15 keys again, half of its 1.7 KB; a repository's rows meet by the 100,000s in one group
    (its records/ row) and again in the files/ sink's. Pickled (the coder's fallback for a dict subclass),
    a FileRow is its values in key order; rebuilt, it shares its keys, and the few values that repeat
    across rows (extension, language, status, reason), with every other row.
    """

    def __reduce__(self):
        keys = tuple(self)
        known = _KNOWN_KEYS.index(keys) if keys in _KNOWN_KEYS else keys
        return _rebuild_file_row, (known, tuple(self.values()))


def _rebuild_file_row(keys: int | tuple[str, ...], values: tuple) -> FileRow:
    keys = _KNOWN_KEYS[keys] if isinstance(keys, int) else tuple(map(sys.intern, keys))
    return FileRow(zip(keys, (sys.intern(v) if type(v) is str and k in _FEW_VALUES else v for k, v in zip(keys, values))))


_FILE_ROW_KEYS = (
    "record_id", "path", "size", "extension", "language", *fileinfo.FLAGS, "swhid", "is_binary", "n_lines", "n_segments",
    "status", "reason",
)  # fmt: skip
# The keys of a row as file_row writes it, and of an imaged row on its way to the files/ sink (in that
# order): such a row pickles with the index of its keys, not the keys.
_KNOWN_KEYS = (_FILE_ROW_KEYS, (*_FILE_ROW_KEYS, IMAGE_MEMBER))
_FEW_VALUES = frozenset({"extension", "language", "status", "reason"})


def _skip_reason(member, binary: bool | None, settings: ImageSettings) -> str | None:
    if member.skip_reason is not None:
        return member.skip_reason
    if fileinfo.in_vcs_dir(member.path):
        return "vcs_dir"
    if member.data is None:
        return "too_large"
    if binary and not settings.include_binary:
        return "binary"
    return None
