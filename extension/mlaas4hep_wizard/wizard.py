"""The wizard: five steps in tabs, from ROOT files to a trained, exported model."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import ipywidgets as w

from mlaas4hep.samples import make_sample_set

from .data_step import DataStep
from .features_step import FeaturesStep
from .messages import error_text, show
from .model_step import ModelStep
from .results_step import ResultsStep
from .run_config import RunConfig
from .training_step import TrainingStep

log = logging.getLogger("mlaas4hep.wizard")

SAMPLE_EVENTS = 20_000
STEPS = ("1. Data", "2. Features", "3. Model", "4. Train", "5. Results")


class Wizard:
    """Data, features, model, training and results, each a tab; :meth:`config` is the run."""

    def __init__(self, home: str | Path | None = None, *, samples: bool = True):
        self.home = Path(home or os.environ.get("HOME", ".")).expanduser().resolve()
        self.data = DataStep(self.home)
        self.features = FeaturesStep(self.data)
        self.model = ModelStep(self.home)
        self.results = ResultsStep(self.home, self.config)
        self.training = TrainingStep(self.home / "wizard-runs", self.config, self._finished)
        self.tabs = w.Tab(children=[self.data.widget, self.features.widget, self.model.widget,
                                    self.training.widget, self.results.widget], titles=STEPS)
        self.widget = w.VBox([
            w.HTML("<h3>MLaaS4HEP wizard</h3>Train a signal-vs-background classifier on ROOT "
                   "files: go through the tabs, press Train in step 4."), self.tabs])
        self.widget.add_class("mlaas4hep-wizard")
        if samples:
            self.preselect_samples()

    def preselect_samples(self) -> None:
        """Choose ``samples/`` in the home folder (made with the generator if missing)."""
        folder = self.home / "samples"
        try:
            if not (folder / "files.txt").exists():
                show(self.data.message, f"making sample files in {folder}...", "info")
                make_sample_set(folder, SAMPLE_EVENTS)
            self.data.load_lists(folder / "files.txt", folder / "labels.txt")
            self.data.rescan()
        except Exception as exc:
            show(self.data.message, error_text(exc), "error")

    def config(self) -> RunConfig:
        """The run the current choices describe (checked when written)."""
        params = {**self.features.params(), **self.training.params(),
                  "branch": self.data.tree.value or "events",
                  "redirector": self.data.redirector_value}
        return RunConfig(self.data.pairs(), params, self.features.preproc(),
                         self.model.model_source())

    def _finished(self, output: Path, config: RunConfig) -> None:
        self.results.show_run(output, config)
        self.tabs.selected_index = STEPS.index("5. Results")

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
