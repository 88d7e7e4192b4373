"""`zml report OUT`: one HTML page of tables and PNG plots that shows a built dataset's shape in a minute.

The statistics are plain functions over the rows of files/ and records/ and over
dataset.json, returning dicts and lists, so they are tested without plotting;
`write_report` draws them with matplotlib (Agg, no display needed) and writes
the page. Every number a plot shows is also in a table of the page, for readers
who want the exact value and for tests.

files/ can hold millions of rows, so it is read once, as a stream, into counters;
only the few fields of records/ that the report uses are kept (never the trees), and
of files/ only COPY_FIELDS of imaged files, which duplicates and leakage need at once.
"""

from __future__ import annotations

import argparse
import collections
import html
import io
import os
import sys
from collections.abc import Callable, Iterable

import numpy as np

from beam_zml import storage
from beam_zml.arguments import ArgumentParser, counted, positive_int
from beam_zml.consume.dataset import (
    default_dest,
    read_errors,
    read_manifest,
    read_rows,
    refuse_dest_inside,
    require_dataset,
)
from beam_zml.core.duplicates import (
    duplication,
    is_copy_candidate,
    leakage_with_and_without_dedup,
)
from beam_zml.core.splits import SPLIT_BY, record_splits

PROG = "zml report"

# Files at a repository's root that say how it is documented, licensed, cited and packaged,
# each tested on the file's lower-case name.
REPOSITORY_FILES: dict[str, Callable[[str], bool]] = {
    "README": lambda name: name.startswith("readme"),
    "LICENSE or COPYING": lambda name: name.startswith(("license", "licence", "copying")),
    "CITATION.cff": lambda name: name == "citation.cff",
    ".zenodo.json": lambda name: name == ".zenodo.json",
    "Dockerfile": lambda name: name == "dockerfile" or name.startswith("dockerfile."),
    "Singularity": lambda name: name.startswith("singularity"),
}

NO_EXTENSION = "(none)"
NO_LANGUAGE = "(unknown)"
RECORD_FIELDS = (
    "record_id", "concept_id", "status", "error", "title", "archive_url", "n_files", "n_imaged", "n_images", "n_bytes",
)  # fmt: skip
LARGEST_REPOSITORIES = 10
TOP_DUPLICATES = 20
COPY_FIELDS = ("record_id", "path", "swhid", "status", "n_segments", "size", "language")  # what duplicates and leakage read
# The splits the leakage table checks: those of tfdata.load's defaults, stratified on language and by hash.
LEAKAGE_SPLITS = {"fractions": (0.8, 0.1, 0.1), "label": "language", "seed": 0}


def repository_file_kinds(path: str) -> list[str]:
    """The kinds of REPOSITORY_FILES that `path` is, if it sits at the repository's root (case-insensitive)."""
    if "/" in path:
        return []
    name = path.lower()
    return [kind for kind, matches in REPOSITORY_FILES.items() if matches(name)]


def count_files(files: Iterable[dict], ok_records: set[int]) -> dict:
    """One pass over files/ rows: counts by extension, language and skip reason, and repository files.

    Extensions and languages are lists of {"name", "files", "imaged", "images", "bytes"},
    most files first. "repository_files" counts, per kind, the repositories among
    `ok_records` that have such a file at their root (a repository with README.md
    and README.rst counts once).
    """
    by_extension: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    by_language: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    skipped: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    found: dict[str, set[int]] = {kind: set() for kind in REPOSITORY_FILES}
    for row in files:
        imaged = row["status"] == "imaged"
        tally = {"files": 1, "imaged": int(imaged), "images": row["n_segments"], "bytes": row["size"]}
        by_extension[row["extension"] or NO_EXTENSION].update(tally)
        by_language[row["language"] or NO_LANGUAGE].update(tally)
        if not imaged:
            skipped[row["reason"] or "unknown"].update(files=1, bytes=row["size"])
        if row["record_id"] in ok_records:
            for kind in repository_file_kinds(row["path"]):
                found[kind].add(row["record_id"])
    return {
        "extensions": _ranked(by_extension),
        "languages": _ranked(by_language),
        "skipped": _ranked(skipped),
        "repository_files": {kind: len(records) for kind, records in found.items()},
    }


def _ranked(counters: dict[str, collections.Counter]) -> list[dict]:
    """Counters as rows, most files first, then by name so equal counts keep a stable order."""
    rows = [{"name": name, **counter} for name, counter in counters.items()]
    return sorted(rows, key=lambda row: (-row["files"], row["name"]))


def zipf_fit(frequencies: list[int]) -> dict | None:
    """The Zipf law f(rank) = scale * rank**-exponent that fits `frequencies` best by least squares on log-log axes.

    None with fewer than 3 non-zero values: a line through two points says nothing.
    """
    counts = np.array(sorted(frequencies, reverse=True), dtype=float)
    counts = counts[counts > 0]
    if len(counts) < 3:
        return None
    slope, intercept = np.polyfit(np.log(np.arange(1, len(counts) + 1)), np.log(counts), 1)
    return {"exponent": float(-slope), "scale": float(np.exp(intercept))}


def distribution(values: list[int]) -> dict:
    """min, median, mean, 90th percentile and max, as the per-repository table shows them."""
    if not values:
        return {"min": 0, "median": 0, "mean": 0, "p90": 0, "max": 0}
    array = np.array(values, dtype=float)
    return {
        "min": int(array.min()),
        "median": float(np.median(array)),
        "mean": float(array.mean()),
        "p90": float(np.percentile(array, 90)),
        "max": int(array.max()),
    }


def dataset_statistics(manifest: dict, records: list[dict], files: Iterable[dict], errors: Iterable[dict]) -> dict:
    """Everything the report shows, from dataset.json and the rows of records/, files/ and errors/."""
    ok = [record for record in records if record["status"] == "ok"]
    copies: list[dict] = []  # the few fields of imaged files, for the passes that need every row at once
    counted = count_files(_keeping_copies(files, copies), {record["record_id"] for record in ok})
    counts = manifest["counts"]
    error_types = collections.Counter((error["stage"], error["error_type"]) for error in errors)
    return {
        "summary": {
            "records_ok": counts["records"]["ok"],
            "records_failed": counts["records"]["failed"],
            "files_seen": counts["files"]["seen"],
            "files_imaged": counts["files"]["imaged"],
            "files_skipped": dict(sorted(counts["files"]["skipped"].items(), key=lambda item: (-item[1], item[0]))),
            "images": counts["images"],
            "bytes_seen": counts["bytes"]["seen"],
            "bytes_imaged": counts["bytes"]["imaged"],
            "errors": counts["errors"],
            "pixel_dtype": manifest["image"]["dtype"],
            "image_shape": manifest["image"]["shape"],
        },
        **counted,
        "zipf": zipf_fit([row["files"] for row in counted["extensions"]]),
        "repositories": len(ok),
        "per_repository": {
            field: distribution([record[field] for record in ok]) for field in ("n_files", "n_imaged", "n_images", "n_bytes")
        },
        "largest_repositories": sorted(ok, key=lambda record: (-record["n_images"], record["record_id"]))[:LARGEST_REPOSITORIES],
        "per_repository_values": {field: [record[field] for record in ok] for field in ("n_files", "n_images")},
        "failed_records": [record for record in records if record["status"] != "ok"],
        "errors": [{"stage": stage, "error_type": kind, "count": n} for (stage, kind), n in error_types.most_common()],
        "duplicates": duplication(copies, TOP_DUPLICATES),
        "leakage": {
            split_by: leakage_with_and_without_dedup(copies, record_splits(records, copies, split_by=split_by, **LEAKAGE_SPLITS))
            for split_by in SPLIT_BY
        },
    }


def _keeping_copies(files: Iterable[dict], copies: list[dict]) -> Iterable[dict]:
    """`files` unchanged, appending COPY_FIELDS of each imaged file with a SWHID to `copies` on the way."""
    for row in files:
        if is_copy_candidate(row):
            copies.append({field: row[field] for field in COPY_FIELDS})
        yield row


def read_statistics(output: str) -> dict:
    """dataset_statistics of the dataset in `output`."""
    records = [{field: row[field] for field in RECORD_FIELDS} for row in read_rows(output, "records")]
    return dataset_statistics(read_manifest(output), records, read_rows(output, "files"), read_errors(output))


# Plots: each returns PNG bytes. The colours: seen in light grey, imaged in blue.
SEEN, IMAGED, ACCENT = "#c7c7c7", "#1f77b4", "#d62728"


def _new_figure(width: float, height: float):
    """A matplotlib Figure outside pyplot: no global state and no display; PNGs are drawn by Agg."""
    from matplotlib.figure import (
        Figure,  # imported here: show and export-png import this module but draw nothing
    )

    return Figure(figsize=(width, height))


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def plot_top(rows: list[dict], what: str, top: int) -> bytes:
    """Files (seen and imaged) and images of the `top` commonest kinds, as two bar charts side by side."""
    shown = rows[:top]
    names = [row["name"] for row in shown]
    y = np.arange(len(shown))
    figure = _new_figure(11, 0.3 * len(shown) + 1.6)
    left, right = figure.subplots(1, 2, sharey=True)
    left.barh(y, [row["files"] for row in shown], color=SEEN, label="seen")
    left.barh(y, [row["imaged"] for row in shown], color=IMAGED, label="imaged")
    left.set_yticks(y, names)
    left.invert_yaxis()
    left.set_xlabel("files")
    left.legend(loc="lower right")
    right.barh(y, [row["images"] for row in shown], color=IMAGED)
    right.set_xlabel("images")
    total_images = sum(row["images"] for row in rows) or 1
    share = sum(row["images"] for row in shown) / total_images
    figure.suptitle(f"The {len(shown)} commonest {what} of {len(rows)}: {share:.1%} of all images")
    return _png(figure)


def plot_rank_frequency(rows: list[dict], zipf: dict | None) -> bytes:
    """Files per extension against the extension's rank, log-log: a straight line is a Zipf law."""
    counts = [row["files"] for row in rows]
    ranks = np.arange(1, len(counts) + 1)
    figure = _new_figure(8, 5)
    axes = figure.subplots()
    axes.loglog(ranks, counts, "o", color=IMAGED, markersize=4, label="extensions")
    if zipf is not None:
        fitted = zipf["scale"] * ranks.astype(float) ** -zipf["exponent"]
        axes.loglog(ranks, fitted, "--", color=ACCENT, label=f"Zipf fit, s = {zipf['exponent']:.2f}")
    for rank, row in zip(ranks[:8], rows[:8]):
        axes.annotate(row["name"], (rank, row["files"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    axes.set_xlabel("rank of the extension (1 = most files)")
    axes.set_ylabel("files")
    axes.set_title("Rank-frequency of file extensions")
    axes.legend()
    return _png(figure)


def plot_per_repository(values: dict[str, list[int]]) -> bytes:
    """Histograms of files and images per repository, on logarithmic bins (sizes span orders of magnitude)."""
    from matplotlib.ticker import MaxNLocator

    figure = _new_figure(11, 4)
    axes = figure.subplots(1, 2)
    for ax, (field, label) in zip(axes, (("n_files", "files"), ("n_images", "images"))):
        positive = [value for value in values[field] if value > 0]
        zeros = len(values[field]) - len(positive)
        if positive:
            bins = np.geomspace(1, max(max(positive), 2) * 1.01, 30)
            ax.hist(positive, bins=bins, color=IMAGED)
            ax.axvline(np.median(positive), color=ACCENT, linestyle="--", label=f"median {np.median(positive):,.0f}")
            ax.legend()
        ax.set_xscale("log")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(f"{label} per repository")
        ax.set_ylabel("repositories")
        ax.set_title(f"{label.capitalize()} per repository" + (f" ({zeros} with none not shown)" if zeros else ""))
    return _png(figure)


def plot_repository_files(found: dict[str, int], repositories: int) -> bytes:
    """Share of repositories with each kind of documentation, licence, citation and container file."""
    kinds = list(found)
    shares = [100 * found[kind] / repositories if repositories else 0 for kind in kinds]
    figure = _new_figure(8, 3.5)
    axes = figure.subplots()
    y = np.arange(len(kinds))
    axes.barh(y, shares, color=IMAGED)
    axes.set_yticks(y, kinds)
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("% of repositories (file at the root)")
    for position, kind, share in zip(y, kinds, shares):
        axes.text(min(share + 1, 80), position, f"{found[kind]:,} of {repositories:,} ({share:.0f}%)", va="center", fontsize=9)
    axes.set_title("What repositories ship at their root")
    return _png(figure)


def plot_skipped(rows: list[dict]) -> bytes:
    """Files not imaged, by reason."""
    figure = _new_figure(8, 0.35 * max(len(rows), 1) + 1.6)
    axes = figure.subplots()
    if rows:
        y = np.arange(len(rows))
        axes.barh(y, [row["files"] for row in rows], color=SEEN)
        axes.set_yticks(y, [row["name"] for row in rows])
        axes.invert_yaxis()
        for position, row in zip(y, rows):
            axes.text(row["files"], position, f" {row['files']:,}", va="center", fontsize=9)
        axes.set_xlabel("files")
    else:
        axes.text(0.5, 0.5, "no file was skipped", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
    axes.set_title("Files not imaged, by reason")
    return _png(figure)


# The page.

def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def _size(n_bytes: int) -> str:
    """Bytes, exactly and in binary units."""
    value, unit = float(n_bytes), "B"
    for larger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{n_bytes:,} B" if unit == "B" else f"{n_bytes:,} ({value:,.1f} {unit})"


def _table(table_id: str, header: list[str], rows: list[list], text_columns: int = 1) -> str:
    """An HTML table: cells escaped, numbers with thousands separators; the first `text_columns` align left."""

    def cell(tag: str, index: int, value) -> str:
        align = ' class="text"' if index < text_columns else ""
        return f"<{tag}{align}>{html.escape(value if isinstance(value, str) else _number(value))}</{tag}>"

    head = "".join(cell("th", index, name) for index, name in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", index, value) for index, value in enumerate(row)) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _figure_html(name: str, caption: str) -> str:
    return f'<figure><img src="{name}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}</figcaption></figure>'


def _percent(part: int, whole: int, decimals: int = 1) -> str:
    return f"{100 * part / whole:.{decimals}f}%" if whole else "-"


def _summary_table(statistics: dict) -> str:
    summary = statistics["summary"]
    return _table(
        "summary",
        ["", "value"],
        [
            ["records ok", summary["records_ok"]],
            ["records failed", summary["records_failed"]],
            ["files seen", summary["files_seen"]],
            ["files imaged", summary["files_imaged"]],
            *[[f"files skipped: {reason}", n] for reason, n in summary["files_skipped"].items()],
            ["images", summary["images"]],
            ["bytes seen", _size(summary["bytes_seen"])],
            ["bytes imaged", _size(summary["bytes_imaged"])],
            ["errors", summary["errors"]],
            ["extensions", len(statistics["extensions"])],
            ["languages", len(statistics["languages"])],
            ["pixels", f"{summary['pixel_dtype']}, {' x '.join(map(str, summary['image_shape']))}"],
        ],
    )


def _headline(statistics: dict) -> str:
    """The two sentences a reader takes away: how big the dataset is, and where its images come from."""
    summary = statistics["summary"]
    by_images = sorted(statistics["extensions"], key=lambda row: -row["images"])[:3]
    total = summary["images"] or 1
    sources = ", ".join(f"{row['name']} ({row['images'] / total:.0%})" for row in by_images if row["images"])
    text = (
        f"{counted(statistics['repositories'], 'repository', 'repositories')} read ({summary['records_failed']:,} failed): "
        f"{counted(summary['files_seen'], 'file')}, of which {summary['files_imaged']:,} imaged as {counted(summary['images'], 'image')}."
    )
    return text + (f" Most images come from the extensions {sources}." if sources else "")


def _kinds_table(table_id: str, rows: list[dict], name: str, top: int) -> str:
    total = sum(row["images"] for row in rows)
    return _table(
        table_id,
        [name, "files", "imaged", "images", "% of images"],
        [[row["name"], row["files"], row["imaged"], row["images"], _percent(row["images"], total)] for row in rows[:top]],
    )


def _repositories_section(statistics: dict) -> str:
    labels = {"n_files": "files", "n_imaged": "files imaged", "n_images": "images", "n_bytes": "bytes"}
    largest = [
        [str(r["record_id"]), r["title"] or "", r["n_files"], r["n_imaged"], r["n_images"], r["n_bytes"]]
        for r in statistics["largest_repositories"]
    ]
    return (
        _figure_html("per_repository.png", "How big repositories are: usually a few large ones hold much of the data (red: the median).")
        + _table(
            "per_repository",
            ["per repository", "min", "median", "mean", "90th percentile", "max"],
            [[labels[field], *values.values()] for field, values in statistics["per_repository"].items()],
        )
        + "<h3>Largest repositories by images</h3>"
        + _table("largest_repositories", ["record", "title", "files", "imaged", "images", "bytes"], largest, text_columns=2)
    )


def _duplicates_section(statistics: dict) -> str:
    found = statistics["duplicates"]
    rates = _table(
        "duplicates",
        ["imaged", "all", "non-canonical copies", "% copies"],
        [
            [what, found[what], found[f"duplicate_{what}"], _percent(found[f"duplicate_{what}"], found[what], 2)]
            for what in ("files", "bytes", "images")
        ],
    )
    top = _table(
        "top_duplicates",
        ["path (canonical copy)", "swhid", "record", "copies", "records", "bytes"],
        [[row["path"], row["swhid"], str(row["record_id"]), row["copies"], row["records"], row["bytes"]] for row in found["top"]],
        text_columns=3,
    )
    leakage_rows = [
        [split_by, dedup.replace("_", " "), counts["test_images"], counts["leaked_images"],
         _percent(counts["leaked_images"], counts["test_images"]), counts["leaked_files"]]
        for split_by, by_dedup in statistics["leakage"].items()
        for dedup, counts in by_dedup.items()
    ]  # fmt: skip
    fractions = "/".join(f"{fraction:g}" for fraction in LEAKAGE_SPLITS["fractions"])
    return (
        f"<p>{found['contents']:,} distinct contents (SWHIDs) among {found['files']:,} imaged files. A copy is a file whose "
        "content an earlier file already has (lowest record id, then path, is canonical; "
        "files/ rows and Examples carry n_copies and is_canonical: <code>beam_zml.core.duplicates</code>), and "
        "<code>tfdata.load(dedup=True)</code> reads each content once.</p>"
        + rates
        + f"<h3>Most copied contents (the first {TOP_DUPLICATES})</h3>"
        + top
        + f"<h3>Leakage: test images whose content is also in train</h3><p>Splits of <code>tfdata.load</code> "
        f"({fractions}, stratified on language, or by a hash of the repository). With dedup a content is kept once, "
        "in the first split that holds it (train, then validation, then test), so none can leak.</p>"
        + _table("leakage", ["split by", "read", "test images", "leaked images", "% of test", "leaked files"], leakage_rows, 2)
    )


def _errors_section(statistics: dict) -> str:
    failed = statistics["failed_records"]
    return (
        f"<p>{counted(statistics['summary']['errors'], 'error')}; {counted(len(failed), 'record')} failed.</p>"
        + _table("errors", ["stage", "error type", "count"], [[e["stage"], e["error_type"], e["count"]] for e in statistics["errors"]], 2)
        + "<h3>Failed records (the first 20)</h3>"
        + _table(
            "failed_records",
            ["record", "title", "error"],
            [[str(r["record_id"]), r["title"] or r["archive_url"] or "", (r["error"] or "")[:300]] for r in failed[:20]],
            text_columns=3,
        )
    )


def render_html(statistics: dict, output: str, top: int) -> str:
    """The report page; the images it names are those `write_report` writes next to it."""
    repositories = statistics["repositories"]
    zipf = statistics["zipf"]
    zipf_text = f"fitted exponent s = {zipf['exponent']:.2f}" if zipf is not None else "too few extensions to fit"
    sections = {
        "Summary": _summary_table(statistics),
        "Extensions": _figure_html(
            "extensions.png",
            "Which extensions the files have (grey: all files, blue: imaged), and which ones the images come from (right).",
        )
        + _kinds_table("extensions", statistics["extensions"], "extension", top),
        "Languages": _figure_html("languages.png", "The same by detected language: the mix a model trained on these images sees.")
        + _kinds_table("languages", statistics["languages"], "language", top),
        "Rank and frequency of extensions": _figure_html(
            "extension_rank_frequency.png",
            "A straight line on these log-log axes is a Zipf law, as zenodo-ml saw: a few extensions hold most files.",
        )
        + f'<p id="zipf">Zipf law of extensions: {html.escape(zipf_text)}.</p>',
        "Repositories": _repositories_section(statistics),
        "Repository files": _figure_html(
            "repository_files.png",
            "How many repositories document (README), license, cite (CITATION.cff, .zenodo.json) "
            "and containerize (Dockerfile, Singularity) themselves.",
        )
        + _table(
            "repository_files",
            ["file at the root", "repositories", f"% of {repositories:,}"],
            [[kind, n, _percent(n, repositories)] for kind, n in statistics["repository_files"].items()],
        ),
        "Duplicates": _duplicates_section(statistics),
        "Skipped files": _figure_html("skipped.png", "Why files were not imaged: binary, too large, empty, links and the like.")
        + _table("skipped", ["reason", "files", "bytes"], [[row["name"], row["files"], row["bytes"]] for row in statistics["skipped"]]),
        "Errors": _errors_section(statistics),
    }
    body = "\n".join(f"<section><h2>{html.escape(title)}</h2>{content}</section>" for title, content in sections.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Dataset report: {html.escape(output)}</title>
<style>
body {{ font-family: sans-serif; max-width: 1150px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.2em 0.8em; text-align: right; }}
th.text, td.text {{ text-align: left; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; }} figcaption {{ color: #555; font-style: italic; }}
</style></head>
<body>
<h1>Dataset report: {html.escape(output)}</h1>
<p id="headline">{html.escape(_headline(statistics))}</p>
{body}
</body></html>
"""


def write_report(output: str, dest: str | None = None, top: int = 20) -> str:
    """Write the page and its PNGs to `dest` (default ./NAME-report, `default_dest`) and return the page's path."""
    dest = dest or default_dest(output, "report")
    statistics = read_statistics(output)
    files = {
        "extensions.png": plot_top(statistics["extensions"], "extensions", top),
        "languages.png": plot_top(statistics["languages"], "languages", top),
        "extension_rank_frequency.png": plot_rank_frequency(statistics["extensions"], statistics["zipf"]),
        "per_repository.png": plot_per_repository(statistics["per_repository_values"]),
        "repository_files.png": plot_repository_files(statistics["repository_files"], statistics["repositories"]),
        "skipped.png": plot_skipped(statistics["skipped"]),
        "index.html": render_html(statistics, output, top).encode("utf-8"),
    }
    for name, data in files.items():
        with storage.create(storage.join(dest, name)) as handle:
            handle.write(data)
    return storage.join(dest, "index.html")


def parser() -> argparse.ArgumentParser:
    report = ArgumentParser(
        prog=PROG,
        description="Write an HTML page with plots of a built dataset: extensions, languages, their rank-frequency, "
        "repository sizes, README/LICENSE/CITATION.cff/.zenodo.json/Dockerfile/Singularity files, duplicated files "
        "and test-into-train leakage, skip reasons.",
        allow_abbrev=False,
    )
    report.add_argument("output", metavar="OUT", help="a dataset built by zml build (local path or Beam FileSystems URL)")
    report.add_argument(
        "--dest", help="folder for index.html and the PNGs (default: NAME-report in the current directory, NAME being OUT's folder name)"
    )
    report.add_argument("--top", type=positive_int, default=20, help="extensions and languages shown (default: %(default)s)")
    return report


def main(argv: list[str] | None = None) -> int:
    report = parser()
    args = report.parse_args(argv)
    require_dataset(report, args.output)
    dest = args.dest or default_dest(args.output, "report")
    refuse_dest_inside(report, args.output, dest)  # the default too: run inside OUT, ./NAME-report is in OUT
    try:
        page = write_report(args.output, dest, args.top)
    except OSError as error:  # DEST under a file, a dangling link, no permission: bad input, one line
        report.error(f"{dest}: cannot write the report there: {error}")
    print(f"{PROG}: report written to {page if '://' in page else os.path.abspath(page)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
