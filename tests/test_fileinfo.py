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


def test_vcs_folders():
    assert fileinfo.in_vcs_dir(".git/config")
    assert fileinfo.in_vcs_dir("sub/.svn/entries")
    assert not fileinfo.in_vcs_dir(".gitignore")
    assert not fileinfo.in_vcs_dir("docs/git/notes.md")
