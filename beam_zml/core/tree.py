"""A repository's file hierarchy as a flat list of nodes (docs/dataset-format.md#tree), and as a graph."""

from __future__ import annotations

import posixpath
from typing import Iterable

ROOT = ""


def build_tree(files: Iterable[tuple[str, int]]) -> list[dict]:
    """Nodes for every file and every directory above it, sorted by path.

    `files` holds (path, size) pairs with POSIX paths relative to the repository
    root, without empty, "." or ".." components (raises ValueError otherwise). The root is the node with path "" and parent None; a directory's size
    and n_files add up everything below it.
    """
    nodes = {ROOT: _node(ROOT, None, "dir")}
    for path, size in files:
        if not path or any(part in ("", ".", "..") for part in path.split("/")):
            raise ValueError(f"not a relative path inside the repository: {path!r}")
        nodes[path] = _node(path, _parent(path), "file", size=size, n_files=1)
        child = path
        while child != ROOT:
            parent = _parent(child)
            node = nodes.setdefault(parent, _node(parent, None if parent == ROOT else _parent(parent), "dir"))
            node["size"] += size
            node["n_files"] += 1
            child = parent
    return [nodes[path] for path in sorted(nodes)]


def to_networkx(tree: list[dict]):
    """A networkx DiGraph with an edge from each directory to each child; node attributes are the node fields."""
    import networkx as nx

    graph = nx.DiGraph()
    for node in tree:
        graph.add_node(node["path"], **node)
    for node in tree:
        if node["parent"] is not None:
            graph.add_edge(node["parent"], node["path"])
    return graph


def _parent(path: str) -> str:
    """The parent directory; "" (the root) for a top-level entry. Never loops, whatever the path."""
    return path.rsplit("/", 1)[0] if "/" in path else ROOT


def _node(path: str, parent: str | None, kind: str, *, size: int = 0, n_files: int = 0) -> dict:
    return {
        "path": path,
        "parent": parent,
        "name": posixpath.basename(path),
        "depth": 0 if path == ROOT else path.count("/") + 1,
        "kind": kind,
        "size": size,
        "n_files": n_files,
    }
