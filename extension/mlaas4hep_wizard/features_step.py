"""Step 2, features: input branches, new branches and cuts, checked as you type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ipywidgets as w

from mlaas4hep.browse import BranchInfo, preview_selection
from mlaas4hep.config import parse_preproc
from mlaas4hep.errors import UserError
from mlaas4hep.expressions import Expression, parse_expression
from mlaas4hep.selection import check_names

from .data_step import DataStep
from .messages import error_text, guarded, message_box, show

CUT_KINDS = [("flat (one value per event)", ""), ("jagged: any element passes", "any"),
             ("jagged: all elements pass", "all")]
PREVIEW_EVENTS = 10_000


@dataclass
class NewBranchChoice:
    """A new branch as the user defined it."""

    name: str
    expression: str
    kind: str
    input: bool


@dataclass
class CutChoice:
    """A cut as the user defined it ('' = flat, else 'any'/'all' for a jagged cut)."""

    expression: str
    reduce: str


class FeaturesStep:
    """Branch list (search, all/none, identifiers left out), new-branch and cut builders."""

    def __init__(self, data: DataStep):
        self.data = data
        self.branches: list[BranchInfo] = []
        self.boxes: dict[str, w.Checkbox] = {}
        self.new_branches: list[NewBranchChoice] = []
        self.cuts: list[CutChoice] = []
        self.message = message_box()
        self.search = w.Text(placeholder="filter branches", description="Search",
                             continuous_update=True)
        self.select_all = w.Button(description="Select all shown")
        self.select_none = w.Button(description="Select none shown")
        self.branch_list = w.VBox(layout=w.Layout(max_height="260px", overflow="auto"))
        self.summary = w.HTML()

        self.nb_name = w.Text(placeholder="name, e.g. log_partonE", description="New branch")
        self.nb_expr = w.Text(placeholder="expression, e.g. log(partonE)",
                              description="Expression", continuous_update=True)
        self.nb_kind = w.Dropdown(options=["flat", "jagged"], description="Type")
        self.nb_input = w.Checkbox(value=True, description="use as an input")
        self.nb_add = w.Button(description="Add branch", icon="plus")
        self.nb_check = message_box()
        self.nb_list = w.VBox()

        self.cut_expr = w.Text(placeholder="e.g. nJets >= 4 or partonPt > 200",
                               description="Cut", continuous_update=True)
        self.cut_kind = w.Dropdown(options=CUT_KINDS, description="Kind")
        self.cut_add = w.Button(description="Add cut", icon="plus")
        self.cut_add.add_class("mlaas4hep-add-cut")
        self.cut_expr.add_class("mlaas4hep-cut-expression")
        self.cut_check = message_box()
        self.cut_list = w.VBox()
        self.preview = message_box()
        self.preview_button = w.Button(description="Preview cuts", icon="filter")

        self.search.observe(lambda _: self._filter(), names="value")
        self.select_all.on_click(lambda _: self._set_shown(True))
        self.select_none.on_click(lambda _: self._set_shown(False))
        for field in (self.nb_name, self.nb_expr, self.nb_kind):
            field.observe(lambda _: self._check_new_branch(), names="value")
        self.cut_expr.observe(lambda _: self._check_cut(), names="value")
        self.nb_add.on_click(lambda _: self._add_new_branch())
        self.cut_add.on_click(lambda _: self._add_cut())
        self.preview_button.on_click(lambda _: self.update_preview())
        data.on_change.append(self.reload)
        self.widget = w.VBox([
            w.HTML("<b>Input branches</b> (identifiers such as run and event numbers are left "
                   "out; branches that are not numbers cannot be inputs)"),
            w.HBox([self.search, self.select_all, self.select_none]), self.branch_list,
            self.summary,
            w.HTML("<b>New branches</b> computed from others (functions: log, exp, sqrt, abs, "
                   "sin, cos, ..., count, sum)"),
            w.HBox([self.nb_name, self.nb_kind]), w.HBox([self.nb_expr, self.nb_input]),
            w.HBox([self.nb_add, self.nb_check]), self.nb_list,
            w.HTML("<b>Cuts</b>: events failing any cut are dropped before training"),
            w.HBox([self.cut_expr, self.cut_kind]), w.HBox([self.cut_add, self.cut_check]),
            self.cut_list, w.HBox([self.preview_button, self.preview]), self.message,
        ])

    # branch list -------------------------------------------------------------------------
    def reload(self) -> None:
        """Show the branches of the first readable file (keeping choices by name)."""
        info = self.data.first
        old = {name: box.value for name, box in self.boxes.items()}
        self.branches = info.branches if info else []
        identifiers = set(info.identifiers) if info else set()
        self.boxes = {}
        for b in self.branches:
            note = "identifier, not an input" if b.name in identifiers else b.note
            box = w.Checkbox(value=old.get(b.name, b.kind != "unusable" and not note),
                             description=f"{b.name}  [{b.kind}, {b.type}]"
                                         + (f" — {note}" if note else ""),
                             disabled=bool(note), indent=False,
                             layout=w.Layout(width="95%"))
            box.observe(lambda _: self._summarise(), names="value")
            self.boxes[b.name] = box
        self.branch_list.children = list(self.boxes.values())
        self._filter()
        self._summarise()

    def _filter(self) -> None:
        text = self.search.value.strip().lower()
        for name, box in self.boxes.items():
            box.layout.display = "" if text in name.lower() else "none"

    def _set_shown(self, value: bool) -> None:
        for box in self.boxes.values():
            if box.layout.display != "none" and not box.disabled:
                box.value = value

    def _summarise(self) -> None:
        chosen = len(self.chosen_branches())
        usable = sum(not box.disabled for box in self.boxes.values())
        show(self.summary, f"{chosen} of {usable} usable branches chosen as inputs"
             if self.boxes else "add a readable file in step 1 to see its branches",
             "info" if chosen or not self.boxes else "error")

    def chosen_branches(self) -> list[str]:
        """The branches ticked as inputs."""
        return [n for n, box in self.boxes.items() if box.value and not box.disabled]

    # expressions ---------------------------------------------------------------------------
    def known_names(self) -> set[str]:
        """Branch names and new-branch names an expression may use."""
        return {b.name for b in self.branches} | {nb.name for nb in self.new_branches}

    def parse(self, text: str, where: str) -> Expression:
        """Parse with the framework's whitelist and check every name exists."""
        expression = parse_expression(text, where=where)
        check_names(expression, self.known_names(), where)
        return expression

    def _explain(self, box: w.HTML, check: Callable[[], Any], ok: str) -> bool:
        try:
            check()
        except Exception as exc:
            show(box, error_text(exc), "error")
            return False
        show(box, ok, "ok")
        return True

    def _check_new_branch(self) -> bool:
        if not self.nb_expr.value.strip() and not self.nb_name.value.strip():
            show(self.nb_check, "")
            return False

        def check() -> None:
            name = self.nb_name.value.strip()
            if not name.isidentifier():
                raise UserError(f"new branch: the name must be a valid identifier "
                                f"(letters, digits, _), got {name!r}")
            if name in self.known_names():
                raise UserError(f"new branch: '{name}' already exists; choose another name")
            self.parse(self.nb_expr.value, "new branch")

        return self._explain(self.nb_check, check, "valid expression")

    def _check_cut(self) -> bool:
        if not self.cut_expr.value.strip():
            show(self.cut_check, "")
            return False
        return self._explain(self.cut_check, lambda: self.parse(self.cut_expr.value, "cut"),
                             "valid cut")

    @guarded(lambda self: self.message)
    def _add_new_branch(self) -> None:
        if not self._check_new_branch():
            return
        self.add_new_branch(self.nb_name.value.strip(), self.nb_expr.value.strip(),
                            self.nb_kind.value, self.nb_input.value)
        self.nb_name.value = self.nb_expr.value = ""

    def add_new_branch(self, name: str, expression: str, kind: str = "flat",
                       use_as_input: bool = True) -> None:
        """Define a new branch (checked like preproc.json's new_branch)."""
        self.parse(expression, f"new branch {name}")
        self.new_branches.append(NewBranchChoice(name, expression, kind, use_as_input))
        self._show_lists()

    @guarded(lambda self: self.message)
    def _add_cut(self) -> None:
        if not self._check_cut():
            return
        self.add_cut(self.cut_expr.value.strip(), self.cut_kind.value)
        self.cut_expr.value = ""

    def add_cut(self, expression: str, reduce: str = "") -> None:
        """Add a cut ('' = flat, 'any'/'all' = jagged) and preview its effect."""
        self.parse(expression, "cut")
        self.cuts.append(CutChoice(expression, reduce))
        self._show_lists()
        self.update_preview()

    def _show_lists(self) -> None:
        def row(text: str, drop: Callable[[], None]) -> w.HBox:
            button = w.Button(icon="trash", tooltip="remove", layout=w.Layout(width="40px"))
            button.on_click(lambda _: (drop(), self._show_lists(), self.update_preview()))
            return w.HBox([w.Label(text), button])

        self.nb_list.children = [
            row(f"{nb.name} = {nb.expression}  [{nb.kind}{'' if nb.input else ', cut only'}]",
                lambda nb=nb: self.new_branches.remove(nb)) for nb in self.new_branches]
        self.cut_list.children = [
            row(f"{c.expression}" + (f"  [{c.reduce} elements]" if c.reduce else ""),
                lambda c=c: self.cuts.remove(c)) for c in self.cuts]

    # preproc.json ------------------------------------------------------------------------
    def preproc(self) -> dict[str, Any]:
        """The preproc.json contents for the new branches and cuts."""
        out: dict[str, dict[str, Any]] = {}
        for nb in self.new_branches:
            entry: dict[str, Any] = {"def": nb.expression, "type": nb.kind}
            if not nb.input:
                entry["remove"] = True
            out.setdefault("new_branch", {})[nb.name] = entry
        for cut in self.cuts:
            section = "jagged_cut" if cut.reduce else "flat_cut"
            names = sorted(parse_expression(cut.expression, where="cut").names)
            branch = names[0] if names else "constant"  # the key only names the cut
            entries = out.setdefault(section, {}).setdefault(branch, {})
            key = "cut" if "cut" not in entries else f"cut_{len(entries)}"
            entries[key] = [cut.expression, cut.reduce] if cut.reduce else cut.expression
        return out

    def update_preview(self) -> None:
        """How many of the first events of each file pass the cuts."""
        names = [r.name for r in self.data.rows if r.described is not None]
        if not names or not (self.cuts or self.new_branches):
            show(self.preview, "")
            return
        try:
            seen = preview_selection(names, self.data.tree.value, parse_preproc(self.preproc()),
                                     redirector=self.data.redirector_value,
                                     events_per_file=PREVIEW_EVENTS)
        except Exception as exc:
            show(self.preview, error_text(exc), "error")
            return
        share = seen.passed / seen.read if seen.read else 0.0
        text = (f"{seen.passed:,} of {seen.read:,} events pass ({share:.1%}; first "
                f"{PREVIEW_EVENTS:,} events of each file)")
        show(self.preview, text + ("" if seen.passed else ": no events left, loosen the cuts"),
             "ok" if seen.passed else "error")

    def params(self) -> dict[str, Any]:
        """The params.json keys this step sets: identifiers and excluded branches."""
        info = self.data.first
        identifiers = info.identifiers if info else []
        excluded = [n for n, box in self.boxes.items()
                    if not box.value and not box.disabled]
        return {"identifier": identifiers, "exclude_branches": excluded}
