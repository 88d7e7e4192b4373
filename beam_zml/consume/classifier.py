"""The baseline classifier: a small CNN over a dataset's images, its inputs, and how it is graded.

Used by `zml train` (pipelines/train_classifier.py), which parses the options and runs the training loop.
The model sees code points clipped to MAX_CODE_POINT, embedded: every character beyond Latin-1 is one
symbol, which is plenty to tell code from prose and one language from another.
"""

from __future__ import annotations

import collections
import io
import json

import keras
import numpy as np
import tensorflow as tf

MAX_CODE_POINT = 255  # larger code points share this one embedding


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


def confusion_matrix_figure(matrix: np.ndarray, vocabulary: list[str]):
    """A matplotlib Figure of the classes that occur, rows normalised to the share of each true class, counts in the cells."""
    from matplotlib.figure import Figure

    shown = np.flatnonzero(matrix.sum(axis=0) + matrix.sum(axis=1))
    counts = matrix[np.ix_(shown, shown)]
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    names = [vocabulary[index] for index in shown]
    side = 2.5 + 0.45 * len(names)
    # Constrained layout makes room for the title and the labels; the width keeps the title whole with few classes.
    figure = Figure(figsize=(max(side + 1, 5.5), side + 0.4), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, label="share of the true class")
    axes.set_xticks(range(len(names)), names, rotation=60, ha="right")
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    figure.suptitle("Confusion on held-out repositories (test split)")
    for row, column in zip(*np.nonzero(counts)):
        color = "white" if shares[row, column] > 0.6 else "black"
        axes.text(column, row, str(counts[row, column]), ha="center", va="center", fontsize=7, color=color)
    return figure


def confusion_matrix_png(matrix: np.ndarray, vocabulary: list[str]) -> bytes:
    """`confusion_matrix_figure` as PNG bytes (100 dpi)."""
    buffer = io.BytesIO()
    confusion_matrix_figure(matrix, vocabulary).savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


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
