"""Command line: ``workflow.py`` and ``mlaas4hep {workflow,prepare,make-sample}``.

A mistake in the inputs prints one ``error:`` line and exits with 2; an
interrupt exits with 130 and leaves no output folder behind.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
from collections.abc import Callable, Sequence

from .config import CUT_KEYS, NEW_BRANCH_KEYS, PARAMS_KEYS, PREPROC_SECTIONS
from .errors import UserError
from .expressions import FUNCTIONS

log = logging.getLogger("mlaas4hep")

EXAMPLE = ("workflow.py --files=files.txt --labels=labels.txt --model=model.py "
           "--params=params.json --preproc=preproc.json")


def _wrap(text: str, indent: int) -> str:
    return textwrap.fill(text, 79, initial_indent=" " * indent, subsequent_indent=" " * indent)


def keys_help() -> str:
    """Documentation of every params.json and preproc.json key (the --help epilog)."""
    lines = ["params.json keys (all optional; default in brackets):"]
    for key in PARAMS_KEYS:
        lines += [f"  {key.name} [{key.default!r}]", _wrap(key.help, 6)]
    lines += ["", "preproc.json sections:"]
    for name, text in PREPROC_SECTIONS.items():
        lines += [f"  {name}", _wrap(text, 6)]
    lines += ["  keys of a new_branch entry:"]
    lines += [f"    {k}: {v}" for k, v in NEW_BRANCH_KEYS.items()]
    lines += ["  keys of a flat_cut / jagged_cut entry:"]
    lines += [f"    {k}: {v}" for k, v in CUT_KEYS.items()]
    lines += ["", "expressions (def and cuts): branch names, numbers, + - * / // % **,",
              "  comparisons (chained too: 1<=nJets<=16), & | ~ and the functions",
              _wrap(", ".join(sorted(FUNCTIONS)), 2),
              "  count(x) and sum(x) reduce a jagged branch per event. Nothing is eval'ed.",
              "", "files.txt / labels.txt: one entry per line, '#' starts a comment;",
              "  labels are 1 (signal) or 0 (background). A file name starting with",
              "  /store/ gets params 'redirector' prepended; root:// and https:// work too.",
              "", "exit status: 0 success, 2 a mistake in the inputs (one 'error:' line),",
              "  130 interrupted (no output folder is left behind)."]
    return "\n".join(lines)


def _data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--files", required=True, help="text file listing ROOT files "
                        "(local paths, root://, https:// or /store/ with a redirector)")
    parser.add_argument("--labels", required=True, help="text file with one label per file "
                        "(1 signal, 0 background; 0..K-1 for K classes)")
    parser.add_argument("--params", help="params.json (see keys below); default: all defaults")
    parser.add_argument("--preproc", help="preproc.json: new branches and cuts")
    parser.add_argument("--specs", help="a global-specs.json to reuse; it is used only if it "
                        "was computed from the same files, branches, cuts, nevts and split")
    parser.add_argument("--seed", type=int, help="seed for split, shuffling and model "
                        "initialisation (overrides params 'seed', default 42)")
    parser.add_argument("--dask", metavar="ADDRESS", help="run the specs pass (and prepare's "
                        "chunk creation) on a Dask cluster: tcp://scheduler:8786, or 'local' "
                        "for a LocalCluster on this machine (overrides params 'dask')")


def _workflow_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a model on ROOT files: signal vs background (labels 0/1), K "
        "classes (labels 0..K-1) or a regression (params 'target'). Specs pass, "
        "preprocessing, flattening, normalisation, training, test metrics and plots.\n\n"
        f"  {EXAMPLE}\n\nOutputs (one folder): the model, metrics.json, curves per epoch "
        "and roc/scores (binary), roc/confusion (classes) or predicted (regression) plots "
        "(PNG+PDF), global-specs.json, run.log and the params, preproc, files and labels "
        "actually used.",
        epilog=keys_help())
    _data_options(parser)
    parser.add_argument("--model", required=True, help="model.py defining model(idim) (or "
                        "model(idim, n_classes), or model()) that returns a compiled Keras "
                        "model, a torch.nn.Module, a scikit-learn estimator or an XGBoost "
                        "model; examples in mlaas4hep/examples/models/")
    parser.add_argument("--out-dir", help="output folder (default: mlaas4hep-runs/<date-time>)")
    parser.add_argument("--fout", default="model.keras", help="file name of the saved model "
                        "inside the output folder (default: model.keras; the suffix follows "
                        "the library: .pt2 PyTorch, .pkl scikit-learn, .json XGBoost)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing "
                        "--out-dir (only once the new run has completed)")
    return parser


def _prepare_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run only the data pipeline (specs, preprocessing, flattening, "
        "normalisation), print events/s, and optionally write the training-ready arrays "
        "(X, mask, y, split, feature_names) to an .npz file.", epilog=keys_help())
    _data_options(parser)
    parser.add_argument("--output", help="write the arrays to this .npz file")
    return parser


def _sample_parser(prog: str) -> argparse.ArgumentParser:
    from .samples import SIGNAL_DIFFERENCES

    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write signal.root and background.root shaped like the ttH(bb) benchmark "
        "of the MLaaS4HEP paper (runNo/evtNo/lumi, 22 flat and 52 jagged branches), plus "
        "files.txt and labels.txt listing them.\n\n" + SIGNAL_DIFFERENCES)
    parser.add_argument("--out-dir", default="samples", help="folder to write into")
    parser.add_argument("--events", type=int, default=100_000, help="events per file")
    parser.add_argument("--seed", type=int, default=0, help="random seed (deterministic)")
    parser.add_argument("--tree", default="events", help="tree name")
    return parser


def _run_workflow(args: argparse.Namespace) -> None:
    from .workflow import run_workflow

    run_workflow(args.files, args.labels, args.model, args.params, args.preproc,
                 specs=args.specs, out_dir=args.out_dir, fout=args.fout, seed=args.seed,
                 overwrite=args.overwrite, dask=args.dask)


def _run_prepare(args: argparse.Namespace) -> None:
    from .workflow import prepare

    prepare(args.files, args.labels, args.params, args.preproc, specs=args.specs,
            output=args.output, seed=args.seed, dask=args.dask)


def _run_make_sample(args: argparse.Namespace) -> None:
    from .samples import make_sample_set

    if args.events < 1:
        raise UserError(f"--events must be at least 1, got {args.events}")
    files, _ = make_sample_set(args.out_dir, args.events, seed=args.seed, tree=args.tree)
    log.info("wrote signal.root and background.root (%d events each, tree '%s') and "
             "files.txt, labels.txt in %s", args.events, args.tree, files.parent)


COMMANDS: dict[str, tuple[Callable[[str], argparse.ArgumentParser],
                          Callable[[argparse.Namespace], None], str]] = {
    "workflow": (_workflow_parser, _run_workflow, "train a model (same as workflow.py)"),
    "prepare": (_prepare_parser, _run_prepare, "run the data pipeline only; write arrays"),
    "make-sample": (_sample_parser, _run_make_sample, "write ttH(bb)-like sample ROOT files"),
}


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_Formatter())
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        return f"WARNING: {text}" if record.levelno >= logging.WARNING else text


def _run(handler: Callable[[argparse.Namespace], None], args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter
    _setup_logging()
    try:
        handler(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: no output was written", file=sys.stderr)
        return 130
    return 0


def workflow_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``workflow.py``."""
    parser = _workflow_parser("workflow.py")
    return _run(_run_workflow, parser.parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mlaas4hep``."""
    parser = argparse.ArgumentParser(
        prog="mlaas4hep", description="Machine Learning as a Service for HEP: train models "
        f"on ROOT files.\n\n  {EXAMPLE}", formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (make, _, summary) in COMMANDS.items():
        sub = make(f"mlaas4hep {name}")
        commands.add_parser(name, help=summary, parents=[sub], add_help=False,
                            description=sub.description, epilog=sub.epilog,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    args = parser.parse_args(argv)
    return _run(COMMANDS[args.command][1], args)
