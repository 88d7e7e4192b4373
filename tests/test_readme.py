"""The README, run as a newcomer runs it: every ```sh/```bash block and ```python snippet, top to bottom.

The blocks of README.md and then docs/dataset-format.md (whose examples read the dataset the
README builds) run in order, each as written, in a copy of this checkout in a temporary folder,
as in one terminal session: shell blocks with `bash -e -o pipefail`, each starting in the
directory and with the environment the previous one left (so `cd`, `export` and
`source .venv/bin/activate` carry over, as in a newcomer's terminal); Python snippets with the
copy's `.venv/bin/python`, in that directory and environment. A block fails the test if it exits
non-zero.

A block preceded by `<!-- readme-test: skip (REASON) -->` is not run, and the test is reported as
skipped with REASON: the ones that need zenodo.org, a cluster, or that run this test suite.

One thing differs from a fresh machine, to keep the run offline and within CI's time: before the
README's `python3 -m venv .venv && .venv/bin/pip install -e .` runs, `.venv` already exists, made
by this Python with a .pth file that puts this environment's site-packages on its path, so pip
finds the dependencies installed and installs only beam_zml (editable, from the copy). `python3`
is this Python. Set README_TEST_FRESH_VENV=1 to skip that (a real install from PyPI, minutes).
"""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ("README.md", "docs/dataset-format.md")  # in this order: the docs read what the README builds
RUNNABLE = {"sh": "shell", "bash": "shell", "python": "python"}
FENCE = re.compile(
    r"(?:<!-- readme-test: skip \((?P<reason>[^)]+)\) -->\s*\n)?^```(?P<language>[\w-]*)[ \t]*\n(?P<code>.*?)^```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
TIMEOUT = 1200  # seconds for one block: the README's first build and `zml train` take minutes on 2 cores
OUTPUT_SHOWN = 6000  # characters of a failing block's output in the failure message


@dataclass(frozen=True)
class Block:
    document: str
    line: int
    kind: str  # "shell" or "python"
    code: str
    skip: str | None  # the reason given in the document's markup, or None

    @property
    def name(self) -> str:
        return f"{self.document}:{self.line}-{self.kind}"


def blocks(document: str, text: str) -> list[Block]:
    """The runnable fenced blocks of a Markdown text, in order; other fences (```, ```text...) are not run."""
    found = []
    for match in FENCE.finditer(text):
        kind = RUNNABLE.get(match["language"])
        if kind is not None:
            line = text.count("\n", 0, match.start("code"))  # the 1-based line of the opening fence
            found.append(Block(document, line, kind, match["code"], match["reason"]))
    return found


ALL_BLOCKS = [block for document in DOCUMENTS for block in blocks(document, (ROOT / document).read_text(encoding="utf-8"))]


def copy_checkout(target: Path) -> None:
    """What a fresh clone holds: the files git tracks plus new files it does not ignore (uncommitted work too)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode("utf-8").split("\0")
    for relative in filter(None, listed):
        source = ROOT / relative
        if source.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)


def seed_virtualenv(clone: Path) -> None:
    """`.venv` made by this Python, seeing this environment's packages through a .pth file (not beam_zml itself)."""
    subprocess.run([sys.executable, "-m", "venv", str(clone / ".venv")], check=True)
    inside = subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    ours = [path for path in sys.path if path.endswith("site-packages") and Path(path).is_dir()]
    ours += [path for path in site.getsitepackages() + [sysconfig.get_paths()["purelib"]] if path not in ours]
    (Path(inside) / "zz_readme_test_base.pth").write_text("".join(f"{path}\n" for path in ours))


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> tuple[Path, dict]:
    """A copy of the checkout, and the environment its blocks run in (`python3` is this Python)."""
    clone = tmp_path_factory.mktemp("readme") / "beam_zml"
    clone.mkdir()
    copy_checkout(clone)
    (clone.parent / "checkout.txt").write_text("".join(f"{name}\n" for name in sorted(os.listdir(clone))))
    if os.environ.get("README_TEST_FRESH_VENV") != "1":
        seed_virtualenv(clone)
    shims = clone.parent / "bin"
    shims.mkdir()
    base_python = getattr(sys, "_base_executable", sys.executable)
    for name in ("python3", "python"):
        (shims / name).symlink_to(base_python)
    environment = {
        name: value for name, value in os.environ.items() if name not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    }
    environment["PATH"] = f"{shims}{os.pathsep}{environment.get('PATH', '')}"
    environment.pop("README_TEST_FRESH_VENV", None)
    return clone, {"cwd": clone, "env": environment}


def run_block(block: Block, python: Path, session: dict, state: Path) -> subprocess.CompletedProcess:
    """Run one block in `session` ({"cwd", "env"}); a shell block that succeeds leaves its cwd and env there.

    Raises subprocess.TimeoutExpired past TIMEOUT seconds.
    """
    if block.kind == "shell":
        save = f'\npwd > "{state}.cwd" && env -0 > "{state}.env"\n'
        command = ["bash", "-e", "-o", "pipefail", "-c", block.code + save]
    else:
        command = [str(python), "-c", block.code]
    result = subprocess.run(
        command, cwd=session["cwd"], env=session["env"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
    )
    if block.kind == "shell" and result.returncode == 0:
        session["cwd"] = Path(Path(f"{state}.cwd").read_text().strip())
        pairs = Path(f"{state}.env").read_bytes().decode("utf-8", "surrogateescape").split("\0")
        session["env"] = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
    return result


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[block.name for block in ALL_BLOCKS])
def test_block_runs_as_written(clone, block):
    directory, session = clone
    if block.skip is not None:
        pytest.skip(f"{block.name}: {block.skip}")
    try:
        result = run_block(block, directory / ".venv" / "bin" / "python", session, directory.parent / "session")
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(f"{block.name} ran past {TIMEOUT} s:\n{block.code}\n--- output ---\n{(timeout.output or '')[-OUTPUT_SHOWN:]}")
    assert result.returncode == 0, (
        f"{block.name} exited with status {result.returncode}:\n{block.code}\n--- output ---\n{result.stdout[-OUTPUT_SHOWN:]}"
    )


def test_blocks_share_one_terminal_session(tmp_path):
    """cd, export and an activated virtualenv carry over from block to block, into the Python snippets too."""
    (tmp_path / "sub" / "bin").mkdir(parents=True)
    (tmp_path / "sub" / "bin" / "hello").write_text("#!/bin/sh\necho hello from the venv\n")
    (tmp_path / "sub" / "bin" / "hello").chmod(0o755)
    session = {"cwd": tmp_path, "env": {"PATH": os.environ["PATH"]}}
    steps = [
        Block("t.md", 1, "shell", 'cd sub && export ANSWER=42 && PATH="$PWD/bin:$PATH"\n', None),
        Block("t.md", 5, "shell", 'test "$ANSWER" = 42 && test "$(basename "$PWD")" = sub && hello\n', None),
        Block("t.md", 9, "python", 'import os; assert os.environ["ANSWER"] == "42" and os.getcwd().endswith("sub")\n', None),
        Block("t.md", 13, "shell", "false\ncd /\n", None),
    ]
    results = [run_block(step, Path(sys.executable), session, tmp_path / "state") for step in steps]
    assert [result.returncode for result in results] == [0, 0, 0, 1], [result.stdout for result in results]
    assert results[1].stdout == "hello from the venv\n"
    assert session["cwd"] == tmp_path / "sub", "a failed block (set -e) changes nothing"


def test_blocks_are_found_and_skips_are_few_and_give_a_reason():
    """The parser sees the README's blocks, and skips stay the exception."""
    readme = [block for block in ALL_BLOCKS if block.document == "README.md"]
    assert sum(block.kind == "python" for block in readme) >= 2 and sum(block.kind == "shell" for block in readme) >= 2
    skipped = [block for block in ALL_BLOCKS if block.skip is not None]
    assert all(block.skip.strip() for block in skipped)
    assert len(skipped) <= len(ALL_BLOCKS) // 2, [block.name for block in skipped]
    assert ALL_BLOCKS[0].document == "README.md" and ALL_BLOCKS[0].skip is None, "the first command is run"


def test_fence_parser_on_a_sample():
    sample = (
        "Intro\n\n```bash\necho one\n```\n\n<!-- readme-test: skip (needs zenodo.org) -->\n```sh\ncurl zenodo.org\n```\n"
        "```\nnot run\n```\n```python\nprint(2)\n```\n```text\nOUT/\n```\n"
    )
    found = blocks("sample.md", sample)
    assert [(b.kind, b.code, b.skip, b.line) for b in found] == [
        ("shell", "echo one\n", None, 3),
        ("shell", "curl zenodo.org\n", "needs zenodo.org", 8),
        ("python", "print(2)\n", None, 14),
    ]


def test_what_the_blocks_wrote_is_ignored_by_git(clone):
    """Datasets, reports, models and PNGs the README's commands made must not show up in `git status`."""
    directory, _ = clone
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    before = set((directory.parent / "checkout.txt").read_text().split())
    made = sorted(set(os.listdir(directory)) - before - {".venv"})
    assert made, "the README's blocks wrote nothing?"
    probes = [f"{name}/x" if (directory / name).is_dir() else name for name in made]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *probes], cwd=ROOT, capture_output=True, text=True)
    assert set(ignored.stdout.split()) == set(probes), f"not in .gitignore: {sorted(set(probes) - set(ignored.stdout.split()))}"
