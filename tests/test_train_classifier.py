"""pipelines.train_classifier: one epoch end to end on a small dataset, the metrics, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from beam_zml.consume import classifier
from pipelines import train_classifier
from tests.test_tfdata import FRACTIONS, build_small_dataset

METRIC_KEYS = {
    "label", "accuracy", "macro_f1", "per_class", "majority_class", "vocabulary", "epochs_run", "options",
    "n_train_images", "n_train_repositories", "n_validation_images", "n_validation_repositories",
    "n_test_images", "n_test_repositories", "n_train_per_class", "n_validation_per_class", "n_test_per_class",
}  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> str:
    return build_small_dataset(tmp_path_factory.mktemp("classifier"))


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # Keras 3.15's model.save on numpy 2
def test_one_epoch_writes_metrics_beside_the_majority_baseline_and_a_confusion_matrix_png(built, tmp_path, monkeypatch, capsys):
    fractions = [str(fraction) for fraction in FRACTIONS]
    argv = ["--data", built, "--epochs", "1", "--min-count", "1", "--fractions", *fractions]
    monkeypatch.chdir(tmp_path.parent)  # the default --output-dir: NAME-model in the current directory, not in the dataset
    before = sorted(Path(built).rglob("*"))
    assert train_classifier.main(argv) == 0
    assert sorted(Path(built).rglob("*")) == before
    assert tmp_path.parent / f"{Path(built).name}-model" == tmp_path.parent / "dataset-model"
    tmp_path = tmp_path.parent / "dataset-model"
    captured = capsys.readouterr()
    last_line = captured.out.splitlines()[-1]
    assert last_line == f"zml train: metrics.json, confusion_matrix.png and model.keras written to {tmp_path}"

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics)
    assert metrics["vocabulary"][-1] == "<other>" and {"Python", "C", "Markdown", "JSON"} <= set(metrics["vocabulary"])
    assert all(
        metrics[f"n_{split}_images"] >= metrics[f"n_{split}_repositories"] > 0 for split in ("train", "validation", "test")
    )
    n_repositories = metrics["n_train_repositories"] + metrics["n_validation_repositories"] + metrics["n_test_repositories"]
    assert n_repositories == 24
    for split in ("train", "validation", "test"):  # the stratified split puts every language in every split
        assert set(metrics[f"n_{split}_per_class"]) == {"Python", "C", "Markdown", "JSON"}
        assert sum(metrics[f"n_{split}_per_class"].values()) == metrics[f"n_{split}_images"]
    assert "zml train: test: " in captured.err
    assert sum(figures["support"] for figures in metrics["per_class"].values()) == metrics["n_test_images"]
    for figures in metrics["per_class"].values():
        assert set(figures) == {"precision", "recall", "f1", "support"}
        assert all(0 <= figures[name] <= 1 for name in ("precision", "recall", "f1"))
    baseline = metrics["majority_class"]
    assert set(baseline) == {"class", "accuracy", "macro_f1"}
    assert baseline["accuracy"] == pytest.approx(metrics["per_class"][baseline["class"]]["support"] / metrics["n_test_images"])

    png = (tmp_path / "confusion_matrix.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert tf.io.decode_png(png).shape[2] in (3, 4)
    assert (tmp_path / "model.keras").stat().st_size > 0


def test_metrics_from_a_confusion_matrix():
    matrix = np.array([[3, 1, 0], [0, 0, 0], [2, 0, 4]])  # rows: true a, b, c; columns: predicted
    metrics = classifier.classification_metrics(matrix, ["a", "b", "c", "<other>"])
    assert metrics["accuracy"] == pytest.approx(7 / 10)
    assert metrics["per_class"]["a"] == {"precision": 3 / 5, "recall": 3 / 4, "f1": pytest.approx(2 / 3), "support": 4}
    assert metrics["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}  # predicted once, never true
    assert metrics["per_class"]["c"] == {"precision": 1.0, "recall": 4 / 6, "f1": pytest.approx(0.8), "support": 6}
    assert "<other>" not in metrics["per_class"]
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0 + 0.8) / 3)


def test_confusion_matrix_counts_true_by_predicted():
    matrix = classifier.confusion_matrix(np.array([0, 0, 2, 1]), np.array([0, 2, 2, 2]), 3)
    assert matrix.tolist() == [[1, 0, 1], [0, 0, 1], [0, 0, 1]]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--label", "language"], "the following arguments are required: --data"),
        (["--data", "{missing}"], "not a finished dataset, no readable dataset.json"),
        (["--data", "{built}", "--label", "colour"], "invalid choice: 'colour'"),
        (["--data", "{built}", "--fractions", "0.5", "0.5", "0.5"], "--fractions: fractions must be"),
        (["--data", "{built}", "--epochs", "0"], "must be a positive integer"),
        (["--data", "{built}", "--fractions", "1", "0", "0"], "the validation split has no images"),
        (["--data", "{built}", "--split-by", "random"], "invalid choice: 'random'"),
        (["--data", "{built}", "--label", "license"], "every train image has the same license (''): there is nothing to learn"),
    ],
)
def test_bad_input_gets_one_line_and_exit_status_2(built, tmp_path, capsys, argv, message):
    argv = [arg.format(built=built, missing=tmp_path / "missing") for arg in argv]
    with pytest.raises(SystemExit) as exit_info:
        train_classifier.run(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


@pytest.mark.parametrize("n_classes", [1, 2, 12])
def test_confusion_matrix_title_and_labels_fit_in_the_figure(n_classes):
    names = ["Python", "reStructuredText", "C", "JavaScript", "Text only", "Markdown", "<other>", "C++", "Makefile",
             "TOML", "YAML", "JSON"][:n_classes]
    matrix = np.random.default_rng(0).integers(1, 50, (n_classes, n_classes))
    figure = classifier.confusion_matrix_figure(matrix, names)
    figure.draw_without_rendering()
    page = figure.bbox
    texts = [figure._suptitle, *figure.axes[0].get_xticklabels(), *figure.axes[0].get_yticklabels()]
    assert texts[0].get_text() == "Confusion on held-out repositories (test split)"
    for text in texts:
        box = text.get_window_extent()
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, text.get_text()
