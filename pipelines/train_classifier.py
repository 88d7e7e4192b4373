"""Train a small CNN to tell a label (the file's language by default) from its images, and grade it on held-out repositories.

    python -m pipelines.train_classifier --data OUT --label language [--epochs 10] [--output-dir DIR]

Trains on the train split, stops early on the validation split, and evaluates on the
test split, whose repositories it never saw (beam_zml.consume.tfdata splits by repository).
Writes to DIR (default NAME-model in the current directory, NAME being OUT's folder name): metrics.json (accuracy, macro-F1, per-class
figures, and the same figures for always answering the most frequent class of the
train split), confusion_matrix.png and model.keras.

The model sees code points clipped to 255, embedded: every character beyond Latin-1 is
one symbol, which is plenty to tell code from prose and one language from another.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from beam_zml import arguments
from beam_zml.consume import tfdata
from beam_zml.consume.classifier import (
    build_model,
    class_weights,
    classification_metrics,
    confusion_matrix,
    model_inputs,
    predict,
    split_summary,
    write_outputs,
)
from beam_zml.consume.dataset import default_dest, read_manifest, read_rows

PROG = "zml train"


def parser() -> argparse.ArgumentParser:
    train = arguments.ArgumentParser(prog=PROG, description=__doc__.split("\n", 1)[0], allow_abbrev=False)
    train.add_argument("--data", required=True, metavar="OUT", help="a dataset built by `zml build`")
    train.add_argument(
        "--label", default="language", choices=tfdata.EXAMPLE_LABELS + tfdata.RECORD_LABELS, help="(default: %(default)s)"
    )
    train.add_argument(
        "--epochs",
        type=arguments.positive_int,
        default=10,
        help="most epochs; fewer if validation loss stops improving (default: %(default)s)",
    )
    train.add_argument("--batch-size", type=arguments.positive_int, default=64, help="(default: %(default)s)")
    train.add_argument(
        "--min-lines", type=arguments.non_negative_int, default=0, help="drop images with fewer real lines (zenodo-ml: 31)"
    )
    train.add_argument(
        "--max-images-per-repository", type=arguments.positive_int, help="keep at most this many images of a repository (default: all)"
    )
    train.add_argument(
        "--min-count",
        type=arguments.positive_int,
        default=50,
        help=f"label values on fewer images are one class, {tfdata.OTHER} (default: %(default)s)",
    )
    train.add_argument(
        "--fractions",
        nargs=3,
        type=float,
        default=(0.8, 0.1, 0.1),
        metavar=("TRAIN", "VALIDATION", "TEST"),
        help="shares of the repositories in each split (default: 0.8 0.1 0.1)",
    )
    train.add_argument(
        "--split-by",
        choices=tfdata.SPLIT_BY,
        default="stratified",
        help="place whole repositories so every class is in every split they allow (stratified, on --label), "
        "or by a hash of each repository, stable as the dataset grows (default: %(default)s)",
    )
    train.add_argument("--split-seed", type=int, default=0, help="breaks ties of the stratified split (default: %(default)s)")
    train.add_argument(
        "--dedup",
        action="store_true",
        help="read each content (SWHID) once, in the first split that holds it, so no test image repeats a train image",
    )
    train.add_argument(
        "--output-dir", metavar="DIR", help="where to write metrics.json, confusion_matrix.png, model.keras "
        "(default: NAME-model in the current directory, NAME being OUT's folder name)"
    )
    train.add_argument(
        "--seed", type=int, default=0, help="seeds the shuffling, the initial weights and dropout (default: %(default)s)"
    )
    return train


def run(argv: list[str] | None = None) -> dict:
    """Parse `argv`, train, evaluate on the test split, write the outputs.

    Returns the metrics written to metrics.json, and "output_dir": where they were written.
    """
    train_parser = parser()
    args = train_parser.parse_args(argv)
    try:
        tfdata.check_fractions(args.fractions)
    except ValueError as error:
        train_parser.error(f"--fractions: {error}")
    try:
        manifest = read_manifest(args.data)
    except (OSError, ValueError) as error:
        arguments.fail(PROG, f"--data {args.data}: not a finished dataset, no readable dataset.json ({type(error).__name__})")
    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()

    splits = {}
    for name in tfdata.SPLITS:
        splits[name], vocabularies = tfdata.load(
            args.data,
            name,
            labels=(args.label,),
            batch_size=args.batch_size,
            min_lines=args.min_lines,
            max_images_per_repository=args.max_images_per_repository,
            fractions=args.fractions,
            split_by=args.split_by,
            split_seed=args.split_seed,
            dedup=args.dedup,
            min_count=args.min_count,
            seed=args.seed,
        )
    vocabulary = vocabularies[args.label]
    repository = {row["record_id"]: tfdata.repository_of(row) for row in read_rows(args.data, "records")}
    summaries = {name: split_summary(dataset, args.label, repository) for name, dataset in splits.items()}
    for name, summary in summaries.items():
        if not summary["images"]:
            arguments.fail(PROG, f"the {name} split has no images: the dataset needs more repositories (or a lower --min-lines)")
    if len(summaries["train"]["per_label"]) < 2:
        (only,) = summaries["train"]["per_label"]
        arguments.fail(PROG, f"every train image has the same {args.label} ({vocabulary[only]!r}): there is nothing to learn")
    class_counts = {
        name: {vocabulary[index]: n for index, n in sorted(summary["per_label"].items(), key=lambda item: (-item[1], item[0]))}
        for name, summary in summaries.items()
    }
    for name, summary in summaries.items():
        classes = ", ".join(f"{value} {n:,}" for value, n in class_counts[name].items())
        missing = [value for value in class_counts["train"] if value not in class_counts[name]]
        print(
            f"{PROG}: {name}: {summary['images']:,} images from {summary['repositories']:,} repositories; {classes}"
            + (f"; no {', '.join(missing)}" if missing else ""),
            file=sys.stderr,
        )

    def batches(name: str) -> tf.data.Dataset:
        """The model's inputs, telling Keras how many batches there are (filters hide it), so epochs end cleanly."""
        n_batches = -(-summaries[name]["images"] // args.batch_size)
        return model_inputs(splits[name], args.label).apply(tf.data.experimental.assert_cardinality(n_batches))

    model = build_model(len(vocabulary), tuple(manifest["image"]["shape"]))
    history = model.fit(
        batches("train"),
        validation_data=batches("validation"),
        epochs=args.epochs,
        callbacks=[
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True),
            EpochLine(args.epochs),
        ],
        class_weight=class_weights(summaries["train"]["per_label"]),
        shuffle=False,  # tfdata.load shuffles the train split
        verbose=0,
    )

    truth, predicted = predict(model, batches("test"))
    matrix = confusion_matrix(truth, predicted, len(vocabulary))
    majority = summaries["train"]["per_label"].most_common(1)[0][0]
    baseline = classification_metrics(confusion_matrix(truth, np.full_like(truth, majority), len(vocabulary)), vocabulary)
    metrics = {
        "label": args.label,
        **classification_metrics(matrix, vocabulary),
        "majority_class": {"class": vocabulary[majority], "accuracy": baseline["accuracy"], "macro_f1": baseline["macro_f1"]},
        "vocabulary": vocabulary,
        "epochs_run": len(history.history["loss"]),
        "options": {name: value for name, value in vars(args).items() if name not in ("data", "output_dir")},
    }
    for name, summary in summaries.items():
        metrics[f"n_{name}_images"] = summary["images"]
        metrics[f"n_{name}_repositories"] = summary["repositories"]
        metrics[f"n_{name}_per_class"] = class_counts[name]
    output_dir = args.output_dir or default_dest(args.data, "model")
    write_outputs(output_dir, metrics, matrix, model)
    return {**metrics, "output_dir": output_dir}


class EpochLine(keras.callbacks.Callback):
    """One line on stderr per epoch: its number, the train and validation loss and accuracy, and its seconds."""

    def __init__(self, epochs: int):
        super().__init__()
        self._epochs = epochs
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._start = time.monotonic()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = logs or {}
        figures = ", ".join(f"{name} {logs[name]:.4f}" for name in ("loss", "accuracy", "val_loss", "val_accuracy") if name in logs)
        print(f"{PROG}: epoch {epoch + 1}/{self._epochs}: {figures} ({time.monotonic() - self._start:.0f} s)", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    metrics = run(argv)
    baseline = metrics["majority_class"]
    print(
        f"{PROG}: test: accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}; "
        f"always {baseline['class']!r}: accuracy {baseline['accuracy']:.3f}, macro-F1 {baseline['macro_f1']:.3f}",
        file=sys.stderr,
    )
    where = metrics["output_dir"]
    print(f"{PROG}: metrics.json, confusion_matrix.png and model.keras written to {where if '://' in where else os.path.abspath(where)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
