"""params.json, preproc.json, files.txt and labels.txt: values and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlaas4hep.config import load_params, load_preproc, read_files_and_labels
from mlaas4hep.errors import UserError

SEED_PARAMS = {"nevtts": 3000, "shuffle": True, "chunk_size": 1000, "epochs": 3,
               "batch_size": 100, "identifier": "", "branch": "boostedAk8/events",
               "selected_branches": "", "exclude_branches": "", "hist": "pdfs",
               "redirector": "root://xrootd.ba.infn.it", "verbose": 1}


def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_seed_params_typo_nevtts_is_caught_with_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "params.json", SEED_PARAMS)
    with pytest.raises(UserError) as err:
        load_params(path)
    assert str(err.value) == f"{path}: unknown key 'nevtts' (did you mean 'nevts'?)"


def test_seed_params_with_the_typo_fixed_load(tmp_path: Path) -> None:
    fixed = {("nevts" if k == "nevtts" else k): v for k, v in SEED_PARAMS.items()}
    params = load_params(write(tmp_path, "params.json", fixed))
    assert params.nevts == 3000 and params.branch == "boostedAk8/events"
    assert params.identifier == [] and params.selected_branches == []


def test_comma_strings_and_lists_give_the_same_branch_lists(tmp_path: Path) -> None:
    a = load_params(write(tmp_path, "a.json", {"identifier": "runNo, evtNo,lumi"}))
    b = load_params(write(tmp_path, "b.json", {"identifier": ["runNo", "evtNo", "lumi"]}))
    assert a.identifier == b.identifier == ["runNo", "evtNo", "lumi"]


def test_malformed_json_reports_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "params.json", '{\n  "nevts": 10\n  "epochs": 2\n}')
    with pytest.raises(UserError, match=r"params.json:3:3: malformed JSON: Expecting ','"):
        load_params(path)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("epochs", "3", "key 'epochs' must be an integer, got \"3\""),
    ("shuffle", 1, "key 'shuffle' must be true/false, got 1"),
    ("chunk_size", 0, "key 'chunk_size' must be at least 1, got 0"),
    ("training", "stream", "key 'training' must be one of 'chunk', 'standard'"),
    ("selected_branches", [1, 2], "key 'selected_branches' must be a list of strings"),
    ("test_fraction", 0, "'test_fraction' must be above 0"),
])
def test_wrong_value_types_name_the_key(tmp_path: Path, key: str, value: object,
                                        message: str) -> None:
    with pytest.raises(UserError) as err:
        load_params(write(tmp_path, "params.json", {key: value}))
    assert message in str(err.value)


def test_seed_preproc_parses_with_string_and_bool_remove(tmp_path: Path) -> None:
    seed = json.loads((Path(__file__).parents[1] / "mlaas4hep/examples/preproc.json")
                      .read_text())
    seed["flat_cut"]["nLeptons"]["remove"] = True
    seed["jagged_cut"]["partonPt"]["remove"] = "True"
    pre = load_preproc(write(tmp_path, "preproc.json", seed))
    assert [b.name for b in pre.new_branches] == ["log_partonE", "nJets_square"]
    assert [(c.expression.text, c.reduce) for c in pre.cuts] == [
        ("log_partonE<6.31", "any"), ("log_partonE>5.85", "all"),
        ("1<=nJets_square<=16", None), ("0<=nLeptons<=2", None), ("partonPt>200", "all")]
    assert pre.removed == ["partonE", "nJets", "nLeptons", "partonPt"]


@pytest.mark.parametrize(("preproc", "message"), [
    ({"new_branchs": {}}, "unknown key 'new_branchs' (did you mean 'new_branch'?)"),
    ({"flat_cut": {"x": {"cutt": "x>1"}}}, "flat_cut.x: unknown key 'cutt' (did you mean 'cut'"),
    ({"flat_cut": {"x": {"cut": "x>1", "remove": "yes"}}}, "flat_cut.x.remove: expected true"),
    ({"jagged_cut": {"x": {"cut": "x>1"}}}, "a jagged cut needs 'any' or 'all'"),
    ({"jagged_cut": {"x": {"cut": ["x>1", "most"]}}}, "a cut is \"expression\" or"),
    ({"new_branch": {"y": {"def": "x", "type": "list"}}}, "new_branch.y.type: must be 'flat'"),
    ({"new_branch": {"y": {"type": "flat"}}}, "new_branch.y: missing key 'def'"),
    ({"new_branch": {"y": {"def": "os.system('ls')"}}}, "attribute access is not allowed"),
])
def test_preproc_mistakes_name_the_key(tmp_path: Path, preproc: dict, message: str) -> None:
    with pytest.raises(UserError) as err:
        load_preproc(write(tmp_path, "preproc.json", preproc))
    assert message in str(err.value)
    assert str(tmp_path / "preproc.json") in str(err.value)


def test_lists_skip_comments_and_blank_lines(tmp_path: Path) -> None:
    files = write(tmp_path, "files.txt", "# inputs\na.root\n\nb.root  # bkg\n")
    labels = write(tmp_path, "labels.txt", "1\n# comment\n0\n")
    assert read_files_and_labels(files, labels) == [("a.root", 1), ("b.root", 0)]


def test_files_and_labels_count_mismatch(tmp_path: Path) -> None:
    files = write(tmp_path, "files.txt", "a.root\nb.root\n")
    labels = write(tmp_path, "labels.txt", "1\n")
    with pytest.raises(UserError, match=r"files.txt lists 2 file\(s\) but .*labels.txt lists "
                                        r"1 label\(s\)"):
        read_files_and_labels(files, labels)


def test_non_integer_label(tmp_path: Path) -> None:
    files = write(tmp_path, "files.txt", "a.root\n")
    labels = write(tmp_path, "labels.txt", "signal\n")
    with pytest.raises(UserError, match="label #1 must be an integer"):
        read_files_and_labels(files, labels)
