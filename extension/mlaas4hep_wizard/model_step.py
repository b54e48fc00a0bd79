"""Step 3, model: a template with its hyper-parameters, or your own ``model.py``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import ipywidgets as w

from mlaas4hep.errors import UserError

from .messages import guarded, message_box, show
from .templates import Knob, ModelTemplate, available_templates

CUSTOM = "Custom model.py"


def knob_widget(knob: Knob) -> w.Widget:
    """The widget for one hyper-parameter."""
    style = {"description_width": "120px"}
    if knob.kind == "choice":
        return w.Dropdown(options=list(knob.choices), value=knob.default,
                          description=knob.label, style=style)
    if knob.kind == "int":
        return w.BoundedIntText(value=knob.default, min=knob.low, max=knob.high,
                                description=knob.label, style=style)
    if knob.kind == "float" and knob.low > 0:
        return w.FloatLogSlider(value=knob.default, min=math.log10(knob.low),
                                max=math.log10(knob.high), description=knob.label,
                                readout_format=".1e", style=style)
    if knob.kind == "float":
        return w.FloatSlider(value=knob.default, min=knob.low, max=knob.high, step=0.05,
                             description=knob.label, style=style)
    return w.Text(value=str(knob.default), description=knob.label, style=style)


class ModelStep:
    """Choose a template (hyper-parameters as widgets) or write/pick a model.py."""

    def __init__(self, home: Path):
        self.home = home
        self.templates = {t.name: t for t in available_templates()}
        self.message = message_box()
        self.choice = w.Dropdown(options=[*self.templates, CUSTOM], description="Model")
        self.description = w.HTML()
        self.knobs: dict[str, w.Widget] = {}
        self.knob_box = w.VBox()
        self.source = w.Textarea(layout=w.Layout(width="95%", height="300px"))
        self.source.add_class("mlaas4hep-model-source")
        self.files = w.Dropdown(options=self._python_files(), description="From file")
        self.load = w.Button(description="Load", icon="folder-open")
        self.choice.observe(lambda _: self._choose(), names="value")
        self.load.on_click(lambda _: self._load_file())
        self.custom_box = w.HBox([self.files, self.load])
        self.widget = w.VBox([self.choice, self.description, self.knob_box, self.custom_box,
                              w.HTML("<b>model.py</b> (what will be trained; edit it with "
                                     f"'{CUSTOM}')"), self.source, self.message])
        self._choose()

    def _python_files(self) -> list[str]:
        return sorted(str(p.relative_to(self.home)) for p in self.home.glob("*.py"))

    @property
    def template(self) -> ModelTemplate | None:
        """The chosen template (None for a custom model.py)."""
        return self.templates.get(self.choice.value)

    def _choose(self) -> None:
        template = self.template
        custom = template is None
        self.source.disabled = not custom
        self.custom_box.layout.display = "" if custom else "none"
        show(self.message, "")
        if custom:
            self.knob_box.children = []
            self.description.value = (
                "Write model(idim) returning a compiled Keras model or a torch.nn.Module, or "
                "model() returning a scikit-learn estimator or an XGBClassifier; or load a "
                "model.py from your home folder.")
            return
        self.description.value = template.description
        self.knobs = {k.name: knob_widget(k) for k in template.knobs}
        for widget in self.knobs.values():
            widget.observe(lambda _: self._render(), names="value")
        self.knob_box.children = list(self.knobs.values())
        self._render()

    def _render(self) -> None:
        try:
            self.source.value = self.model_source()
            show(self.message, "")
        except UserError as exc:
            show(self.message, str(exc), "error")

    def set_knobs(self, **values: Any) -> None:
        """Set hyper-parameters of the chosen template by name."""
        for name, value in values.items():
            if name not in self.knobs:
                raise UserError(f"Model: the template has no hyper-parameter {name!r}")
            self.knobs[name].value = value

    @guarded(lambda self: self.message)
    def _load_file(self) -> None:
        if not self.files.value:
            raise UserError("Model: no .py file in your home folder")
        path = self.home / self.files.value
        self.source.value = path.read_text()
        show(self.message, f"loaded {path}", "ok")

    def model_source(self) -> str:
        """The model.py source to train."""
        template = self.template
        if template is None:
            return self.source.value
        return template.render({name: widget.value for name, widget in self.knobs.items()})
