"""A built dataset as tf.data batches for training: split by repository, labels as ids, filtered, capped, deduplicated.

    dataset, vocabularies = load("zml-stdlib", split="train", labels=("language",), batch_size=64)
    for features, labels in dataset:
        features["image"]        # [batch, height, width], the pixel dtype of dataset.json
        labels["language"]       # [batch] int64, an index into vocabularies["language"]

Splits keep every repository whole (beam_zml.core.splits): stratified by a label by
default, or by a hash of the repository. Every per-image decision (split, line count,
cap, duplicate, label id) is a table lookup made on whole batches of parsed Examples,
never one Example at a time, so the loader keeps up with plain tf.data reading
(benchmarks/bench_tfdata.py).
"""

from __future__ import annotations

import collections
import logging
import random
from collections.abc import Callable, Iterable, Sequence

import tensorflow as tf

from beam_zml.consume.dataset import parse_spec, read_manifest, read_rows, shard_paths
from beam_zml.core.duplicates import (
    kept_copies,
    leakage_with_and_without_dedup,
    split_rank,
)
from beam_zml.core.splits import (  # noqa: F401  (re-exported: tfdata is where users look for them)
    EXAMPLE_LABELS,
    RECORD_LABELS,
    SPLIT_BY,
    SPLITS,
    check_fractions,
    record_splits,
    repository_of,
    split_of,
)

OTHER = "<other>"  # the last entry of every vocabulary: values seen fewer than min_count times
HASH_BUCKETS = 2**63 - 1  # image hashes (FarmHash Fingerprint64s) are taken modulo this: non-negative int64s
SHUFFLE_BUFFER = 4096  # images shuffled together; about 50 MB of 80x80 uint16 images
READ_BATCH = 256  # at least this many serialized Examples parsed and filtered at once (parse_example is far faster on batches)
FEATURES = ("image", "record_id", "path", "segment", "n_lines")  # what each element carries besides its labels


def vocabularies(output: str, labels: Iterable[str], min_count: int = 1) -> dict[str, list[str]]:
    """Each label's values, most images first (ties by value), then OTHER for values on fewer than min_count images.

    Counted over the whole dataset, from files/ and records/, so every split maps a value to the
    same id. A record field that is missing (local repositories have no license) is the value "".
    """
    labels = _check_labels(labels)
    files = read_rows(output, "files") if any(label in EXAMPLE_LABELS for label in labels) else ()
    records = read_rows(output, "records") if any(label in RECORD_LABELS for label in labels) else ()
    return _vocabularies(labels, min_count, list(records), files)


def _vocabularies(labels: tuple[str, ...], min_count: int, records: list[dict], files: Iterable[dict]) -> dict[str, list[str]]:
    counts = {label: collections.Counter() for label in labels}
    for row in files:
        for label in labels:
            if label in EXAMPLE_LABELS:
                counts[label][row[label]] += row["n_segments"]
    for row in records:
        for label in labels:
            if label in RECORD_LABELS:
                counts[label][row[label] or ""] += row["n_images"]
    return {
        label: [value for value, count in sorted(counter.items(), key=lambda item: (-item[1], item[0])) if count >= min_count]
        + [OTHER]
        for label, counter in counts.items()
    }


def splits(
    output: str,
    *,
    split_by: str = "stratified",
    stratify_on: str = "language",
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    split_seed: int = 0,
) -> dict[int, str]:
    """{record_id: split name} for every record of the dataset, as `load` splits it (beam_zml.core.splits.record_splits)."""
    files = read_rows(output, "files") if split_by == "stratified" else ()
    return record_splits(
        read_rows(output, "records"), files, split_by=split_by, label=stratify_on, fractions=fractions, seed=split_seed
    )


def leakage(
    output: str,
    *,
    split_by: str = "stratified",
    stratify_on: str = "language",
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    split_seed: int = 0,
) -> dict:
    """How many test-split images have the content (SWHID) of a train-split image, without and with dedup.

    Same split arguments as `load`. Returns {"without_dedup": counts, "with_dedup": counts}, each
    {"test_files", "test_images", "leaked_files", "leaked_images"}; with dedup leaked_images is 0
    (beam_zml.core.duplicates.kept_copies).
    """
    files = list(read_rows(output, "files"))
    records = list(read_rows(output, "records"))
    found = record_splits(records, files, split_by=split_by, label=stratify_on, fractions=fractions, seed=split_seed)
    return leakage_with_and_without_dedup(files, found)


def load(
    output: str,
    split: str = "train",
    labels: Sequence[str] = ("language",),
    batch_size: int = 64,
    *,
    min_lines: int = 0,
    max_images_per_repository: int | None = None,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    split_by: str = "stratified",
    stratify_on: str | None = None,
    split_seed: int = 0,
    dedup: bool = False,
    min_count: int = 1,
    shuffle: bool | None = None,
    seed: int = 0,
    exclude_vendored: bool = True,
    exclude_generated: bool = True,
) -> tuple[tf.data.Dataset, dict[str, list[str]]]:
    """Batches of one split of the dataset in `output`, and the vocabulary of each label.

    Each element is `(features, labels)`: features maps "image" ([batch, height, width] in
    the dataset's pixel dtype), "record_id", "path", "segment" and "n_lines" to tensors of the
    batch; labels maps each name in `labels` to int64 ids into its vocabulary (see
    `vocabularies`). Labels are Example features (EXAMPLE_LABELS) or fields of the image's
    record (RECORD_LABELS).

    `split_by` "stratified" (the default) places whole repositories so that every value of
    `stratify_on` (default: the first label, else "language") is in every split its
    repositories allow; "hash" places each repository by a hash of its id alone, stable as the
    dataset grows (beam_zml.core.splits); `split_seed` breaks the stratified placement's ties
    (kept apart from `seed`, which seeds the shuffling, so runs with several seeds grade on
    one test split). `dedup` keeps one copy of each content (SWHID) in the whole
    dataset: the first in train, else validation, else test, by lowest record id then path,
    so no test image repeats a train image. `min_lines` drops images with fewer real lines
    (zenodo-ml's loaders dropped blocks of 30 lines or fewer: min_lines=31).
    `max_images_per_repository` keeps at most that many of a repository's images (after
    min_lines and dedup), exactly: those whose hash of (record_id, path, segment) is among
    its smallest, so the same images in every run, spread over its files. `min_count` (at
    least 1) sends rare label values to OTHER. `shuffle` (the default for "train" only) reads
    the shards in a seeded random order through a shuffle buffer.

    `exclude_vendored` and `exclude_generated` (both on by default) leave out the images of files
    that Linguist's rules call vendored (third-party copies: node_modules/, vendor/, jquery.js) or
    generated (minified code, protobuf stubs, lock files): code the repository's authors did not
    write, which GitHub leaves out of its language statistics for the same reason, and which
    repeats across repositories. Images whose flags are unknown (-1: a dataset built before the
    flags, or without enry-python) are kept. The cap counts only images these options keep; the
    vocabularies count every image, so ids do not change with the options.

    ValueError for an unknown split, label or split_by, or bad fractions.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    check_fractions(fractions)
    labels = _check_labels(labels)
    stratify_on = stratify_on or (labels[0] if labels else "language")
    _check_labels([stratify_on])
    manifest = read_manifest(output)
    height, width = manifest["image"]["shape"]
    pixel_dtype = tf.dtypes.as_dtype(manifest["image"]["dtype"])
    records = list(read_rows(output, "records"))
    files = list(read_rows(output, "files"))
    split_names = record_splits(
        records, files, split_by=split_by, label=stratify_on, fractions=fractions, seed=split_seed
    )
    split_index = SPLITS.index(split)
    in_split = _lookup({rid: SPLITS.index(name) for rid, name in split_names.items()}, -1)
    vocabulary = _vocabularies(labels, min_count, records, files)
    label_ids = {label: _label_lookup(label, vocabulary[label], records) for label in labels}
    excluded = [flag for flag, on in (("is_vendored", exclude_vendored), ("is_generated", exclude_generated)) if on]
    if excluded and not set(excluded) <= set(manifest["features"]):
        logging.getLogger(__name__).warning(
            "%s was built before Linguist's flags (files/ schema 2): nothing is left out as vendored or generated", output
        )
    kept = kept_copies(files, split_rank(split_names)) if dedup else None
    dropped = None
    if kept is not None:
        dropped = _lookup(
            {_file_key(row["record_id"], row["path"]): 1 for row in files
             if row["status"] == "imaged" and (row["record_id"], row["path"]) not in kept},
            0,
            key_dtype=tf.string,
        )
    threshold = None
    if max_images_per_repository is not None:
        repository = {row["record_id"]: repository_of(row) for row in records}
        thresholds = cap_thresholds(
            output, repository, height, min_lines, max_images_per_repository, excluded, files=files, kept=kept
        )
        if thresholds:  # else no repository has more images than the cap: nothing to hash
            threshold = _lookup(thresholds, HASH_BUCKETS)
    spec = {
        name: feature
        for name, feature in parse_spec(manifest).items()
        if name in FEATURES or name in labels or name in excluded
    }

    def parse_and_filter(serialized: tf.Tensor) -> tuple[dict, dict]:
        """A batch of serialized Examples -> (features, label ids) of those this split keeps (a smaller batch)."""
        examples = tf.io.parse_example(serialized, spec)
        kept_mask = (in_split(examples["record_id"]) == split_index) & (examples["n_lines"] >= min_lines)
        if dropped is not None:
            kept_mask &= dropped(_file_key_tensor(examples["record_id"], examples["path"])) == 0
        for flag in excluded:
            kept_mask &= examples[flag] != 1
        if threshold is not None:
            image_hash = image_hashes(examples["record_id"], examples["path"], examples["segment"])
            kept_mask &= image_hash <= threshold(examples["record_id"])
        pixels = tf.io.decode_raw(examples["image"], pixel_dtype, little_endian=True)
        features = {name: examples[name] for name in FEATURES}
        features["image"] = tf.reshape(pixels, [-1, height, width])  # dense from here on: masks and gathers copy rows
        element = features, {label: lookup(examples) for label, lookup in label_ids.items()}
        return tf.cond(
            tf.reduce_all(kept_mask),
            lambda: element,
            lambda: tf.nest.map_structure(lambda values: tf.boolean_mask(values, kept_mask), element),
        )

    shuffle = split == "train" if shuffle is None else shuffle
    paths = shard_paths(output, "images")
    if shuffle:
        random.Random(seed).shuffle(paths)
    dataset = tf.data.TFRecordDataset(paths, compression_type="GZIP", num_parallel_reads=tf.data.AUTOTUNE)
    dataset = dataset.batch(max(batch_size, READ_BATCH)).map(parse_and_filter, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = _shuffled_batches(dataset, batch_size, seed) if shuffle else dataset.rebatch(batch_size)
    return dataset.prefetch(tf.data.AUTOTUNE), vocabulary


def _shuffled_batches(batches: tf.data.Dataset, batch_size: int, seed: int) -> tf.data.Dataset:
    """Batches of (features, label ids) -> batches of `batch_size`, shuffled in blocks of about SHUFFLE_BUFFER images.

    The same mixing as a shuffle buffer of that size over shards read in a shuffled,
    interleaved order, done as one gather per block (in parallel) instead of one step per
    image. Each block's order is a stateless shuffle keyed by a seeded random stream that is
    drawn anew each epoch, so runs with one seed match and epochs differ.
    """
    block_size = batch_size * max(1, -(-SHUFFLE_BUFFER // batch_size))  # whole batches: only the last one is short

    def permute(block: tuple, key: tf.Tensor) -> tuple:
        order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(block[0]["record_id"])[0]), seed=key)
        return tf.nest.map_structure(lambda values: tf.gather(values, order), block)

    keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    blocks = tf.data.Dataset.zip((batches.rebatch(block_size), keys)).map(permute, num_parallel_calls=tf.data.AUTOTUNE)
    return blocks.rebatch(batch_size)


def image_hashes(record_id: tf.Tensor, path: tf.Tensor, segment: tf.Tensor) -> tf.Tensor:
    """A stable int64 hash in [0, HASH_BUCKETS) of each image's (record_id, path, segment), for [n] tensors.

    FarmHash Fingerprint64 of the path, XOR that of the little-endian bytes of (record_id,
    segment), so a batch is hashed without building a string per image (the same value on
    every little-endian machine and TensorFlow version).
    """
    numbers = tf.bitcast(tf.fingerprint(tf.stack([record_id, segment], axis=1)), tf.int64)
    return tf.math.floormod(tf.bitwise.bitwise_xor(numbers, tf.strings.to_hash_bucket_fast(path, HASH_BUCKETS)), HASH_BUCKETS)


def _file_key(record_id: int, path: str) -> str:
    """One file's key in lookup tables, as `_file_key_tensor` makes it from a batch."""
    return f"{record_id}\0{path}"


def _file_key_tensor(record_id: tf.Tensor, path: tf.Tensor) -> tf.Tensor:
    return tf.strings.join([tf.strings.as_string(record_id), path], separator="\0")


def cap_thresholds(
    output: str,
    repository: dict[int, int],
    height: int,
    min_lines: int,
    cap: int,
    excluded: Sequence[str] = (),
    *,
    files: Iterable[dict] | None = None,
    kept: set | None = None,
) -> dict[int, int]:
    """For each record whose repository has more than `cap` images of at least `min_lines` lines, in files
    none of whose `excluded` flags (fileinfo.FLAGS) is true: the hash of
    its repository's cap-th smallest image, so that keeping images hashed at most that keeps exactly `cap`
    (barring two of its images with the same 63-bit hash).

    The images are listed from files/ (an image's lines follow from its file's: every block but
    the last has `height`), which is far cheaper than reading images/; `files` are those rows if
    already read. With `kept` (a set of (record_id, path), see `load`'s dedup) only those files count.
    """
    record_ids, paths, segments = [], [], []
    for row in read_rows(output, "files") if files is None else files:
        if any(row[flag] for flag in excluded):
            continue
        if kept is not None and (row["record_id"], row["path"]) not in kept:
            continue
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
