"""Reading and checking ``params.json``, ``preproc.json``, ``files.txt`` and ``labels.txt``.

Every mistake becomes a :class:`~mlaas4hep.errors.UserError` naming the
file and key: malformed JSON (with line and column), unknown keys (with a
"did you mean"), wrong value types, and files/labels count mismatches.
The key tables here are also what ``workflow.py --help`` prints.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError, did_you_mean
from .expressions import Expression, parse_expression


@dataclass(frozen=True)
class Key:
    """One documented configuration key."""

    name: str
    types: tuple[type, ...]
    default: Any
    help: str
    choices: tuple[Any, ...] = ()


PARAMS_KEYS: tuple[Key, ...] = (
    Key("nevts", (int,), -1, "events to read in total, shared across files in proportion to "
        "their entries (before cuts); -1 = all"),
    Key("shuffle", (bool,), True, "shuffle events within each chunk (seeded)"),
    Key("chunk_size", (int,), 10000, "events read per chunk, mixed across all files"),
    Key("epochs", (int,), 5, "epochs per chunk ('chunk' training) or over all chunks ('standard')"),
    Key("batch_size", (int,), 100, "mini-batch size"),
    Key("identifier", (list, str), "", "branches identifying an event (e.g. runNo,evtNo,lumi): "
        "read for bookkeeping, never used as inputs; list or comma-separated string"),
    Key("branch", (str,), "events", "the tree to read, a path such as 'boostedAk8/events'"),
    Key("selected_branches", (list, str), "", "input branches (list or comma string); "
        "empty = all branches"),
    Key("exclude_branches", (list, str), "", "branches removed from the inputs"),
    Key("hist", (str,), "", "folder (inside the output folder) for input-variable histograms "
        "before and after normalisation; empty = none"),
    Key("redirector", (str,), "", "XRootD redirector prepended to file names that start with "
        "'/store/', e.g. root://xrootd.ba.infn.it"),
    Key("verbose", (int,), 0, "0 = progress bar; 1 = a log line per chunk read; 2 = more"),
    Key("training", (str,), "chunk", "'chunk': train 'epochs' on each chunk in turn, one pass "
        "(the original default); 'standard': 'epochs' passes over all chunks",
        ("chunk", "standard")),
    Key("normalisation", (str,), "minmax", "'minmax' scales each input to [0, 1]; 'standard' "
        "to zero mean and unit variance; statistics from the training split only",
        ("minmax", "standard")),
    Key("validation_fraction", (float,), 0.2, "fraction of events (per file) for validation"),
    Key("test_fraction", (float,), 0.2, "fraction of events (per file) held out for the final "
        "test metrics and plots"),
    Key("seed", (int,), 42, "seed for the split, shuffling and model initialisation "
        "(--seed overrides)"),
    Key("target", (str,), "", "regression: the flat branch (or new branch) whose value the "
        "model predicts; it is not an input. Empty = classification by the labels of "
        "labels.txt (0/1, or 0..K-1 for K classes)"),
    Key("class_weight", (str, dict), "", "weights of the classes in the training loss: "
        "'balanced' (inverse to each class's training events) or {\"0\": 1.0, \"1\": 3.0}; "
        "empty = all 1; reported in metrics.json"),
    Key("cache_mb", (int,), 1024, "prepared chunks are kept in memory up to this size so later "
        "epochs and the test pass do not re-read the files; 0 = never in memory"),
    Key("spill_mb", (int,), 20480, "prepared chunks that do not fit in cache_mb are written "
        "(uncompressed) to local disk after the first pass, up to this size for all the passes "
        "kept and leaving 1 GiB free, and later passes read them back a chunk at a time "
        "instead of decompressing the ROOT files again; deleted when the run ends; 0 = later "
        "passes re-read the files"),
    Key("spill_dir", (str,), "", "an existing folder for spilled chunks (a private "
        "subfolder is made in it); empty = the system temporary folder (TMPDIR)"),
    Key("threads", (int,), 0, "threads for ROOT decompression; 0 = number of CPU cores"),
    Key("device", (str,), "auto", "where PyTorch models train: 'auto' (a CUDA GPU when torch "
        "sees one, else the CPU), 'cpu', 'cuda' or 'cuda:N'; the other libraries train on the "
        "CPU"),
    Key("dask", (str,), "", "run the specs pass and 'mlaas4hep prepare' on a Dask cluster: "
        "a scheduler address such as tcp://scheduler:8786, or 'local' for a LocalCluster on "
        "this machine; empty = in this process (--dask overrides; needs mlaas4hep[dask])"),
)

NEW_BRANCH_KEYS: dict[str, str] = {
    "def": "expression defining the branch, e.g. 'log(partonE)' or 'nJets**2'",
    "type": "'flat' (one value per event) or 'jagged' (a list per event)",
    "cut": "a cut on the new branch: 'expr' (flat) or ['expr', 'any'|'all'] (jagged); "
           "more cuts as cut_1, cut_2, ...",
    "remove": "true/'True': use the branch for cuts only, not as an input",
    "keys_to_remove": "existing branches to drop from the inputs",
}
CUT_KEYS: dict[str, str] = {
    "cut": "'expr' for flat_cut; ['expr', 'any'|'all'] for jagged_cut (an event passes if any/all "
           "of its elements do; 'all' passes events with no elements)",
    "remove": "true/'True': drop the branch from the inputs after cutting",
}
PREPROC_SECTIONS: dict[str, str] = {
    "new_branch": "branches computed from others: {name: {def, type, cut, remove, keys_to_remove}}",
    "flat_cut": "cuts on flat branches: {branch: {cut, remove}}",
    "jagged_cut": "cuts on jagged branches: {branch: {cut: [expr, any|all], remove}}",
}


@dataclass
class Params:
    """The resolved contents of params.json (see :data:`PARAMS_KEYS`)."""

    nevts: int = -1
    shuffle: bool = True
    chunk_size: int = 10000
    epochs: int = 5
    batch_size: int = 100
    identifier: list[str] = field(default_factory=list)
    branch: str = "events"
    selected_branches: list[str] = field(default_factory=list)
    exclude_branches: list[str] = field(default_factory=list)
    hist: str = ""
    redirector: str = ""
    verbose: int = 0
    training: str = "chunk"
    normalisation: str = "minmax"
    validation_fraction: float = 0.2
    test_fraction: float = 0.2
    seed: int = 42
    target: str = ""
    class_weight: str | dict[str, float] = ""
    cache_mb: int = 1024
    spill_mb: int = 20480
    spill_dir: str = ""
    threads: int = 0
    device: str = "auto"
    dask: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The params as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Cut:
    """An event selection: a boolean expression, reduced with any/all when jagged."""

    expression: Expression
    reduce: str | None
    where: str


@dataclass(frozen=True)
class NewBranch:
    """A branch computed from an expression."""

    name: str
    expression: Expression
    kind: str
    where: str


@dataclass
class Preproc:
    """The resolved contents of preproc.json."""

    new_branches: list[NewBranch] = field(default_factory=list)
    cuts: list[Cut] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def names_used(self) -> set[str]:
        """Every name the expressions read (branches and new branches)."""
        names = {n for b in self.new_branches for n in b.expression.names}
        return names | {n for c in self.cuts for n in c.expression.names}


def read_json(path: str | Path) -> Any:
    """Read a JSON file; errors name the file, line and column."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}") from None


def _type_name(types: tuple[type, ...]) -> str:
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string",
             list: "a list of strings", dict: "an object {...}"}
    return " or ".join(names[t] for t in types)


def _check_value(key: Key, value: Any, where: str) -> Any:
    ok = any(
        isinstance(value, t) and not (t in (int, float) and isinstance(value, bool))
        for t in key.types
    ) or (float in key.types and isinstance(value, int) and not isinstance(value, bool))
    if list in key.types and isinstance(value, list):
        ok = all(isinstance(v, str) for v in value)
    if not ok:
        raise UserError(f"{where}: key '{key.name}' must be {_type_name(key.types)}, "
                        f"got {json.dumps(value)}")
    if key.choices and value not in key.choices:
        raise UserError(f"{where}: key '{key.name}' must be one of "
                        f"{', '.join(map(repr, key.choices))}, got {value!r}")
    return value


def names_list(value: list[str] | str) -> list[str]:
    """A list of names from a list or a comma-separated string ('' = empty)."""
    items = value if isinstance(value, list) else value.split(",")
    return [s.strip() for s in items if s.strip()]


def load_params(path: str | Path | None, **overrides: Any) -> Params:
    """Load params.json (None = all defaults), then apply non-None ``overrides``."""
    if path is None:
        return parse_params({}, "params", **overrides)
    return parse_params(read_json(path), str(path), **overrides)


def parse_params(raw: Any, where: str = "params.json", **overrides: Any) -> Params:
    """Check the contents of a params.json (``where`` names it in messages)."""
    if not isinstance(raw, dict):
        raise UserError(f"{where}: expected a JSON object {{...}} at the top level")
    keys = {k.name: k for k in PARAMS_KEYS}
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in keys:
            raise UserError(f"{where}: unknown key '{name}'{did_you_mean(name, keys)}")
        values[name] = _check_value(keys[name], value, where)
    values.update({k: v for k, v in overrides.items() if v is not None})
    for name in ("identifier", "selected_branches", "exclude_branches"):
        if name in values:
            values[name] = names_list(values[name])
    params = Params(**{k: (float(v) if keys[k].types == (float,) else v)
                       for k, v in values.items()})
    _check_ranges(params, where)
    return params


def _check_ranges(p: Params, where: str) -> None:
    positive = {"chunk_size": p.chunk_size, "epochs": p.epochs, "batch_size": p.batch_size}
    for name, value in positive.items():
        if value < 1:
            raise UserError(f"{where}: key '{name}' must be at least 1, got {value}")
    if p.nevts == 0 or p.nevts < -1:
        raise UserError(f"{where}: key 'nevts' must be -1 (all) or a positive number, "
                        f"got {p.nevts}")
    for name in ("validation_fraction", "test_fraction"):
        if not 0 <= getattr(p, name) < 1:
            raise UserError(f"{where}: key '{name}' must be in [0, 1), got {getattr(p, name)}")
    if p.validation_fraction + p.test_fraction >= 0.9:
        raise UserError(f"{where}: validation_fraction + test_fraction must leave at least 10% "
                        f"of events for training, got {p.validation_fraction + p.test_fraction}")
    if p.test_fraction == 0:
        raise UserError(f"{where}: key 'test_fraction' must be above 0: the final metrics "
                        "are computed on the test split")
    _check_class_weight(p.class_weight, where)
    for name in ("cache_mb", "spill_mb", "threads"):
        if getattr(p, name) < 0:
            raise UserError(f"{where}: key '{name}' must be 0 or more, got {getattr(p, name)}")
    if p.spill_dir and not Path(p.spill_dir).is_dir():
        raise UserError(f"{where}: key 'spill_dir': {p.spill_dir} is not an existing folder")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", p.device):
        raise UserError(f"{where}: key 'device' must be 'auto', 'cpu', 'cuda' or 'cuda:N', "
                        f"got {p.device!r}")


def _check_class_weight(value: str | dict[str, float], where: str) -> None:
    if isinstance(value, str):
        if value not in ("", "balanced"):
            raise UserError(f"{where}: key 'class_weight' must be 'balanced' or an object such "
                            f"as {{\"0\": 1.0, \"1\": 3.0}}, got {value!r}")
        return
    for label, weight in value.items():
        if not label.isdigit() or isinstance(weight, bool) or not isinstance(
                weight, (int, float)) or weight <= 0:
            raise UserError(f"{where}: key 'class_weight' maps class labels (\"0\", \"1\", ...) "
                            f"to positive numbers, got {json.dumps({label: weight})}")


def _flag(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise UserError(f"{where}: expected true/false or \"True\"/\"False\", got {json.dumps(value)}")


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UserError(f"{where}: expected a JSON object {{...}}, got {json.dumps(value)}")
    return value


def _check_keys(entry: dict[str, Any], allowed: dict[str, str], where: str) -> None:
    for key in entry:
        if key not in allowed and not re.fullmatch(r"cut_\d+", key):
            raise UserError(f"{where}: unknown key '{key}'{did_you_mean(key, allowed)}")


def _parse_cut(value: Any, where: str) -> Cut:
    if isinstance(value, str):
        return Cut(parse_expression(value, where=where), None, where)
    if (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
            and value[1] in ("any", "all")):
        return Cut(parse_expression(value[0], where=where), value[1], where)
    raise UserError(f"{where}: a cut is \"expression\" or [\"expression\", \"any\"|\"all\"], "
                    f"got {json.dumps(value)}")


def _cuts_of(entry: dict[str, Any], where: str) -> list[Cut]:
    keys = sorted((k for k in entry if k == "cut" or re.fullmatch(r"cut_\d+", k)),
                  key=lambda k: int(k[4:] or 0))
    return [_parse_cut(entry[k], f"{where}.{k}") for k in keys]


def load_preproc(path: str | Path | None) -> Preproc:
    """Load preproc.json (None = no preprocessing) into a :class:`Preproc`."""
    if path is None:
        return Preproc()
    return parse_preproc(read_json(path), str(path))


def parse_preproc(raw: Any, path: str = "preproc.json") -> Preproc:
    """Check the contents of a preproc.json (``path`` names it in messages)."""
    raw = _object(raw, str(path))
    preproc = Preproc(source=raw)
    _check_keys(raw, PREPROC_SECTIONS, str(path))
    for name, entry in _object(raw.get("new_branch", {}), f"{path}: new_branch").items():
        where = f"{path}: new_branch.{name}"
        entry = _object(entry, where)
        _check_keys(entry, NEW_BRANCH_KEYS, where)
        if "def" not in entry:
            raise UserError(f"{where}: missing key 'def' (the expression defining the branch)")
        kind = entry.get("type", "flat")
        if kind not in ("flat", "jagged"):
            raise UserError(f"{where}.type: must be 'flat' or 'jagged', got {json.dumps(kind)}")
        if not name.isidentifier():
            raise UserError(f"{where}: a new branch name must be a valid identifier, got {name!r}")
        expression = parse_expression(entry["def"], where=f"{where}.def")
        preproc.new_branches.append(NewBranch(name, expression, kind, where))
        preproc.cuts += _cuts_of(entry, where)
        if _flag(entry.get("remove", False), f"{where}.remove"):
            preproc.removed.append(name)
        removed = entry.get("keys_to_remove", [])
        if not isinstance(removed, list) or not all(isinstance(k, str) for k in removed):
            raise UserError(f"{where}.keys_to_remove: expected a list of branch names")
        preproc.removed += removed
    for section in ("flat_cut", "jagged_cut"):
        for name, entry in _object(raw.get(section, {}), f"{path}: {section}").items():
            where = f"{path}: {section}.{name}"
            entry = _object(entry, where)
            _check_keys(entry, CUT_KEYS, where)
            cuts = _cuts_of(entry, where)
            if not cuts:
                raise UserError(f"{where}: missing key 'cut'")
            for cut in cuts:
                if section == "jagged_cut" and cut.reduce is None:
                    raise UserError(f"{cut.where}: a jagged cut needs 'any' or 'all': "
                                    f"[\"{cut.expression.text}\", \"any\"]")
            preproc.cuts += cuts
            if _flag(entry.get("remove", False), f"{where}.remove"):
                preproc.removed.append(name)
    return preproc


def read_list(path: str | Path) -> list[str]:
    """Read files.txt / labels.txt: one entry per line, '#' starts a comment."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read: {exc}") from None
    return [s for s in (line.split("#", 1)[0].strip() for line in lines) if s]


def read_files_and_labels(files: str | Path, labels: str | Path) -> list[tuple[str, int]]:
    """Pair each file with its integer label; both lists must have the same length."""
    names, label_texts = read_list(files), read_list(labels)
    if not names:
        raise UserError(f"{files}: no files listed")
    if len(names) != len(label_texts):
        raise UserError(f"{files} lists {len(names)} file(s) but {labels} lists "
                        f"{len(label_texts)} label(s): one label per file is needed")
    pairs = []
    for n, (name, text) in enumerate(zip(names, label_texts, strict=True), 1):
        try:
            pairs.append((name, int(text)))
        except ValueError:
            raise UserError(f"{labels}: label #{n} must be an integer (e.g. 1 = signal, "
                            f"0 = background), got {text!r}") from None
    return pairs
