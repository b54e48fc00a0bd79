"""Step 4, training: the run's settings, Train and Stop, progress, live curves and the log.

Training runs :func:`mlaas4hep.workflow.run_workflow` in a background thread on
the files the wizard wrote, so the notebook stays responsive and the run is
exactly what ``workflow.py`` does on those files.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w

from mlaas4hep.config import PARAMS_KEYS
from mlaas4hep.workflow import run_workflow

from .live_plot import render_history
from .messages import error_text, message_box, show
from .run_config import RunConfig

DEFAULTS = {k.name: k.default for k in PARAMS_KEYS}
LOG_LINES = 40


class _WidgetLog(logging.Handler):
    """Keeps the last log lines of a run in an HTML widget."""

    def __init__(self, target: w.HTML):
        super().__init__(logging.INFO)
        self.target = target
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines = [*self.lines[-LOG_LINES + 1:], self.format(record)]
        self.target.value = ("<pre style='font-size:11px; line-height:1.2'>"
                             + html.escape("\n".join(self.lines)) + "</pre>")


class TrainingStep:
    """Settings of the run, Train/Stop buttons, progress bar, live plot, log."""

    def __init__(self, runs_dir: Path, make_config: Callable[[], RunConfig],
                 on_done: Callable[[Path, RunConfig], None]):
        self.runs_dir = runs_dir
        self.make_config = make_config
        self.on_done = on_done
        style = {"description_width": "140px"}
        self.epochs = w.BoundedIntText(value=5, min=1, max=1000, description="epochs",
                                       style=style)
        self.batch_size = w.BoundedIntText(value=DEFAULTS["batch_size"], min=1, max=1_000_000,
                                           description="batch size", style=style)
        self.chunk_size = w.BoundedIntText(value=DEFAULTS["chunk_size"], min=1,
                                           max=100_000_000, description="chunk size",
                                           style=style)
        self.nevts = w.BoundedIntText(value=-1, min=-1, max=10**12,
                                      description="events (-1 = all)", style=style)
        self.training = w.Dropdown(options=[("standard: epochs over all chunks", "standard"),
                                            ("chunk: epochs on each chunk in turn", "chunk")],
                                   value="standard", description="procedure", style=style)
        self.validation = w.BoundedFloatText(value=DEFAULTS["validation_fraction"], min=0,
                                             max=0.8, step=0.05,
                                             description="validation fraction", style=style)
        self.test = w.BoundedFloatText(value=DEFAULTS["test_fraction"], min=0.01, max=0.8,
                                       step=0.05, description="test fraction", style=style)
        self.seed = w.IntText(value=DEFAULTS["seed"], description="seed", style=style)
        self.epochs.add_class("mlaas4hep-epochs")
        self.train_button = w.Button(description="Train", button_style="success", icon="play")
        self.train_button.add_class("mlaas4hep-train")
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop",
                                    disabled=True)
        self.progress = w.IntProgress(value=0, min=0, max=1, description="epochs",
                                      layout=w.Layout(width="60%"))
        self.message = message_box()
        self.plot = w.Image(format="png", layout=w.Layout(width="95%"))
        self.plot.add_class("mlaas4hep-live-plot")
        self.log = w.HTML()
        self.train_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.history: list[dict[str, Any]] = []
        self.points: dict[str, int] = {}
        self.output: Path | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.widget = w.VBox([
            w.HBox([w.VBox([self.epochs, self.batch_size, self.chunk_size, self.nevts]),
                    w.VBox([self.training, self.validation, self.test, self.seed])]),
            w.HBox([self.train_button, self.stop_button, self.progress]), self.message,
            self.plot, w.Accordion([self.log], titles=("Log",)),
        ])

    def params(self) -> dict[str, Any]:
        """The params.json keys this step sets."""
        return {"epochs": self.epochs.value, "batch_size": self.batch_size.value,
                "chunk_size": self.chunk_size.value, "nevts": self.nevts.value,
                "training": self.training.value,
                "validation_fraction": float(self.validation.value),
                "test_fraction": float(self.test.value), "seed": self.seed.value,
                "verbose": 1}

    @property
    def running(self) -> bool:
        """True while a run is in progress."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Write the run's files and train in the background."""
        if self.running:
            show(self.message, "a run is already in progress; Stop it first", "warning")
            return
        try:
            config = self.make_config()
            stamp = time.strftime("run-%Y%m%d-%H%M%S")
            run, n = self.runs_dir / stamp, 1
            while run.exists():
                run, n = self.runs_dir / f"{stamp}-{n}", n + 1
            paths = config.write(run / "inputs")
        except Exception as exc:
            show(self.message, error_text(exc), "error")
            return
        self.history, self.points, self.output, self.error = [], {}, None, None
        self._stop.clear()
        self.progress.value, self.progress.max = 0, max(1, self.epochs.value)
        self.progress.bar_style = ""
        self.plot.value = b""
        self.train_button.disabled, self.stop_button.disabled = True, False
        show(self.message, f"reading the files (specs pass); run folder {run}", "info")
        self._thread = threading.Thread(target=self._run, args=(config, paths, run / "output"),
                                        name="mlaas4hep-wizard-training", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the run to end after the current epoch (it is then tested and saved)."""
        if self.running:
            self._stop.set()
            self.stop_button.disabled = True
            show(self.message, "stopping after the current epoch...", "warning")

    def wait(self, timeout: float | None = None) -> None:
        """Block until the current run ends (for scripts and tests)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _epoch(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        self.progress.max = max(record["steps_planned"], len(self.history))
        self.progress.value = len(self.history)
        image, self.points = render_history(self.history)
        self.plot.value = image
        last = "  ".join(f"{k} {record[k]:.4f}" for k in ("loss", "auc", "val_loss", "val_auc")
                         if k in record)
        show(self.message, f"epoch {len(self.history)} of {record['steps_planned']}: {last}",
             "info")

    def _run(self, config: RunConfig, paths: dict[str, Path], out_dir: Path) -> None:
        logger = logging.getLogger("mlaas4hep")
        handler = _WidgetLog(self.log)
        level = logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            self.output = run_workflow(
                paths["files.txt"], paths["labels.txt"], paths["model.py"],
                paths["params.json"], paths["preproc.json"], out_dir=out_dir,
                on_epoch=self._epoch, stop=self._stop.is_set)
            self.on_done(self.output, config)
        except Exception as exc:
            self.error = error_text(exc)
            self.progress.bar_style = "danger"
            show(self.message, self.error, "error")
        else:
            self.progress.value = self.progress.max
            self.progress.bar_style = "success"
            stopped = " (stopped early)" if self._stop.is_set() else ""
            show(self.message, f"done{stopped}: outputs in {self.output}; see step 5",
                 "ok")
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
            self.train_button.disabled, self.stop_button.disabled = False, True
