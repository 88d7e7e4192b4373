"""Corpora of real code for the benchmarks, the same on every machine: the standard library's and the
installed packages' own text files, copied (or hard-linked) into a folder, one folder a repository.

No Beam here: plain files in, plain folders out. Every function walks in sorted order, so a corpus is
the same from run to run on one machine.
"""

from __future__ import annotations

import os
import shutil
import sysconfig
from collections.abc import Iterator
from pathlib import Path

# Extensions of text files that the stdlib and most packages ship (lower case, no dot).
TEXT_EXTENSIONS = frozenset({
    "py", "pyi", "pyx", "pxd", "c", "h", "cc", "cpp", "hpp", "cu", "txt", "rst", "md", "toml", "xml", "json",
    "dectest", "cfg", "ini", "html", "css", "js", "sh", "bat", "ps1", "csv", "pem", "def", "in", "expected",
    "xsl", "mk", "yaml", "yml", "proto", "f", "f90",
})  # fmt: skip
SKIPPED_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__"})


def stdlib_root() -> Path:
    """The folder of this Python's standard library (its *.py sources)."""
    return Path(sysconfig.get_paths()["stdlib"])


def text_files(root: Path, *, max_file_bytes: int | None = None, skipped_dirs=SKIPPED_DIRS) -> Iterator[tuple[Path, int]]:
    """(path, size in bytes) of every regular text file (by TEXT_EXTENSIONS) under `root`, in sorted order.

    Symlinks are left out, as are folders named in `skipped_dirs` and files over `max_file_bytes` (if given).
    """
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if name not in skipped_dirs)
        for name in sorted(names):
            extension = name.rpartition(".")[2].lower() if "." in name else ""
            path = Path(folder, name)
            if extension not in TEXT_EXTENSIONS or path.is_symlink() or not path.is_file():
                continue
            size = path.stat().st_size
            if max_file_bytes is None or size <= max_file_bytes:
                yield path, size


def copy_text_files(source: Path, destination: Path, max_bytes: int | None = None, **filters) -> int:
    """Copy `source`'s text files (same relative paths) into `destination`, up to `max_bytes` in all; bytes copied.

    Files are hard-linked where the file system allows (same bytes, no copy), else copied.
    """
    total = 0
    for path, size in text_files(source, **filters):
        if max_bytes is not None and total + size > max_bytes:
            break
        target = destination / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(path, target)
        total += size
    destination.mkdir(parents=True, exist_ok=True)
    return total


def stdlib_corpus(destination: Path, max_bytes: int = 60_000_000) -> Path:
    """The stdlib's text files (no site-packages, no __pycache__), at most `max_bytes`, as one repository."""
    copy_text_files(stdlib_root(), destination, max_bytes)
    return destination


def stdlib_packages(destination: Path, records: dict[str, list[str]]) -> list[Path]:
    """One repository per entry of `records` (name -> stdlib packages), each the packages' text files.

    A package this Python lacks is skipped.
    """
    folders = []
    for record, packages in records.items():
        folder = destination / record
        for package in packages:
            if (stdlib_root() / package).is_dir():
                copy_text_files(stdlib_root() / package, folder / package)
        folder.mkdir(parents=True, exist_ok=True)
        folders.append(folder)
    return folders


def stdlib_python_files(max_file_bytes: int = 100_000) -> list[bytes]:
    """The bytes of every stdlib *.py file of at most `max_file_bytes` (no test folders), in a stable order."""
    skipped = SKIPPED_DIRS | {"test", "tests", "idle_test"}
    return [
        path.read_bytes()
        for path, _ in text_files(stdlib_root(), max_file_bytes=max_file_bytes, skipped_dirs=skipped)
        if path.suffix == ".py"
    ]


def packages_corpus(destination: Path, site_packages: Path, *, min_bytes: int, min_repositories: int) -> list[Path]:
    """The text files of installed top-level packages, one repository each, largest first, until both minimums are met.

    Packages are the folders of `site_packages` holding an __init__.py (not *.dist-info); each becomes
    `destination/<package>`. `min_bytes` counts every text file (a build images those of at most
    100,000 bytes and lists the rest). Raises ValueError if `site_packages` does not hold enough.
    """
    candidates = []
    for entry in sorted(site_packages.iterdir()):
        if entry.is_dir() and not entry.is_symlink() and (entry / "__init__.py").is_file():
            candidates.append((sum(size for _, size in text_files(entry)), entry))
    candidates.sort(key=lambda pair: (-pair[0], pair[1].name))
    chosen, total = [], 0
    for size, package in candidates:
        if total >= min_bytes and len(chosen) >= min_repositories:
            break
        if size == 0:
            continue
        copy_text_files(package, destination / package.name)
        chosen.append(destination / package.name)
        total += size
    if total < min_bytes or len(chosen) < min_repositories:
        raise ValueError(f"{site_packages} holds {total:,} bytes in {len(chosen)} packages: too few")
    return chosen


def many_small_files(destination: Path, total_bytes: int, seed_files: list[Path] | None = None) -> tuple[int, int]:
    """One repository of `total_bytes` or more in small text files: the stdlib's *.py files again and again.

    Each copy is a hard link where possible (distinct names, no disk used), 1,000 files a folder.
    Returns (files, bytes).
    """
    seeds = seed_files or [path for path, _ in text_files(stdlib_root(), max_file_bytes=100_000) if path.suffix == ".py"]
    sizes = [path.stat().st_size for path in seeds]
    files = total = 0
    while total < total_bytes:
        for path, size in zip(seeds, sizes):
            target = destination / f"d{files // 1000:05d}" / f"f{files:07d}_{path.name}"
            if files % 1000 == 0:
                target.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(path, target)
            files += 1
            total += size
            if total >= total_bytes:
                break
    return files, total


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
