"""The one door to Beam's FileSystems: every read, write, listing and deletion of beam_zml goes through here.

Paths are local paths or any URL Beam's FileSystems understand (gs://, s3://, hdfs://). Writes that
others may read are made whole under a hidden temporary name and renamed into place, so that nothing
partial is ever visible under a final name. Listings and deletions never take a caller's path as a
glob pattern: a folder named `out[1]` or `a*b` matches itself only.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from typing import IO, Callable, Iterable

from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems

TEMP_SUFFIX = ".tmp"
_GLOB_SPECIAL = re.compile(r"([*?\[\]])")


def join(base: str, *parts: str) -> str:
    """`base` and `parts` joined with the separator of `base`'s file system."""
    return FileSystems.join(base, *parts)


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def open_read(path: str) -> IO[bytes]:
    """A binary reader of `path`, never decompressed on the way (a .gz is read as its bytes).

    Raises OSError (Beam's BeamIOError is one) when `path` cannot be opened.
    """
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def create(path: str, mime_type: str = "application/octet-stream") -> IO[bytes]:
    """A binary writer of `path`, written as is. Use `write_atomically` for anything a reader may see half-done."""
    return FileSystems.create(path, mime_type=mime_type, compression_type=CompressionTypes.UNCOMPRESSED)


def temp_name(final: str) -> str:
    """A hidden name beside `final`, unique per attempt, that no reader's glob picks up."""
    directory, name = final.rsplit("/", 1)
    return f"{directory}/.{name}.{uuid.uuid4().hex}{TEMP_SUFFIX}"


def write_atomically(final: str, write: Callable[[IO[bytes]], object], mime_type: str = "application/octet-stream") -> None:
    """Write through `write(fileobj)` to a temporary name, then rename it to `final`.

    Attempts of the same shard may run at once (a retried or speculative bundle): each renames its own
    temporary file over `final`, which local files, GCS and S3 allow. Only where a rename cannot replace
    (HDFS) is `final` deleted first, and a concurrent attempt having deleted it already is no error.
    """
    if "://" not in final:
        final = os.path.abspath(final)  # a bare file name is one of the current folder
    temp = temp_name(final)
    with create(temp, mime_type) as handle:
        write(handle)
    try:
        FileSystems.rename([temp], [final])
    except BeamIOError:
        with contextlib.suppress(BeamIOError):
            delete([final])
        FileSystems.rename([temp], [final])


def list_folder(folder: str, name_pattern: str = "*") -> list[str]:
    """The paths directly in `folder` whose name matches the glob `name_pattern`; `folder` is taken literally.

    Beam's glob has no way to quote a character, so each glob character of `folder` is matched as any one
    character (``?``) and the paths outside `folder` itself are dropped.
    """
    inside = join(folder, "")
    results = FileSystems.match([join(_GLOB_SPECIAL.sub("?", folder), name_pattern)])
    return [meta.path for result in results for meta in result.metadata_list if meta.path.startswith(inside)]


def delete(paths: Iterable[str]) -> None:
    """Delete files or folders (with what they hold), each path taken literally; one already gone is no error.

    Beam's local file system deletes whatever a path matches as a glob (`LocalFileSystem.delete`
    calls `match`): `out[1]/x` would miss itself and hit `out1/x`, and a folder would not be matched
    at all. So local paths are deleted here; the others go to FileSystems as they are.
    """
    paths = list(paths)
    for path in (path for path in paths if "://" not in path):
        with contextlib.suppress(FileNotFoundError):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
    remote = [path for path in paths if "://" in path]
    if remote:
        FileSystems.delete(remote)
