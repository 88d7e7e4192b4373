"""The layout's rules, checked on the source: which modules may import Beam, and which way imports point."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "beam_zml"
# The Beam layer: only these import apache_beam. Everything else is plain Python, testable without a pipeline.
BEAM_LAYER = ("transforms/", "sinks/", "runners/", "testing/", "storage.py")
MODULES = sorted(PACKAGE.rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


@pytest.mark.parametrize("path", MODULES, ids=relative)
def test_only_the_beam_layer_imports_apache_beam(path):
    uses_beam = any(name == "apache_beam" or name.startswith("apache_beam.") for name in imported_modules(path))
    assert not uses_beam or relative(path).startswith(BEAM_LAYER), f"{relative(path)} imports apache_beam"


@pytest.mark.parametrize("path", MODULES, ids=relative)
def test_the_package_never_imports_the_pipelines(path):
    assert not any(name == "pipelines" or name.startswith("pipelines.") for name in imported_modules(path))


@pytest.mark.parametrize("folder", sorted(p.parent for p in PACKAGE.glob("*/__init__.py")), ids=lambda p: p.name)
def test_each_subpackage_says_what_lives_there(folder):
    docstring = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
    assert docstring and len(docstring) > 80, f"{folder.name}/__init__.py needs a paragraph saying what lives there"


def test_the_rule_catches_a_plain_module_that_imports_beam(tmp_path):
    module = tmp_path / "plain.py"
    module.write_text("from apache_beam.io.filesystems import FileSystems\n")
    assert "apache_beam.io.filesystems" in imported_modules(module)
