"""beam_zml.consume.tfdata on a dataset built from small real repositories: splits, labels, filters, the cap."""

from __future__ import annotations

import collections
import io
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from beam_zml.consume import tfdata, zenodo_ml
from beam_zml.consume.dataset import read_examples, read_rows
from beam_zml.core import examples as examples_module
from pipelines import build_dataset

STDLIB_MODULES = [
    "textwrap.py", "csv.py", "glob.py", "fnmatch.py", "shlex.py", "colorsys.py", "bisect.py", "heapq.py",
    "sched.py", "keyword.py", "copy.py", "string.py", "tabnanny.py", "pprint.py", "reprlib.py", "numbers.py",
    "stat.py", "genericpath.py", "posixpath.py", "linecache.py", "token.py", "tokenize.py", "queue.py", "struct.py",
]  # fmt: skip
N_REPOSITORIES = 24  # with splits of 1/3 each, a split is empty with odds about 3 * (2/3)**24 = 1 in 5,000
FRACTIONS = (0.34, 0.33, 0.33)


def c_source(n_functions: int) -> str:
    """A C file of `n_functions` small functions and a main: 8 + 8 * n_functions lines."""
    functions = "".join(
        f"\nstatic int step_{i}(int x)\n{{\n    if (x < {i}) {{\n        return x * {i};\n    }}\n    return x - {i};\n}}\n"
        for i in range(n_functions)
    )
    main = 'int main(void)\n{\n    printf("%d\\n", step_0(1));\n    return 0;\n}\n'
    return f"#include <stdio.h>\n#include <stdlib.h>\n{functions}\n{main}"


def write_small_repositories(root: Path) -> list[Path]:
    """Repositories of Python (from the standard library), C, Markdown and JSON files, of different lengths."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    repositories = []
    for index in range(N_REPOSITORIES):
        repository = root / f"repo{index:02d}"
        (repository / "src").mkdir(parents=True)
        shutil.copy(stdlib / STDLIB_MODULES[index], repository / "src" / STDLIB_MODULES[index])
        (repository / "src" / "step.c").write_text(c_source(3 + 4 * index))
        (repository / "README.md").write_text(f"# Project {index}\n\n" + "".join(f"- item {i}\n" for i in range(index * 7)))
        (repository / "config.json").write_text(json.dumps({"name": f"project{index}", "values": list(range(index))}, indent=2))
        repositories.append(repository)
    return repositories


def build_small_dataset(root: Path) -> str:
    output = str(root / "dataset")
    build_dataset.run(["--local", *map(str, write_small_repositories(root / "repositories")), "--output", output])
    return output


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> str:
    return build_small_dataset(tmp_path_factory.mktemp("tfdata"))


@pytest.fixture(scope="module")
def examples(built) -> dict[tuple, dict]:
    """Every image of the dataset as read_examples gives it, by (record_id, path, segment)."""
    return {(e["record_id"], e["path"].decode(), e["segment"]): e for e in read_examples(built)}


def image_keys(dataset) -> list[tuple]:
    """(record_id, path, segment) of every image of a loaded split."""
    keys = []
    for features, _ in dataset:
        for record_id, path, segment in zip(*(features[name].numpy().tolist() for name in ("record_id", "path", "segment"))):
            keys.append((record_id, path.decode(), segment))
    return keys


def test_batches_are_images_of_the_dataset_dtype_with_labels_from_the_vocabularies(built, examples):
    labels = ("language", "extension", "source", "license")
    dataset, vocabularies = tfdata.load(built, "train", labels=labels, batch_size=5, fractions=FRACTIONS)
    batches = list(dataset)
    assert batches
    for features, label_ids in batches:
        assert features["image"].dtype.name == "uint16"
        assert features["image"].shape[1:] == (80, 80) and 1 <= features["image"].shape[0] <= 5
        for row, key in enumerate(zip(*(features[name].numpy().tolist() for name in ("record_id", "path", "segment")))):
            example = examples[(key[0], key[1].decode(), key[2])]
            np.testing.assert_array_equal(features["image"][row].numpy(), example["image"])
            assert vocabularies["language"][label_ids["language"][row]] == example["language"].decode()
            assert vocabularies["extension"][label_ids["extension"][row]] == example["extension"].decode()
            assert vocabularies["source"][label_ids["source"][row]] == "local"
            assert vocabularies["license"][label_ids["license"][row]] == ""  # local repositories have none


def test_vocabularies_list_values_by_images_most_first_then_other(built, examples):
    images = collections.Counter(e["language"].decode() for e in examples.values())
    vocabulary = tfdata.vocabularies(built, ["language"])["language"]
    assert vocabulary[-1] == tfdata.OTHER
    assert sorted(vocabulary[:-1]) == sorted(images)
    assert [images[value] for value in vocabulary[:-1]] == sorted(images.values(), reverse=True)
    rare = min(images.values())
    assert tfdata.vocabularies(built, ["language"], min_count=rare + 1)["language"] == [
        value for value in vocabulary if value == tfdata.OTHER or images[value] > rare
    ]


def test_splits_hold_disjoint_repositories_and_together_every_image(built, examples):
    keys = {split: image_keys(tfdata.load(built, split, fractions=FRACTIONS)[0]) for split in tfdata.SPLITS}
    records = {split: {key[0] for key in found} for split, found in keys.items()}
    assert all(records.values()), "a split is empty"
    assert not records["train"] & records["validation"]
    assert not records["train"] & records["test"]
    assert not records["validation"] & records["test"]
    assert sorted(key for found in keys.values() for key in found) == sorted(examples)
    placed = tfdata.splits(built, fractions=FRACTIONS)
    for split, found in records.items():
        assert {placed[record_id] for record_id in found} == {split}


def test_split_of_is_stable_and_follows_the_fractions():
    assert [tfdata.split_of(repository) for repository in (1, 2, 5, 15, 20, 1065022)] == [
        "train", "validation", "test", "validation", "test", "train",
    ]  # fmt: skip
    counts = collections.Counter(tfdata.split_of(repository) for repository in range(20_000))
    assert abs(counts["train"] / 20_000 - 0.8) < 0.01 and abs(counts["test"] / 20_000 - 0.1) < 0.01
    assert {tfdata.split_of(repository, (0, 0, 1)) for repository in range(100)} == {"test"}


def test_a_concept_is_one_repository_whatever_its_versions():
    versions = [{"record_id": record_id, "concept_id": 42} for record_id in range(100, 120)]
    assert {tfdata.repository_of(row) for row in versions} == {42}
    assert tfdata.repository_of({"record_id": 7, "concept_id": None}) == 7


def test_min_lines_drops_exactly_the_images_with_fewer_lines(built, examples):
    kept = [key for split in tfdata.SPLITS for key in image_keys(tfdata.load(built, split, min_lines=31, fractions=FRACTIONS)[0])]
    assert sorted(kept) == sorted(key for key, example in examples.items() if example["n_lines"] >= 31)
    assert len(kept) < len(examples)


@pytest.mark.parametrize("min_lines", [0, 31])
def test_the_cap_keeps_exactly_that_many_images_of_each_repository_the_same_each_time(built, examples, min_lines):
    cap = 3
    eligible = collections.Counter(record_id for (record_id, _, _), e in examples.items() if e["n_lines"] >= min_lines)
    assert max(eligible.values()) > cap
    kept = [
        key
        for split in tfdata.SPLITS
        for key in image_keys(
            tfdata.load(built, split, min_lines=min_lines, max_images_per_repository=cap, fractions=FRACTIONS, shuffle=True)[0]
        )
    ]
    assert collections.Counter(key[0] for key in kept) == {record_id: min(cap, n) for record_id, n in eligible.items()}
    assert all(examples[key]["n_lines"] >= min_lines for key in kept)
    again = image_keys(
        tfdata.load(built, "train", min_lines=min_lines, max_images_per_repository=cap, fractions=FRACTIONS, seed=7)[0]
    )
    placed = tfdata.splits(built, fractions=FRACTIONS)
    assert set(again) == {key for key in kept if placed[key[0]] == "train"}


def test_the_cap_spans_all_records_of_one_concept(built):
    records = list(read_rows(built, "records"))
    one_concept = {row["record_id"]: 1 for row in records}  # as if every record were a version of concept 1
    thresholds = tfdata.cap_thresholds(built, one_concept, 80, 0, 5)
    assert set(thresholds) == set(one_concept) and len(set(thresholds.values())) == 1


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"split": "dev"}, "split must be one of"),
        ({"labels": ("colour",)}, "unknown label 'colour'"),
        ({"fractions": (0.5, 0.5, 0.5)}, "fractions must be"),
    ],
)
def test_bad_arguments_are_refused(built, arguments, message):
    with pytest.raises(ValueError, match=message):
        tfdata.load(built, **arguments)


def test_images_come_in_the_pixel_dtype_of_the_dataset(tmp_path):
    repository = tmp_path / "repository"
    repository.mkdir()
    (repository / "smile.py").write_text("print('😀')\n")
    output = str(tmp_path / "dataset")
    build_dataset.run(["--local", str(repository), "--output", output, "--pixel-dtype", "int32"])
    dataset, _ = tfdata.load(output, tfdata.splits(output)[next(read_rows(output, "records"))["record_id"]], labels=())
    ((features, _),) = dataset
    assert features["image"].dtype.name == "int32"
    assert features["image"][0, 0, 7].numpy() == ord("😀")


def test_zenodo_ml_loaders_give_the_images_tf_data_reads_and_the_tree_and_record(built, examples):
    records = {row["record_id"]: row for row in read_rows(built, "records")}
    for record_id in sorted(records)[:3]:
        images = zenodo_ml.load_images(built, record_id)
        expected = collections.defaultdict(dict)
        for (rid, path, segment), example in examples.items():
            if rid == record_id:
                expected[path][segment] = example["image"]
        assert sorted(images) == sorted(expected) and list(images) == sorted(images)
        for path, arrays in images.items():
            assert len(arrays) == len(expected[path])
            for segment, array in enumerate(arrays):
                assert array.shape == (80, 80) and array.dtype == np.uint16
                np.testing.assert_array_equal(array, expected[path][segment])
        metadata = zenodo_ml.load_metadata(built, record_id)
        assert metadata["tree"] == records[record_id]["tree"] and metadata["tree"][0]["path"] == ""
        assert metadata["hit"] is None  # local repositories have no Zenodo record
        assert metadata["record"]["record_id"] == record_id and "tree" not in metadata["record"]
    with pytest.raises(KeyError, match="record 1 is not in"):
        zenodo_ml.load_images(built, 1)
    with pytest.raises(KeyError, match="record 1 is not in"):
        zenodo_ml.load_metadata(built, 1)


def test_zenodo_ml_loaders_never_import_tensorflow(built):
    record_id = next(read_rows(built, "records"))["record_id"]
    script = (
        "import sys; from beam_zml.consume.zenodo_ml import load_images, load_metadata; "
        f"images = load_images({built!r}, {record_id}); load_metadata({built!r}, {record_id}); "
        "assert images and 'tensorflow' not in sys.modules, sorted(m for m in sys.modules if 'tensorflow' in m)[:3]"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_zenodo_ml_payloads_refuse_a_cut_stream():
    framed = examples_module.tfrecord_frame(b"payload")
    assert list(zenodo_ml.tfrecord_payloads(io.BytesIO(framed * 2))) == [b"payload", b"payload"]
    with pytest.raises(ValueError, match="inside a record"):
        list(zenodo_ml.tfrecord_payloads(io.BytesIO(framed[:-3])))


def test_shuffling_mixes_the_order_the_same_way_for_a_seed_and_anew_each_epoch(built):
    def order(dataset) -> list[tuple]:
        return image_keys(dataset)

    dataset, _ = tfdata.load(built, "train", fractions=FRACTIONS, shuffle=True, seed=3, batch_size=7)
    first, second = order(dataset), order(dataset)
    plain = image_keys(tfdata.load(built, "train", fractions=FRACTIONS, shuffle=False, batch_size=7)[0])
    assert sorted(first) == sorted(second) == sorted(plain)
    assert first != second and first != plain
    assert order(tfdata.load(built, "train", fractions=FRACTIONS, shuffle=True, seed=3, batch_size=7)[0]) == first
    sizes = [int(features["image"].shape[0]) for features, _ in dataset]
    assert set(sizes[:-1]) == {7} and 1 <= sizes[-1] <= 7
