"""Step 1, data: files from the home folder or remote URLs, a label per file, the tree."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as w

from mlaas4hep.browse import FileInfo, describe_file, list_file_trees
from mlaas4hep.config import read_files_and_labels
from mlaas4hep.sources import is_remote

from .messages import error_text, guarded, message_box, show

LABELS = [("signal (1)", 1), ("background (0)", 0)] + [(f"class {k}", k) for k in range(2, 10)]
MAX_LISTED = 500


def root_files_under(home: Path, limit: int = MAX_LISTED) -> list[str]:
    """ROOT files under ``home`` (hidden folders and run outputs skipped), relative paths."""
    found = (p for p in home.rglob("*.root")
             if not any(part.startswith(".") for part in p.relative_to(home).parts)
             and p.is_file())
    return sorted(str(p.relative_to(home)) for p in itertools.islice(found, limit))


def human_size(n: int) -> str:
    """1234567 -> '1.2 MB'."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


@dataclass
class FileRow:
    """One chosen file: its name, label dropdown, what is known about it."""

    name: str
    label: w.Dropdown
    info: w.HTML
    widget: w.HBox
    described: FileInfo | None = None


class DataStep:
    """Choose files (home folder browser or URLs), label each, pick the tree."""

    def __init__(self, home: Path):
        self.home = home
        self.rows: list[FileRow] = []
        self._loading = False
        self.message = message_box()
        self.chooser = w.SelectMultiple(options=root_files_under(home), rows=6,
                                        description="Your files",
                                        layout=w.Layout(width="60%"))
        self.chooser.add_class("mlaas4hep-file-chooser")
        self.add_selected = w.Button(description="Add selected", icon="plus")
        self.add_selected.add_class("mlaas4hep-add-selected")
        self.refresh = w.Button(description="Rescan", icon="refresh")
        self.url = w.Text(placeholder="root://host//path/file.root, https://..., or /store/...",
                          description="Remote file", layout=w.Layout(width="60%"))
        self.add_url = w.Button(description="Add URL", icon="plus")
        self.redirector = w.Text(placeholder="root://xrootd.ba.infn.it", description="Redirector",
                                 continuous_update=False, layout=w.Layout(width="60%"))
        self.tree = w.Dropdown(options=[], description="Tree")
        self.table = w.VBox()
        self.on_change: list = []  # callbacks run when files or tree change
        self.add_selected.on_click(lambda _: self._add_selected())
        self.refresh.on_click(lambda _: self.rescan())
        self.add_url.on_click(lambda _: self._add_url())
        self.tree.observe(lambda _: self._tree_changed(), names="value")
        self.redirector.observe(lambda _: (self._load_trees(), self._changed()), names="value")
        self.widget = w.VBox([
            w.HTML("<b>Choose ROOT files</b>: pick files in your home folder or paste URLs; "
                   "give each a label (1 = signal, 0 = background)."),
            w.HBox([self.chooser, w.VBox([self.add_selected, self.refresh])]),
            w.HBox([self.url, self.add_url]), self.redirector, self.tree,
            w.HTML("<b>Chosen files</b>"), self.table, self.message,
        ])

    # files -------------------------------------------------------------------------------
    def rescan(self) -> None:
        """List the ROOT files under the home folder again."""
        self.chooser.options = root_files_under(self.home)

    @guarded(lambda self: self.message)
    def _add_selected(self) -> None:
        for name in self.chooser.value:
            self.add(str(self.home / name))

    @guarded(lambda self: self.message)
    def _add_url(self) -> None:
        name = self.url.value.strip()
        if name:
            self.add(name)
            self.url.value = ""

    def add(self, name: str, label: int | None = None) -> FileRow:
        """Add a file (path or URL) with ``label`` (default: signal for the first, then
        background); unreadable files are listed and flagged in red."""
        if not is_remote(name) and not name.startswith("/store/"):
            name = str((self.home / name).resolve())  # exported runs work from any folder
        if any(r.name == name for r in self.rows):
            show(self.message, f"{name} is already chosen", "warning")
            return next(r for r in self.rows if r.name == name)
        if label is None:
            label = 1 if not self.rows else 0
        dropdown = w.Dropdown(options=LABELS, value=label, layout=w.Layout(width="150px"))
        remove = w.Button(icon="trash", tooltip="remove", layout=w.Layout(width="40px"))
        info = w.HTML()
        shown = name[len(str(self.home)) + 1:] if name.startswith(f"{self.home}/") else name
        row = FileRow(name, dropdown, info, w.HBox([
            w.Label(shown, layout=w.Layout(width="40%")), dropdown, info, remove]))
        remove.on_click(lambda _: self.remove(row))
        self.rows.append(row)
        self.table.children = [r.widget for r in self.rows]
        show(self.message, "")
        if len(self.rows) == 1:
            self._load_trees()
        else:
            self._describe(row)
        self._changed()
        return row

    def remove(self, row: FileRow) -> None:
        """Drop a chosen file."""
        was_first = row is self.rows[0]
        self.rows.remove(row)
        self.table.children = [r.widget for r in self.rows]
        if was_first:
            self._load_trees()
        self._changed()

    def load_lists(self, files: Path, labels: Path) -> None:
        """Add the files of a files.txt / labels.txt pair."""
        for name, label in read_files_and_labels(files, labels):
            self.add(name, label)

    # tree and per-file information -------------------------------------------------------
    def _load_trees(self) -> None:
        trees: list[str] = []
        if self.rows:
            try:
                trees = list_file_trees(self.rows[0].name, redirector=self.redirector_value)
            except Exception as exc:
                show(self.rows[0].info, error_text(exc), "error")
        self._loading = True
        try:
            self.tree.options = trees
            self.tree.value = trees[0] if trees else None
        finally:
            self._loading = False
        self._describe_all()

    def _tree_changed(self) -> None:
        if self._loading:
            return
        self._describe_all()
        self._changed()

    def _describe_all(self) -> None:
        for row in self.rows:
            self._describe(row)

    def _describe(self, row: FileRow) -> None:
        row.described = None
        if not self.tree.value:
            if row is not self.rows[0] or not row.info.value:
                show(row.info, "no tree to read (see the first file)", "error")
            return
        try:
            row.described = describe_file(row.name, self.tree.value,
                                          redirector=self.redirector_value)
        except Exception as exc:
            show(row.info, error_text(exc), "error")
            return
        d = row.described
        show(row.info, f"{d.entries:,} entries, {human_size(d.size)}", "ok")

    def _changed(self) -> None:
        for callback in self.on_change:
            callback()

    # what the other steps read -----------------------------------------------------------
    @property
    def redirector_value(self) -> str:
        """The redirector for /store/ paths ('' = none)."""
        return self.redirector.value.strip()

    @property
    def first(self) -> FileInfo | None:
        """What is known about the first readable file (its branches drive the features)."""
        return next((r.described for r in self.rows if r.described is not None), None)

    def pairs(self) -> list[tuple[str, int]]:
        """(file, label) for every chosen file."""
        return [(r.name, r.label.value) for r in self.rows]
