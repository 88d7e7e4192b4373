"""storage: paths are taken literally, even where Beam's FileSystems would read them as globs."""

from __future__ import annotations

import pytest

from beam_zml import storage


@pytest.mark.parametrize("name", ["out[1]", "a*b", "what?", "x[!y]z"])
def test_listing_and_deleting_take_a_glob_named_folder_literally(tmp_path, name):
    folder = tmp_path / name
    decoys = [tmp_path / "out1", tmp_path / "aXb", tmp_path / "whatX", tmp_path / "xqz"]
    for target in [folder, *decoys]:
        target.mkdir()
        (target / "shard-0.avro").write_bytes(b"x")
    (folder / "sub").mkdir()
    (folder / "sub" / "deep.txt").write_bytes(b"y")

    assert storage.list_folder(str(folder), "*.avro") == [str(folder / "shard-0.avro")]
    storage.delete([str(folder / "shard-0.avro"), str(folder / "sub"), str(folder / "gone.avro")])

    assert list(folder.iterdir()) == []
    assert all((decoy / "shard-0.avro").exists() for decoy in decoys)


def test_a_bare_file_name_is_written_atomically_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage.write_atomically("records.jsonl", lambda handle: handle.write(b"{}\n"))  # zml harvest --output records.jsonl
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.jsonl"]
