"""Step 5, results: ROC and score plots, test metrics, the saved model, Export and
Publish."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path

import ipywidgets as w

from .messages import guarded, message_box, show
from .publish_panel import PublishPanel
from .run_config import RunConfig, workflow_command

METRIC_NAMES = {"auc": "AUC", "accuracy": "accuracy", "loss": "log loss", "events": "events"}


class ResultsStep:
    """What the last run gave, the files + command that reproduce it, and Publish."""

    def __init__(self, home: Path, make_config: Callable[[], RunConfig]):
        self.home = home
        self.make_config = make_config
        self.output: Path | None = None
        self.config: RunConfig | None = None
        self.summary = w.HTML("Train a model in step 4 to see its results here.")
        self.roc = w.Image(format="png", layout=w.Layout(width="420px"))
        self.scores = w.Image(format="png", layout=w.Layout(width="480px"))
        self.folder = w.Text(value=str(home / "wizard-export"), description="Export to",
                             layout=w.Layout(width="60%"))
        self.export_button = w.Button(description="Export", icon="download")
        self.export_button.add_class("mlaas4hep-export")
        self.command = w.HTML()
        self.message = message_box()
        self.export_button.on_click(lambda _: self.export())
        self.publisher = PublishPanel()
        self.widget = w.VBox([self.summary, w.HBox([self.roc, self.scores]),
                              w.HTML("<b>Reproduce in the terminal</b>: Export writes "
                                     "files.txt, labels.txt, params.json, preproc.json and "
                                     "model.py and shows the workflow.py command."),
                              w.HBox([self.folder, self.export_button]), self.command,
                              self.message, self.publisher.widget])

    def show_run(self, output: Path, config: RunConfig) -> None:
        """Show the plots and metrics written by a finished run."""
        self.output, self.config = output, config
        metrics = json.loads((output / "metrics.json").read_text())
        test = metrics["test"]
        rows = "".join(f"<tr><td>{METRIC_NAMES[k]}</td><td>{test[k]:.4f}</td></tr>"
                       if isinstance(test[k], float) else
                       f"<tr><td>{METRIC_NAMES[k]}</td><td>{test[k]:,}</td></tr>"
                       for k in METRIC_NAMES if k in test)
        stopped = " (stopped early)" if metrics.get("stopped") else ""
        model = output / metrics["model"]
        self.summary.value = (
            f"<b>Test split{stopped}</b><table>{rows}</table>"
            f"<p>{len(metrics['history'])} epoch record(s), {metrics['n_features']} input "
            f"features, {metrics['seconds']['total']:.1f} s. Model saved as "
            f"<code>{html.escape(str(model))}</code>; all outputs in "
            f"<code>{html.escape(str(output))}</code>.</p>")
        self.roc.value = (output / "roc.png").read_bytes()
        second = output / "scores.png"  # binary; several classes have a confusion matrix
        self.scores.value = (second if second.exists() else output / "confusion.png").read_bytes()
        self.publisher.set_run(output)

    @guarded(lambda self: self.message)
    def export(self) -> Path:
        """Write the five input files of the last run (or the current choices) and show
        the command that reproduces it."""
        folder = Path(self.folder.value.strip() or "wizard-export").expanduser()
        if not folder.is_absolute():
            folder = self.home / folder
        config = self.config or self.make_config()
        config.write(folder)
        command = workflow_command(folder)
        self.command.value = f"<pre class='mlaas4hep-command'>{html.escape(command)}</pre>"
        what = "the last run's inputs" if self.config else "the current choices"
        show(self.message, f"exported {what} to {folder}", "ok")
        return folder
