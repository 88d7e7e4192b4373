"""Shared fixtures: small real repositories on disk, and readers for a built dataset."""

from __future__ import annotations

import io
import os
import shutil
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from beam_zml.core import fileinfo

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


@pytest.fixture
def without_enry(monkeypatch):
    """As where enry-python has no wheel (Windows, Linux on ARM): `import enry` fails, labels fall back to Pygments."""
    monkeypatch.setitem(sys.modules, "enry", None)
    fileinfo._enry.cache_clear()
    yield
    monkeypatch.undo()
    fileinfo._enry.cache_clear()
