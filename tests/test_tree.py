import pytest

from beam_zml.core.tree import build_tree, to_networkx


def test_directories_sum_sizes_and_files_below_them():
    tree = build_tree([("a/b.py", 10), ("a/c/d.txt", 5), ("README", 3)])
    nodes = {node["path"]: node for node in tree}
    assert [node["path"] for node in tree] == ["", "README", "a", "a/b.py", "a/c", "a/c/d.txt"]
    assert nodes[""] == {"path": "", "parent": None, "name": "", "depth": 0, "kind": "dir", "size": 18, "n_files": 3}
    assert nodes["a"]["size"] == 15 and nodes["a"]["n_files"] == 2 and nodes["a"]["parent"] == ""
    assert nodes["a/c/d.txt"] == {
        "path": "a/c/d.txt", "parent": "a/c", "name": "d.txt", "depth": 3, "kind": "file", "size": 5, "n_files": 1
    }


def test_empty_repository_is_just_the_root():
    assert build_tree([]) == [{"path": "", "parent": None, "name": "", "depth": 0, "kind": "dir", "size": 0, "n_files": 0}]


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "a//b", "a/./b", ""])
def test_paths_outside_the_repository_are_refused(path):
    with pytest.raises(ValueError):
        build_tree([(path, 1)])


def test_networkx_graph_is_a_tree_rooted_at_the_root():
    import networkx as nx

    graph = to_networkx(build_tree([("a/b.py", 10), ("a/c/d.txt", 5), ("README", 3)]))
    assert nx.is_arborescence(graph)
    assert set(graph.successors("")) == {"a", "README"}
    assert graph.nodes["a"]["size"] == 15
