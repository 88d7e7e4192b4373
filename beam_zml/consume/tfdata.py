"""A built dataset as tf.data batches for training: split by repository, labels as ids, filtered and capped.

    dataset, vocabularies = load("zml-stdlib", split="train", labels=("language",), batch_size=64)
    for features, labels in dataset:
        features["image"]        # [batch, height, width], the pixel dtype of dataset.json
        labels["language"]       # [batch] int64, an index into vocabularies["language"]

Splits are made by repository, never by file or image: the images of one repository
are often near copies of each other (vendored files, versions, generated code), so a
split by image would grade a model on what it saw in training. A repository is a
Zenodo concept (every version of one piece of software) or, without one, a record,
and `split_of` places it by a hash of its id: the same on every machine and in every
run, and unchanged when records are added to the dataset.
"""

from __future__ import annotations

import collections
import hashlib
import random
from collections.abc import Callable, Iterable, Sequence

import tensorflow as tf

from beam_zml.consume.dataset import parse_spec, read_manifest, read_rows, shard_paths

SPLITS = ("train", "validation", "test")
EXAMPLE_LABELS = ("language", "extension")  # string features of each image (docs/dataset-format.md#images)
RECORD_LABELS = ("license", "resource_type", "access_right", "source")  # string fields of its record (records/)
OTHER = "<other>"  # the last entry of every vocabulary: values seen fewer than min_count times
HASH_BUCKETS = 2**63 - 1  # image hashes are FarmHash Fingerprint64 modulo this: stable across machines and TF versions
SHUFFLE_BUFFER = 4096  # images; about 50 MB of 80x80 uint16 images
FEATURES = ("image", "record_id", "path", "segment", "n_lines")  # what each element carries besides its labels


def repository_of(record: dict) -> int:
    """The repository a records/ row belongs to: its Zenodo concept if it has one, else the record itself."""
    return record.get("concept_id") or record["record_id"]


def split_of(repository_id: int, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> str:
    """The split of a repository, "train", "validation" or "test", by the SHA-256 of its id read as a point in [0, 1)."""
    check_fractions(fractions)
    point = int.from_bytes(hashlib.sha256(str(repository_id).encode("ascii")).digest()[:8], "big") / 2**64
    bound = 0.0
    for name, fraction in zip(SPLITS, fractions):
        bound += fraction
        if point < bound:
            return name
    return SPLITS[-1]  # the fractions add up to 1 only within rounding


def check_fractions(fractions: Sequence[float]) -> None:
    """Refuse (ValueError) anything but one non-negative share per split, adding up to 1."""
    if len(fractions) != len(SPLITS) or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be {len(SPLITS)} non-negative numbers adding up to 1, got {tuple(fractions)}")


def vocabularies(output: str, labels: Iterable[str], min_count: int = 1) -> dict[str, list[str]]:
    """Each label's values, most images first (ties by value), then OTHER for values on fewer than min_count images.

    Counted over the whole dataset, from files/ and records/, so every split maps a value to the
    same id. A record field that is missing (local repositories have no license) is the value "".
    """
    labels = _check_labels(labels)
    counts = {label: collections.Counter() for label in labels}
    if any(label in EXAMPLE_LABELS for label in labels):
        for row in read_rows(output, "files"):
            for label in labels:
                if label in EXAMPLE_LABELS:
                    counts[label][row[label]] += row["n_segments"]
    if any(label in RECORD_LABELS for label in labels):
        for row in read_rows(output, "records"):
            for label in labels:
                if label in RECORD_LABELS:
                    counts[label][row[label] or ""] += row["n_images"]
    return {
        label: [value for value, count in sorted(counter.items(), key=lambda item: (-item[1], item[0])) if count >= min_count]
        + [OTHER]
        for label, counter in counts.items()
    }


def load(
    output: str,
    split: str = "train",
    labels: Sequence[str] = ("language",),
    batch_size: int = 64,
    *,
    min_lines: int = 0,
    max_images_per_repository: int | None = None,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    min_count: int = 1,
    shuffle: bool | None = None,
    seed: int = 0,
) -> tuple[tf.data.Dataset, dict[str, list[str]]]:
    """Batches of one split of the dataset in `output`, and the vocabulary of each label.

    Each element is `(features, labels)`: features maps "image" ([batch, height, width] in
    the dataset's pixel dtype), "record_id", "path", "segment" and "n_lines" to tensors of the
    batch; labels maps each name in `labels` to int64 ids into its vocabulary (see
    `vocabularies`). Labels are Example features (EXAMPLE_LABELS) or fields of the image's
    record (RECORD_LABELS).

    `min_lines` drops images with fewer real lines (zenodo-ml's loaders dropped blocks of 30
    lines or fewer: min_lines=31). `max_images_per_repository` keeps at most that many of a
    repository's images, exactly: those whose hash of (record_id, path, segment) is among its
    smallest, so the same images in every run, spread over its files. `min_count` (at least 1)
    sends rare label values to OTHER. `shuffle` (the default for "train" only) reads the shards
    in a seeded random order through a shuffle buffer.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    check_fractions(fractions)
    labels = _check_labels(labels)
    manifest = read_manifest(output)
    height, width = manifest["image"]["shape"]
    pixel_dtype = tf.dtypes.as_dtype(manifest["image"]["dtype"])
    records = list(read_rows(output, "records"))
    repository = {row["record_id"]: repository_of(row) for row in records}
    split_index = SPLITS.index(split)
    in_split = _lookup({rid: SPLITS.index(split_of(repo, fractions)) for rid, repo in repository.items()}, -1)
    vocabulary = vocabularies(output, labels, min_count)
    label_ids = {label: _label_lookup(label, vocabulary[label], records) for label in labels}
    threshold = None
    if max_images_per_repository is not None:
        thresholds = cap_thresholds(output, repository, height, min_lines, max_images_per_repository)
        threshold = _lookup(thresholds, HASH_BUCKETS)
    spec = parse_spec(manifest)

    def keep(example: dict) -> tf.Tensor:
        kept = (in_split(example["record_id"]) == split_index) & (example["n_lines"] >= min_lines)
        if threshold is not None:
            image_hash = image_hashes(example["record_id"], example["path"], example["segment"])
            kept &= image_hash <= threshold(example["record_id"])
        return kept

    def to_element(examples: dict) -> tuple[dict, dict]:
        features = {name: examples[name] for name in FEATURES}
        pixels = tf.io.decode_raw(examples["image"], pixel_dtype, little_endian=True)
        features["image"] = tf.reshape(pixels, [-1, height, width])
        return features, {label: lookup(examples) for label, lookup in label_ids.items()}

    shuffle = split == "train" if shuffle is None else shuffle
    paths = shard_paths(output, "images")
    if shuffle:
        random.Random(seed).shuffle(paths)
    dataset = tf.data.TFRecordDataset(paths, compression_type="GZIP", num_parallel_reads=tf.data.AUTOTUNE)
    dataset = dataset.map(lambda serialized: tf.io.parse_single_example(serialized, spec), num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.filter(keep)
    if shuffle:
        dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=seed)
    dataset = dataset.batch(batch_size).map(to_element, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE), vocabulary


def image_hashes(record_id: tf.Tensor, path: tf.Tensor, segment: tf.Tensor) -> tf.Tensor:
    """A stable int64 hash in [0, HASH_BUCKETS) of each image's (record_id, path, segment)."""
    key = tf.strings.join([tf.strings.as_string(record_id), path, tf.strings.as_string(segment)], separator="\0")
    return tf.strings.to_hash_bucket_fast(key, HASH_BUCKETS)


def cap_thresholds(output: str, repository: dict[int, int], height: int, min_lines: int, cap: int) -> dict[int, int]:
    """For each record whose repository has more than `cap` images of at least `min_lines` lines: the hash of
    its repository's cap-th smallest image, so that keeping images hashed at most that keeps exactly `cap`
    (barring two of its images with the same 63-bit hash).

    The images are listed from files/ (an image's lines follow from its file's: every block but
    the last has `height`), which is far cheaper than reading images/.
    """
    record_ids, paths, segments = [], [], []
    for row in read_rows(output, "files"):
        for segment in range(row["n_segments"]):
            if min(height, row["n_lines"] - segment * height) >= min_lines:
                record_ids.append(row["record_id"])
                paths.append(row["path"])
                segments.append(segment)
    if not record_ids:
        return {}
    hashes = image_hashes(tf.constant(record_ids, tf.int64), tf.constant(paths), tf.constant(segments, tf.int64))
    by_repository = collections.defaultdict(list)
    for record_id, image_hash in zip(record_ids, hashes.numpy().tolist()):
        by_repository[repository[record_id]].append(image_hash)
    largest_kept = {repo: sorted(found)[cap - 1] for repo, found in by_repository.items() if len(found) > cap}
    return {record_id: largest_kept[repo] for record_id, repo in repository.items() if repo in largest_kept}


def _label_lookup(label: str, vocabulary: list[str], records: list[dict]) -> Callable[[dict], tf.Tensor]:
    """A function from a batch of parsed examples to the label's ids; OTHER's id for values not in the vocabulary."""
    other = vocabulary.index(OTHER)
    ids = {value: index for index, value in enumerate(vocabulary) if value != OTHER}
    if label in EXAMPLE_LABELS:
        by_value = _lookup(ids, other, key_dtype=tf.string)
        return lambda examples: by_value(examples[label])
    by_record = _lookup({row["record_id"]: ids.get(row[label] or "", other) for row in records}, other)
    return lambda examples: by_record(examples["record_id"])


def _lookup(mapping: dict, default: int, key_dtype: tf.DType = tf.int64) -> Callable[[tf.Tensor], tf.Tensor]:
    """A static hash table as a function of a key tensor (TensorFlow refuses empty tables: then always `default`)."""
    if not mapping:
        return lambda keys: tf.fill(tf.shape(keys), tf.constant(default, tf.int64))
    initializer = tf.lookup.KeyValueTensorInitializer(
        tf.constant(list(mapping), key_dtype), tf.constant(list(mapping.values()), tf.int64)
    )
    return tf.lookup.StaticHashTable(initializer, default).lookup


def _check_labels(labels: Iterable[str]) -> tuple[str, ...]:
    labels = tuple(labels)
    unknown = [label for label in labels if label not in EXAMPLE_LABELS + RECORD_LABELS]
    if unknown:
        raise ValueError(f"unknown label {unknown[0]!r}: choose from {', '.join(EXAMPLE_LABELS + RECORD_LABELS)}")
    return labels
