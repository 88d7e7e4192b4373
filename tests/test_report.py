"""`zml report`: statistics from a dataset built from real code, the HTML page and its PNGs."""

from __future__ import annotations

import collections
import re
import shutil
import sysconfig
from html.parser import HTMLParser
from pathlib import Path

import pytest

from beam_zml.arguments import counted
from beam_zml.consume.dataset import default_dest, read_manifest, read_rows
from beam_zml.consume.report import count_files, repository_file_kinds, zipf_fit
from beam_zml.core.records import local_record_id
from pipelines import build_dataset, cli

STDLIB = Path(sysconfig.get_paths()["stdlib"])

# Which repository has which file at its root: the counts the report must find.
EXPECTED_REPOSITORY_FILES = {
    "README": 2,
    "LICENSE or COPYING": 2,
    "CITATION.cff": 1,
    ".zenodo.json": 1,
    "Dockerfile": 2,
    "Singularity": 1,
}


def write_repositories(root: Path) -> list[Path]:
    """Three small repositories of real standard-library code with the files a Zenodo record ships, and a corrupt zip."""
    alpha, beta, gamma = root / "alpha", root / "beta", root / "gamma"
    shutil.copytree(STDLIB / "json", alpha / "json", ignore=shutil.ignore_patterns("__pycache__"))
    (alpha / "README.md").write_text("# alpha\n\nThe json package, as a repository.\n")
    (alpha / "LICENSE").write_text("MIT License\n\nPermission is hereby granted, free of charge, ...\n")
    (alpha / "Dockerfile").write_text("FROM python:3.11\nCOPY json /app/json\n")
    (alpha / "CITATION.cff").write_text("cff-version: 1.2.0\ntitle: alpha\n")
    beta.mkdir()
    shutil.copy(STDLIB / "textwrap.py", beta / "textwrap.py")
    shutil.copy(STDLIB / "shlex.py", beta / "shlex.py")
    (beta / "readme.rst").write_text("beta\n====\n")
    (beta / "COPYING").write_text("GPL\n")
    (beta / "Singularity.def").write_text("Bootstrap: docker\nFrom: python:3.11\n")
    (beta / ".zenodo.json").write_text('{"title": "beta"}\n')
    (beta / "data.bin").write_bytes(b"\0\1\2" * 100)
    (beta / "empty.txt").write_text("")
    (gamma / "docs").mkdir(parents=True)
    shutil.copy(STDLIB / "colorsys.py", gamma / "colorsys.py")
    (gamma / "docs" / "README.md").write_text("Not at the root, so not counted.\n")
    (gamma / "Dockerfile.dev").write_text("FROM python:3.11-slim\n")
    (gamma / "Makefile").write_text("all:\n\tpython colorsys.py\n")
    corrupt = root / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04" + bytes(range(256)))
    return [alpha, beta, gamma, corrupt]


class Tables(HTMLParser):
    """The body rows of every <table id=...> of a page, as lists of cell texts, and every <img src>."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self._table: str | None = None
        self._in_body = False
        self._cell: list[str] | None = None
        self.feed(page)

    def __getitem__(self, table_id: str) -> list[list[str]]:
        return self.tables[table_id]

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs["id"]
            self.tables[self._table] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.tables[self._table].append([])
        elif tag == "td" and self._in_body:
            self._cell = []
        elif tag == "img":
            self.images.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "tbody":
            self._in_body = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def repositories(tmp_path_factory) -> list[Path]:
    return write_repositories(tmp_path_factory.mktemp("repositories"))


@pytest.fixture(scope="module")
def built(repositories, tmp_path_factory) -> str:
    output = str(tmp_path_factory.mktemp("built") / "dataset")
    build_dataset.run(["--local", *map(str, repositories), "--output", output])
    return output


@pytest.fixture(scope="module")
def page(built, tmp_path_factory) -> tuple[Path, Tables]:
    """The report written with the defaults, from a working directory of its own."""
    workdir = tmp_path_factory.mktemp("workdir")
    before = sorted(path.relative_to(built) for path in Path(built).rglob("*"))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        assert cli.main(["report", built]) == 0
    assert sorted(path.relative_to(built) for path in Path(built).rglob("*")) == before, "nothing written into the dataset"
    index = workdir / "dataset-report" / "index.html"
    return index, Tables(index.read_text(encoding="utf-8"))


def test_the_last_line_says_where_the_report_is(built, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["report", built + "/", "--top", "2"]) == 0  # a trailing slash still names the dataset
    assert capsys.readouterr().out.splitlines()[-1] == f"zml report: report written to {tmp_path / 'dataset-report' / 'index.html'}"


@pytest.mark.parametrize(
    "output, expected",
    [("zml-stdlib", "zml-stdlib-report"), ("/data/sets/zml-stdlib/", "zml-stdlib-report"),
     ("gs://bucket/zenodo-10k", "zenodo-10k-report"), ("gs://bucket/zenodo-10k/", "zenodo-10k-report")],
)
def test_default_dest_is_named_after_the_dataset_in_the_current_directory(output, expected):
    assert default_dest(output, "report") == expected


def test_repository_files_are_found_at_the_root_in_any_case():
    assert repository_file_kinds("README.md") == ["README"]
    assert repository_file_kinds("readme") == ["README"]
    assert repository_file_kinds("Licence.txt") == ["LICENSE or COPYING"]
    assert repository_file_kinds("Singularity.gpu") == ["Singularity"]
    assert repository_file_kinds("dockerfile") == ["Dockerfile"]
    assert repository_file_kinds("citation.CFF") == ["CITATION.cff"]
    assert repository_file_kinds("docs/README.md") == []
    assert repository_file_kinds("Dockerfiles") == [] and repository_file_kinds("setup.py") == []


def test_count_files_counts_each_repository_once_and_only_ok_ones():
    def row(record_id, path, status="imaged", n_segments=1, reason=None):
        extension = path.rsplit(".", 1)[1] if "." in path else ""
        return {"record_id": record_id, "path": path, "size": 10, "extension": extension, "language": "Text",
                "status": status, "n_segments": n_segments, "reason": reason}

    files = [row(1, "README.md"), row(1, "README.rst"), row(2, "readme.txt"), row(3, "README"),
             row(1, "a.py", n_segments=3), row(2, "b.bin", status="skipped", n_segments=0, reason="binary")]
    counted = count_files(files, ok_records={1, 2})
    assert counted["repository_files"]["README"] == 2
    by_name = {entry.pop("name"): entry for entry in counted["extensions"]}
    assert by_name["md"] == {"files": 1, "imaged": 1, "images": 1, "bytes": 10}
    assert by_name["py"]["images"] == 3 and by_name["(none)"]["files"] == 1 and by_name["bin"]["imaged"] == 0
    assert counted["skipped"] == [{"name": "binary", "files": 1, "bytes": 10}]


def test_zipf_fit_finds_the_exponent_of_a_power_law():
    fit = zipf_fit([round(100_000 * rank**-1.2) for rank in range(1, 60)])
    assert fit["exponent"] == pytest.approx(1.2, abs=0.01)
    assert fit["scale"] == pytest.approx(100_000, rel=0.02)
    assert zipf_fit([5, 3]) is None


def test_headline_agrees_in_number(page):
    _, tables = page
    headline = re.search(r'<p id="headline">([^<]+)</p>', page[0].read_text(encoding="utf-8")).group(1)
    assert headline.startswith("3 repositories read (1 failed): ")


def test_counted_agrees_in_number():
    assert [counted(n, "repository", "repositories") for n in (0, 1, 2, 1500)] == [
        "0 repositories", "1 repository", "2 repositories", "1,500 repositories"]
    assert counted(1, "file") == "1 file" and counted(3, "file") == "3 files"


def test_summary_table_holds_the_manifest_counts(built, page):
    _, tables = page
    summary = dict(tables["summary"])
    counts = read_manifest(built)["counts"]
    assert summary["records ok"] == "3" and summary["records failed"] == "1"
    assert summary["files seen"] == f"{counts['files']['seen']:,}"
    assert summary["files imaged"] == f"{counts['files']['imaged']:,}"
    assert summary["images"] == f"{counts['images']:,}"
    assert summary["bytes seen"].startswith(f"{counts['bytes']['seen']:,}")
    for reason, n in counts["files"]["skipped"].items():
        assert summary[f"files skipped: {reason}"] == f"{n:,}"
    assert {"binary", "empty"} <= set(counts["files"]["skipped"])


def test_repository_files_table_counts_what_the_fixture_made(page):
    _, tables = page
    found = {kind: int(n) for kind, n, _ in tables["repository_files"]}
    assert found == EXPECTED_REPOSITORY_FILES
    shares = {kind: share for kind, _, share in tables["repository_files"]}
    assert shares["README"] == "66.7%" and shares["Singularity"] == "33.3%"


def test_extension_and_language_tables_match_files(built, page):
    _, tables = page
    rows = list(read_rows(built, "files"))
    for table, field in (("extensions", "extension"), ("languages", "language")):
        expected = collections.defaultdict(lambda: [0, 0, 0])
        for row in rows:
            counts = expected[row[field] or ("(none)" if field == "extension" else "(unknown)")]
            counts[0] += 1
            counts[1] += row["status"] == "imaged"
            counts[2] += row["n_segments"]
        shown = {name: [int(value.replace(",", "")) for value in values[:3]] for name, *values in tables[table]}
        assert shown == {name: counts for name, counts in expected.items() if name in shown}
        assert len(shown) == min(20, len(expected))
    assert "py" in {name for name, *_ in tables["extensions"]}


def test_skip_reasons_failures_and_largest_repositories(built, repositories, page):
    _, tables = page
    skipped = {reason: int(files) for reason, files, _ in tables["skipped"]}
    assert skipped == read_manifest(built)["counts"]["files"]["skipped"]
    assert [row[0] for row in tables["failed_records"]] == [str(local_record_id(str(repositories[-1])))]
    largest = {row[1]: int(row[4].replace(",", "")) for row in tables["largest_repositories"]}
    records = {row["title"]: row["n_images"] for row in read_rows(built, "records") if row["status"] == "ok"}
    assert largest == records


def test_every_image_of_the_page_is_a_png_written_next_to_it(page):
    index, tables = page
    assert len(tables.images) == 6
    for name in tables.images:
        data = (index.parent / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) > 5_000, name
    text = index.read_text(encoding="utf-8")
    assert len(re.findall(r"<figcaption>[^<]+</figcaption>", text)) == 6
    assert re.search(r'<p id="zipf">Zipf law of extensions: fitted exponent s = \d+\.\d\d\.</p>', text)


def test_dest_option_writes_elsewhere(built, tmp_path):
    assert cli.main(["report", built, "--dest", str(tmp_path / "site"), "--top", "3"]) == 0
    tables = Tables((tmp_path / "site" / "index.html").read_text(encoding="utf-8"))
    assert len(tables.tables["extensions"]) == 3
    assert all((tmp_path / "site" / name).is_file() for name in tables.images)


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], "the following arguments are required: OUT"),
        (["/nonexistent/dataset"], "/nonexistent/dataset: no dataset.json, so not a finished dataset"),
        (["OUT", "--top", "0"], "argument --top: must be a positive integer"),
    ],
)
def test_bad_input_gets_one_line_and_status_2(capsys, argv, expected):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["report", *argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith("zml report: error: ") and err.count("\n") == 1 and expected in err, err
