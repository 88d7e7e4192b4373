"""Per-file facts that need no decoding: extension, language, binary-ness, VCS folders."""

from __future__ import annotations

import functools
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

# Pygments names a few kinds in ways researchers would not look for.
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

    Such text is full of NUL bytes (every ASCII character has one), and SPEC §3 reads it
    in the encoding its byte-order mark names; a UTF-8 mark excuses no NUL.
    """
    encoding, mark = text_encoding(data)
    if mark and encoding != "utf-8":
        return False
    return b"\0" in data[:BINARY_SNIFF_BYTES]


def language(path: str, data: bytes | None = None, *, binary: bool = False) -> str:
    """The language or file kind, from the file name, else the shebang line.

    Names come from Pygments' lexer table (hundreds of languages); unknown text is
    "Text" and anything binary is "Binary".
    """
    if binary:
        return "Binary"
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
