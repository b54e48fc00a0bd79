"""Looking into ROOT files before a run: trees, branches, and how many events pass cuts.

What the wizard shows per file and per branch, and its cut preview::

    info = describe_file("samples/signal.root")
    info.entries, info.trees, [(b.name, b.kind, b.type) for b in info.branches]
    preview_selection(["samples/signal.root"], "events", preproc)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import Preproc
from .errors import UserError
from .preprocess import add_new_branches, event_mask
from .selection import check_expression_names, unsupported_reason
from .sources import open_file, open_input, resolve_path, safe_list_trees

IDENTIFIER_NAMES = ("runNo", "evtNo", "lumi", "run", "event", "luminosityBlock", "evt", "ls")
"""Branch names that identify events; front ends leave them out of the inputs."""


@dataclass(frozen=True)
class BranchInfo:
    """One branch: ``kind`` is 'flat', 'jagged' or 'unusable' (with ``note`` saying why)."""

    name: str
    kind: str
    type: str
    note: str = ""


@dataclass
class FileInfo:
    """A ROOT file's trees and the branches of one of them."""

    path: str
    size: int
    trees: list[str]
    tree: str
    entries: int
    branches: list[BranchInfo] = field(default_factory=list)

    @property
    def identifiers(self) -> list[str]:
        """The branches whose names mark them as event identifiers."""
        return [b.name for b in self.branches if b.name in IDENTIFIER_NAMES]


def _branch_info(name: str, branch: object) -> BranchInfo:
    typename = str(getattr(branch, "typename", "?"))
    reason = unsupported_reason(branch)
    if reason:
        return BranchInfo(name, "unusable", typename, reason)
    jagged = "[]" in typename or typename.startswith("std::vector<")
    return BranchInfo(name, "jagged" if jagged else "flat", typename)


def list_file_trees(name: str, *, redirector: str = "") -> list[str]:
    """The trees (TTrees and RNTuples) in a file, with clear errors when it cannot be read."""
    path, file = open_file(name, redirector=redirector)
    with file:
        return safe_list_trees(file, path)


def describe_file(name: str, tree: str | None = None, *, redirector: str = "") -> FileInfo:
    """Trees, entries, size and branches (kind and type) of ``tree`` (default: the first)."""
    if tree is None:
        trees = list_file_trees(name, redirector=redirector)
        if not trees:
            raise UserError(f"{resolve_path(name, redirector)}: no TTree or RNTuple in this file")
        tree = trees[0]
    source = open_input(name, tree, redirector=redirector)
    try:
        trees = safe_list_trees(source.file, source.path)
        keys = source.tree.keys(recursive=False) if hasattr(source.tree, "keys") else []
        branches = [_branch_info(k, source.tree[k]) for k in keys]
        return FileInfo(source.path, int(source.file.file.fEND), trees, tree, source.entries,
                        branches)
    finally:
        source.close()


@dataclass(frozen=True)
class SelectionPreview:
    """Events read from the first entries of each file and how many pass the cuts."""

    read: int
    passed: int


def preview_selection(names: list[str], tree: str, preproc: Preproc, *, redirector: str = "",
                      events_per_file: int = 10_000) -> SelectionPreview:
    """Apply ``preproc`` (new branches, cuts) to the first events of each file."""
    read = passed = 0
    for name in names:
        source = open_input(name, tree, redirector=redirector)
        try:
            available = list(source.tree.keys(recursive=False))
            check_expression_names(preproc, available, source.path)
            needed = sorted(preproc.names_used & set(available))
            stop = min(source.entries, events_per_file)
            if not needed:
                read, passed = read + stop, passed + stop
                continue
            arrays = source.arrays(needed, 0, stop)
            columns = {n: arrays[n] for n in needed}
            add_new_branches(columns, preproc)
            read += stop
            passed += int(event_mask(columns, preproc, stop).sum())
        finally:
            source.close()
    return SelectionPreview(read, passed)
