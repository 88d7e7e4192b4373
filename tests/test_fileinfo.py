import pytest

from beam_zml.core import fileinfo


def test_extension_is_lower_case_without_dot_and_empty_for_dotfiles():
    assert fileinfo.extension("src/Main.PY") == "py"
    assert fileinfo.extension("a/archive.tar.gz") == "gz"
    assert fileinfo.extension("Makefile") == ""
    assert fileinfo.extension("dir.d/.gitignore") == ""


def test_language_from_name_whole_name_and_shebang():
    assert fileinfo.language("pkg/mod.py") == "Python"
    assert fileinfo.language("include/x.hpp") == "C++"
    assert fileinfo.language("CMakeLists.txt") == "CMake"
    assert fileinfo.language("notes.txt") == "Text"
    assert fileinfo.language("analysis.R") == "R"
    assert fileinfo.language("lib/Module.pm") == "Perl"
    assert fileinfo.language("Dockerfile") == "Docker"
    assert fileinfo.language("bin/tool", b"#!/usr/bin/env python3\nprint(1)\n") == "Python"
    assert fileinfo.language("bin/run", b"#!/bin/bash\necho\n") == "Bash"
    assert fileinfo.language("LICENSE", b"MIT License\n") == "Text"
    assert fileinfo.language("logo.png", b"\x89PNG\0", binary=True) == "Binary"


def test_binary_means_a_nul_in_the_first_8_kib():
    assert fileinfo.is_binary(b"abc\0def")
    assert not fileinfo.is_binary(b"plain text\n")
    assert not fileinfo.is_binary(b"x" * 8192 + b"\0")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-32-be"])
def test_utf16_and_utf32_text_with_a_byte_order_mark_is_text(encoding):
    """Visual Studio writes .cs, .rc and .vcxproj.filters files as UTF-16 with a BOM."""
    text = "\ufeffnamespace Demo {\r\n    class A {}\r\n}\r\n"  # the BOM in the text, so the -be codecs write it too
    data = text.encode(encoding) if encoding.endswith("be") else text[1:].encode(encoding)

    assert data[:2] in (b"\xff\xfe", b"\xfe\xff") or data[:4] in (b"\xff\xfe\0\0", b"\0\0\xfe\xff")
    assert b"\0" in data and not fileinfo.is_binary(data)


def test_a_utf8_byte_order_mark_excuses_no_nul_and_utf16_needs_its_mark():
    assert fileinfo.is_binary(b"\xef\xbb\xbfabc\0def")
    assert fileinfo.is_binary("class A {}".encode("utf-16-le"))  # no mark: NUL bytes, so binary as git says


def test_vcs_folders():
    assert fileinfo.in_vcs_dir(".git/config")
    assert fileinfo.in_vcs_dir("sub/.svn/entries")
    assert not fileinfo.in_vcs_dir(".gitignore")
    assert not fileinfo.in_vcs_dir("docs/git/notes.md")
