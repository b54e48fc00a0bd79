"""Publish model: the last run's output folder to the hub's inference service."""

from __future__ import annotations

import html
from pathlib import Path

import ipywidgets as w

from mlaas4hep.errors import UserError
from mlaas4hep.services.client import Published, publish

from .messages import guarded, message_box, show


class PublishPanel:
    """Model name, 'shared' and Publish; then the served name and a curl example."""

    def __init__(self) -> None:
        self.output: Path | None = None
        self.name = w.Text(value="", description="Model name", placeholder="e.g. tth-mlp")
        self.name.add_class("mlaas4hep-publish-name")
        self.shared = w.Checkbox(value=False, description="shared (every user can use it)")
        self.button = w.Button(description="Publish model", icon="cloud-upload")
        self.button.add_class("mlaas4hep-publish")
        self.example = w.HTML()
        self.message = message_box()
        self.button.on_click(lambda _: self.publish())
        self.widget = w.VBox([
            w.HTML("<b>Serve it</b>: Publish uploads the run's output folder to the hub's "
                   "inference service (<code>/services/inference/</code>)."),
            w.HBox([self.name, self.shared, self.button]), self.message, self.example])

    def set_run(self, output: Path) -> None:
        """Offer the output folder of a finished run (named after its run folder)."""
        self.output = output
        self.name.value = self.name.value or output.parent.name
        self.example.value = ""

    @guarded(lambda self: self.message)
    def publish(self) -> Published:
        """Upload the run; show the served model's name and how to call it."""
        if self.output is None:
            raise UserError("train a model in step 4 first; Publish uploads its outputs")
        show(self.message, "publishing...", "info")
        self.example.value = ""
        published = publish(self.output, self.name.value.strip(), self.shared.value)
        show(self.message, f"published as '{published.model}' (owner {published.owner}); "
             "score events with:", "ok")
        self.example.value = ("<pre class='mlaas4hep-curl'>"
                              f"{html.escape(published.curl_example())}</pre>")
        return published
