"""Train a small CNN to tell a label (the file's language by default) from its images, and grade it on held-out repositories.

    python -m pipelines.train_classifier --data OUT --label language [--epochs 10] [--output-dir DIR]

Trains on the train split, stops early on the validation split, and evaluates on the
test split, whose repositories it never saw (beam_zml.tfdata splits by repository).
Writes to DIR (default OUT/model): metrics.json (accuracy, macro-F1, per-class
figures, and the same figures for always answering the most frequent class of the
train split), confusion_matrix.png and model.keras.

The model sees code points clipped to 255, embedded: every character beyond Latin-1 is
one symbol, which is plenty to tell code from prose and one language from another.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import logging
import sys

import keras
import matplotlib
import numpy as np
import tensorflow as tf

from beam_zml import options as cli
from beam_zml import tfdata
from beam_zml.dataset import read_manifest, read_rows

matplotlib.use("Agg")  # files only, no display

PROG = "python -m pipelines.train_classifier"
MAX_CODE_POINT = 255  # larger code points share this one embedding


def parser() -> argparse.ArgumentParser:
    train = cli.ArgumentParser(prog=PROG, description=__doc__.split("\n", 1)[0], allow_abbrev=False)
    train.add_argument("--data", required=True, metavar="OUT", help="a dataset built by `zml build`")
    train.add_argument(
        "--label", default="language", choices=tfdata.EXAMPLE_LABELS + tfdata.RECORD_LABELS, help="(default: %(default)s)"
    )
    train.add_argument(
        "--epochs",
        type=cli.positive_int,
        default=10,
        help="most epochs; fewer if validation loss stops improving (default: %(default)s)",
    )
    train.add_argument("--batch-size", type=cli.positive_int, default=64, help="(default: %(default)s)")
    train.add_argument(
        "--min-lines", type=cli.non_negative_int, default=0, help="drop images with fewer real lines (zenodo-ml: 31)"
    )
    train.add_argument(
        "--max-images-per-repository", type=cli.positive_int, help="keep at most this many images of a repository (default: all)"
    )
    train.add_argument(
        "--min-count",
        type=cli.positive_int,
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
        "--output-dir", metavar="DIR", help="where to write metrics.json, confusion_matrix.png, model.keras (default: OUT/model)"
    )
    train.add_argument(
        "--seed", type=int, default=0, help="seeds the shuffling, the initial weights and dropout (default: %(default)s)"
    )
    return train


def build_model(n_classes: int, shape: tuple[int, int]) -> keras.Model:
    """Embedded characters cut into 4x4 patches by a strided convolution, two small convolutions, global max pooling.

    The strided first layer makes it cheap (about 15 M multiply-adds an image, 70 k weights), so
    that it trains in minutes on two shared cores; language and file kind show in any few lines.
    """
    inputs = keras.Input(shape=shape, dtype="int32", name="code_points")
    x = keras.layers.Embedding(MAX_CODE_POINT + 1, 16)(inputs)
    x = keras.layers.Conv2D(32, 4, strides=4, activation="relu")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalMaxPooling2D()(x)
    x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def model_inputs(dataset: tf.data.Dataset, label: str) -> tf.data.Dataset:
    """(features, labels) batches -> (clipped code points, label ids), as the model takes them."""
    return dataset.map(
        lambda features, labels: (tf.minimum(tf.cast(features["image"], tf.int32), MAX_CODE_POINT), labels[label]),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def split_summary(dataset: tf.data.Dataset, label: str, repository: dict[int, int]) -> dict:
    """Images, repositories and images per label id of one split, from one pass over it."""
    per_label = collections.Counter()
    repositories = set()
    for features, labels in dataset.map(lambda features, labels: (features["record_id"], labels[label])):
        per_label.update(labels.numpy().tolist())
        repositories.update(repository[record_id] for record_id in features.numpy().tolist())
    return {"images": sum(per_label.values()), "repositories": len(repositories), "per_label": per_label}


def class_weights(per_label: collections.Counter) -> dict[int, float]:
    """Rarer classes weigh more, by the square root of their rarity: macro-F1 counts every class alike, and the
    square root keeps a class of a few images from swamping the rest."""
    mean = sum(per_label.values()) / len(per_label)
    return {label: (mean / count) ** 0.5 for label, count in per_label.items()}


def classification_metrics(matrix: np.ndarray, vocabulary: list[str]) -> dict:
    """Accuracy, macro-F1 and per-class precision, recall, F1 and support from a confusion matrix, over the
    classes that are true or predicted at least once (as scikit-learn does); a ratio of nothing is 0."""
    per_class = {}
    for index in np.flatnonzero(matrix.sum(axis=0) + matrix.sum(axis=1)):
        hits, support, guessed = matrix[index, index], matrix[index].sum(), matrix[:, index].sum()
        precision = hits / guessed if guessed else 0.0
        recall = hits / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[vocabulary[index]] = {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "support": int(support),
        }
    return {
        "accuracy": float(np.trace(matrix) / max(matrix.sum(), 1)),
        "macro_f1": float(np.mean([figures["f1"] for figures in per_class.values()])) if per_class else 0.0,
        "per_class": per_class,
    }


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """matrix[true class, predicted class] = images."""
    matrix = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def confusion_matrix_png(matrix: np.ndarray, vocabulary: list[str]) -> bytes:
    """The classes that occur, rows normalised to the share of each true class, counts written in the cells."""
    from matplotlib.figure import Figure

    shown = np.flatnonzero(matrix.sum(axis=0) + matrix.sum(axis=1))
    counts = matrix[np.ix_(shown, shown)]
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    names = [vocabulary[index] for index in shown]
    side = 2.5 + 0.45 * len(names)
    figure = Figure(figsize=(side + 1, side))
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, label="share of the true class")
    axes.set_xticks(range(len(names)), names, rotation=60, ha="right")
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("confusion on held-out repositories (test split)")
    for row, column in zip(*np.nonzero(counts)):
        color = "white" if shares[row, column] > 0.6 else "black"
        axes.text(column, row, str(counts[row, column]), ha="center", va="center", fontsize=7, color=color)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def run(argv: list[str] | None = None) -> dict:
    """Parse `argv`, train, evaluate on the test split, write the outputs; returns the metrics written to metrics.json."""
    train_parser = parser()
    args = train_parser.parse_args(argv)
    try:
        tfdata.check_fractions(args.fractions)
    except ValueError as error:
        train_parser.error(f"--fractions: {error}")
    try:
        manifest = read_manifest(args.data)
    except (OSError, ValueError) as error:
        cli.fail(PROG, f"--data {args.data}: not a finished dataset, no readable dataset.json ({type(error).__name__})")
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
            min_count=args.min_count,
            seed=args.seed,
        )
    vocabulary = vocabularies[args.label]
    repository = {row["record_id"]: tfdata.repository_of(row) for row in read_rows(args.data, "records")}
    summaries = {name: split_summary(dataset, args.label, repository) for name, dataset in splits.items()}
    for name, summary in summaries.items():
        if not summary["images"]:
            cli.fail(PROG, f"the {name} split has no images: the dataset needs more repositories (or a lower --min-lines)")

    def batches(name: str) -> tf.data.Dataset:
        """The model's inputs, telling Keras how many batches there are (filters hide it), so epochs end cleanly."""
        n_batches = -(-summaries[name]["images"] // args.batch_size)
        return model_inputs(splits[name], args.label).apply(tf.data.experimental.assert_cardinality(n_batches))

    model = build_model(len(vocabulary), tuple(manifest["image"]["shape"]))
    history = model.fit(
        batches("train"),
        validation_data=batches("validation"),
        epochs=args.epochs,
        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)],
        class_weight=class_weights(summaries["train"]["per_label"]),
        shuffle=False,  # tfdata.load shuffles the train split
        verbose=2,
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
    write_outputs(args.output_dir or tf.io.gfile.join(args.data, "model"), metrics, matrix, model)
    return metrics


def predict(model: keras.Model, batches: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The true and the predicted label ids of every image."""
    truth, predicted = [], []
    for images, labels in batches:
        truth.append(labels.numpy())
        predicted.append(model(images, training=False).numpy().argmax(axis=1))
    return np.concatenate(truth), np.concatenate(predicted)


def write_outputs(output_dir: str, metrics: dict, matrix: np.ndarray, model: keras.Model) -> None:
    """metrics.json, confusion_matrix.png and model.keras, in a local folder or any URL tf.io.gfile knows."""
    tf.io.gfile.makedirs(output_dir)
    with tf.io.gfile.GFile(tf.io.gfile.join(output_dir, "metrics.json"), "w") as handle:
        handle.write(json.dumps(metrics, indent=2) + "\n")
    with tf.io.gfile.GFile(tf.io.gfile.join(output_dir, "confusion_matrix.png"), "wb") as handle:
        handle.write(confusion_matrix_png(matrix, metrics["vocabulary"]))
    model.save(tf.io.gfile.join(output_dir, "model.keras"))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    metrics = run(argv)
    baseline = metrics["majority_class"]
    print(
        f"test: accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}; "
        f"always {baseline['class']!r}: accuracy {baseline['accuracy']:.3f}, macro-F1 {baseline['macro_f1']:.3f}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
