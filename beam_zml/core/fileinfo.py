"""Per-file facts that need no decoding: extension, language and Linguist's file kinds, binary-ness, VCS folders."""

from __future__ import annotations

import functools
import importlib.metadata
import posixpath

from pygments.lexers import (
    find_lexer_class_for_filename,
    get_all_lexers,
    get_lexer_by_name,
)
from pygments.util import ClassNotFound

from beam_zml.core.imagify import text_encoding

VCS_DIRS = frozenset({".git", ".hg", ".svn"})
BINARY_SNIFF_BYTES = 8192
# Linguist's file kinds, as files/ rows (boolean, null if unknown) and Examples (int64 1/0, -1 if unknown) carry them.
FLAGS = ("is_vendored", "is_generated", "is_documentation", "is_test")

# The fallback's fixes: Pygments names a few kinds in ways researchers would not look for.
_RENAMED = {"S": "R", "Text only": "Text"}
_BY_EXTENSION = {"ipynb": "Jupyter Notebook", "pm": "Perl", "r": "R", "txt": "Text"}


def extension(path: str) -> str:
    """Lower-case extension without the dot, '' if none (dotfiles have none)."""
    name = posixpath.basename(path)
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem else ""


def in_vcs_dir(path: str) -> bool:
    """True for anything inside .git/, .hg/ or .svn/, which is history, not code."""
    return any(part in VCS_DIRS for part in path.split("/")[:-1])


def is_binary(data: bytes) -> bool:
    """Git's rule: a NUL byte in the first 8 KiB means binary; but UTF-16 and UTF-32 text, marked by its BOM, is text.

    Such text is full of NUL bytes (every ASCII character has one), and docs/dataset-format.md#image-rules reads it
    in the encoding its byte-order mark names; a UTF-8 mark excuses no NUL.
    """
    encoding, mark = text_encoding(data)
    if mark and encoding != "utf-8":
        return False
    return b"\0" in data[:BINARY_SNIFF_BYTES]


def labels(path: str, data: bytes | None = None, *, binary: bool = False) -> dict:
    """The file's `language` and FLAGS, as GitHub Linguist's rules (https://github.com/github-linguist/linguist)
    decide them, through go-enry, its Go port (https://github.com/go-enry/go-enry, via enry-python).

    `path` is the path inside the repository: the vendored and documentation rules match folders
    (`node_modules/`, `vendor/`, `docs/`), the test rule file names (`test_*.py`, `*_test.go`).
    `data` is the file's bytes, None when it was not read (then only its name counts). Returns
    {"language": str, "is_vendored": bool | None, "is_generated": ..., "is_documentation": ...,
    "is_test": ...}; the flags are None when enry-python is not installed (see `labeller`).
    """
    found = {"language": language(path, data, binary=binary)}
    enry = _enry()
    if enry is None:
        return found | dict.fromkeys(FLAGS)
    return found | {
        "is_vendored": enry.is_vendor(path),
        "is_generated": enry.is_generated(path, _as_utf8(data)),
        "is_documentation": enry.is_documentation(path),
        "is_test": enry.is_test(path),
    }


def language(path: str, data: bytes | None = None, *, binary: bool = False) -> str:
    """The language or file kind: Linguist's name for it, "Text" for text Linguist names no language for,
    "Binary" when `binary` (our binary rule, not Linguist's, decides what is imaged).

    Linguist's strategies, in its order: modeline, file name, shebang, extension, XML root, content
    heuristics (.h is C, C++ or Objective-C; .m MATLAB or Objective-C; .d D or DTrace), then a
    classifier trained on its samples among the candidates left. Without enry-python (no wheel for
    the platform), the fallback is Pygments' file-name table, then the shebang (`labeller` says which).
    """
    if binary:
        return "Binary"
    enry = _enry()
    if enry is None:
        return _pygments_language(path, data)
    return enry.get_language(path, _as_utf8(data)) or "Text"


def _as_utf8(data: bytes | None) -> bytes:
    """`data` as Linguist reads text, UTF-8: UTF-16 and UTF-32 with a byte-order mark (Visual Studio's .cs, .rc)
    are decoded as docs/dataset-format.md#image-rules, step 1, does, so that their content, not their NUL bytes, decides (.cs is C# or Smalltalk)."""
    if not data:
        return b""
    encoding, mark = text_encoding(data)
    if encoding == "utf-8":
        return data
    return data[mark:].decode(encoding, "replace").encode("utf-8")


def labeller() -> str:
    """Which rules label files in this process: "linguist (enry-python VERSION)", or "pygments VERSION"
    where enry-python is missing (it ships wheels for Linux x86-64 and macOS arm64 only)."""
    if _enry() is None:
        return f"pygments {importlib.metadata.version('pygments')}"
    return f"linguist (enry-python {importlib.metadata.version('enry-python')})"


@functools.lru_cache(maxsize=1)
def _enry():
    """The enry module, imported on first use (it starts a Go runtime), or None where it is not installed."""
    try:
        import enry
    except (ImportError, OSError):  # no wheel for this platform, or its shared library does not load
        return None
    return enry


def _pygments_language(path: str, data: bytes | None) -> str:
    """The fallback: Pygments' lexer for the file name, else for the shebang's interpreter; else "Text"."""
    found = _language_for_name(posixpath.basename(path))
    if found is None and data is not None and data.startswith(b"#!"):
        found = _language_for_shebang(data.split(b"\n", 1)[0][2:].decode("utf-8", "replace"))
    return found or "Text"


def _language_for_name(name: str) -> str | None:
    exact = _whole_name_languages().get(name)
    if exact is not None:
        return exact
    stem, dot, ext = name.rpartition(".")
    if dot and stem:
        return _BY_EXTENSION.get(ext.lower()) or _language_for_extension(ext)
    return _language_for_bare_name(name)


@functools.lru_cache(maxsize=1)
def _whole_name_languages() -> dict[str, str]:
    """Lexer file patterns without wildcards (Makefile, CMakeLists.txt, SConstruct...)."""
    return {
        pattern: _RENAMED.get(name, name)
        for name, _, patterns, _ in get_all_lexers()
        for pattern in patterns
        if not any(c in pattern for c in "*?[")
    }


@functools.lru_cache(maxsize=4096)
def _language_for_extension(ext: str) -> str | None:
    return _lexer_name("x." + ext)


@functools.lru_cache(maxsize=4096)
def _language_for_bare_name(name: str) -> str | None:
    return _lexer_name(name)


def _lexer_name(filename: str) -> str | None:
    lexer = find_lexer_class_for_filename(filename)
    return None if lexer is None else _RENAMED.get(lexer.name, lexer.name)


@functools.lru_cache(maxsize=256)
def _language_for_shebang(line: str) -> str | None:
    words = line.strip().split()
    if not words:
        return None
    interpreter = posixpath.basename(words[1] if words[0].endswith("/env") and len(words) > 1 else words[0])
    try:
        lexer = get_lexer_by_name(interpreter.rstrip("0123456789."))
    except ClassNotFound:
        return None
    return _RENAMED.get(lexer.name, lexer.name)
