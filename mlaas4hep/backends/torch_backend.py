"""PyTorch models: ``model(idim)`` returns an ``nn.Module``; a default training loop.

The module maps a float32 batch ``(n, idim)`` to one value per event: a
logit (trained with ``BCEWithLogitsLoss``), or a probability when the module
ends with ``nn.Sigmoid`` (trained with ``BCELoss``); for K classes, K logits
per event (``CrossEntropyLoss``). Adam with learning rate 1e-3 unless the
module has ``configure_training()`` returning ``(loss_fn, optimizer)``.
Per-epoch records have the same keys as Keras's. On a CUDA GPU (params
'device'), each chunk is copied to the GPU once and cut into mini-batches there;
saved models are moved back to the CPU first, so they load anywhere.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError, describe
from ..tasks import Task
from .common import (
    ONNX_HINT,
    Batches,
    EpochReport,
    Features,
    PairedBatches,
    copyable,
    declares_mask,
    epoch_record,
    import_library,
    minibatches,
    n_events,
    sample_weights,
    take,
    with_suffix,
)


def import_torch() -> Any:
    """Import torch, or say how to install the CPU build."""
    return import_library("torch", "PyTorch models need torch: pip install torch==2.13.0 (the "
                          "CPU build; or the CUDA build for GPUs)")


def is_torch_module(obj: Any) -> bool:
    """True for a ``torch.nn.Module`` (without importing torch if not loaded)."""
    return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module"
               for c in type(obj).__mro__)


class TorchModel:
    """Adapter with the train / predict / save calls of every backend."""

    name = "pytorch"

    def __init__(self, model: Any, *, where: str, task: Task):
        torch = import_torch()
        self.task = task
        self.class_weight: dict[int, float] | None = None
        self.torch = torch
        self.model = model
        self.where = where
        self.n_features = 0
        self.device = torch.device("cpu")
        last = list(model.children())[-1] if list(model.children()) else None
        self.outputs_probability = isinstance(last, torch.nn.Sigmoid)
        self.wants_mask = declares_mask(model) or _forward_arguments(model) == 2
        if hasattr(model, "configure_training"):
            try:
                self.loss_fn, self.optimizer = model.configure_training()
            except Exception as exc:
                raise UserError(f"{where}: configure_training() must return (loss_fn, "
                                f"optimizer): {exc}") from None
        else:
            if task.regression:
                self.loss_fn = torch.nn.MSELoss()
            elif not task.binary:
                self.loss_fn = torch.nn.CrossEntropyLoss()
            elif self.outputs_probability:
                self.loss_fn = torch.nn.BCELoss()
            else:
                self.loss_fn = torch.nn.BCEWithLogitsLoss()
            self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def use_device(self, device: str) -> None:
        """Train on ``device``: 'auto' (a CUDA GPU when torch sees one), 'cpu', 'cuda[:N]'."""
        cuda = self.torch.cuda.is_available()
        if device == "auto":
            device = "cuda" if cuda else "cpu"
        elif device.startswith("cuda") and not cuda:
            build = "the CPU build" if self.torch.version.cuda is None else "no GPU visible"
            raise UserError(f"params.json key 'device' is {device!r}, but torch "
                            f"{self.torch.__version__} sees no CUDA GPU ({build}); use 'auto' "
                            "or 'cpu'")
        self.device = self.torch.device(device)
        self.model.to(self.device)  # in place: the optimizer keeps its parameters

    def _on_device(self, X: Features) -> Any:
        """X, or (X, mask), as float32 tensors on the training device."""
        def tensor(a: Any) -> Any:
            if isinstance(a, self.torch.Tensor):
                return a
            return self.torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(
                self.device, non_blocking=True)
        return tuple(map(tensor, X)) if isinstance(X, tuple) else tensor(X)

    def _forward(self, X: Features) -> Any:
        inputs = self._on_device(X)
        arrays = inputs if isinstance(inputs, tuple) else (inputs,)
        self.n_features = arrays[0].shape[1]
        out = self.model(*arrays)
        if self.task.multiclass:
            if out.ndim != 2 or out.shape[1] != self.task.n_classes:
                raise UserError(f"{self.where}: for {self.task.n_classes} classes the module "
                                f"must give {self.task.n_classes} logits per event, got output "
                                f"shape {tuple(out.shape)}")
            return out
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.ndim != 1:
            raise UserError(f"{self.where}: the module must give one value per event, got "
                            f"output shape {tuple(out.shape)}")
        return out

    def _loss(self, out: Any, y: np.ndarray) -> Any:
        weights = sample_weights(y, self.class_weight)
        if weights is None:
            return self.loss_fn(out, self._target(y))
        reduction = self.loss_fn.reduction
        self.loss_fn.reduction = "none"
        try:
            each = self.loss_fn(out, self._target(y))
        finally:
            self.loss_fn.reduction = reduction
        w = self.torch.from_numpy(weights).to(self.device)
        return (each * w).sum() / w.sum()

    def _target(self, y: np.ndarray) -> Any:
        kind = np.float32 if self.task.binary or self.task.regression else np.int64
        return self.torch.from_numpy(y.astype(kind)).to(self.device, non_blocking=True)

    def _scores(self, out: Any) -> Any:
        """The module's output as scores: probabilities for classes, values for regression."""
        if self.task.regression or (self.task.binary and self.outputs_probability):
            return out
        if self.task.binary:
            return self.torch.sigmoid(out)
        return self.torch.softmax(out, dim=1)

    def _probabilities(self, out: Any) -> np.ndarray:
        return self._scores(out).detach().cpu().numpy().astype(np.float32)

    def _epoch(self, batches: Iterator[tuple[Features, np.ndarray]]
               ) -> tuple[np.ndarray, np.ndarray]:
        """One pass of optimisation; the labels and scores seen (for the epoch metrics)."""
        self.model.train()
        labels, scores = [], []
        for X, y in batches:
            if len(y) == 0:
                continue
            self.optimizer.zero_grad()
            out = self._forward(X)
            loss = self._loss(out, y)
            loss.backward()
            self.optimizer.step()
            labels.append(y)
            scores.append(self._scores(out).detach())  # on the device: no sync per batch
        if not scores:
            return self._joined([], [])
        return self._joined(labels, [self.torch.cat(scores).cpu().numpy().astype(np.float32)])

    def _evaluate(self, batches: Iterator[tuple[Features, np.ndarray]]
                  ) -> tuple[np.ndarray, np.ndarray]:
        labels, scores = [], []
        for X, y in batches:
            labels.append(y)
            scores.append(self.predict(X))
        return self._joined(labels, scores)

    def fit_stream(self, train: Batches, validation: Batches | None, n_features: int, *,
                   epochs: int, batch_size: int, on_epoch: EpochReport,
                   events: tuple[int, int] = (0, 0)) -> None:
        """``epochs`` passes over the chunks, produced anew for each epoch, in mini-batches."""
        def on_device() -> Iterator[tuple[Features, np.ndarray]]:
            return ((self._on_device(X), y) for X, y in train())

        for epoch in range(epochs):
            seen = self._epoch(minibatches(on_device(), batch_size))
            checked = self._evaluate(validation()) if validation else None
            if on_epoch(epoch_record(self.task, epoch, seen, checked)):
                return

    def copyable(self) -> bool:
        """True when the module can be copied (for :meth:`fit_stream_one_pass`)."""
        return copyable(lambda: copy.deepcopy(self.model))

    def fit_stream_one_pass(self, paired: PairedBatches, validation: Batches, n_features: int,
                            *, epochs: int, batch_size: int, on_epoch: EpochReport,
                            events: tuple[int, int] = (0, 0)) -> None:
        """As :meth:`fit_stream` with validation, reading the files once per epoch: a copy of
        the module made at the end of epoch k is checked on the validation events read for
        epoch k+1, between its mini-batches, so epoch k is reported at the end of epoch k+1;
        the last epoch's validation is a pass of its own. The module must be
        :meth:`copyable`."""
        waiting: tuple[int, Any, Any] | None = None
        """(epoch, its training labels and scores, a copy of the module at its end)."""
        for epoch in range(epochs):
            checked: tuple[list, list] = ([], [])

            def passing(before: tuple | None = waiting, checked: tuple = checked,
                        ) -> Iterator[tuple[Features, np.ndarray]]:
                for (X, y), (Xv, yv) in paired():
                    if before is not None and len(yv):
                        checked[0].append(yv)
                        checked[1].append(self._predict_with(before[2], Xv))
                    yield self._on_device(X), y

            seen = self._epoch(minibatches(passing(), batch_size))
            stop = waiting is not None and on_epoch(
                epoch_record(self.task, waiting[0], waiting[1], self._joined(*checked)))
            last = stop or epoch + 1 == epochs
            waiting = (epoch, seen, self.model if last else copy.deepcopy(self.model))
            if stop:
                break
        if waiting is not None:
            on_epoch(epoch_record(self.task, waiting[0], waiting[1],
                                  self._evaluate(validation())))

    def _predict_with(self, module: Any, X: Features) -> np.ndarray:
        """:meth:`predict` with another module (a copy of this one)."""
        trained, self.model = self.model, module
        try:
            return self.predict(X)
        finally:
            self.model = trained

    def fit_arrays(self, X: Features, y: np.ndarray, validation: tuple | None, *,
                   epochs: int, batch_size: int, on_epoch: EpochReport) -> None:
        """``epochs`` epochs on one chunk's arrays, reshuffled each epoch."""
        generator = self.torch.Generator().manual_seed(int(self.torch.initial_seed()) % 2**31)
        inputs = self._on_device(X)

        def batches() -> Iterator[tuple[Features, np.ndarray]]:
            order = self.torch.randperm(len(y), generator=generator)
            rows, order = order.to(self.device), order.numpy()
            for i in range(0, len(y), batch_size):
                yield take(inputs, rows[i:i + batch_size]), y[order[i:i + batch_size]]

        for epoch in range(epochs):
            seen = self._epoch(batches())
            checked = (validation[1], self.predict(validation[0])) if validation else None
            if on_epoch(epoch_record(self.task, epoch, seen, checked)):
                return

    def predict(self, X: Features, batch_size: int = 8192) -> np.ndarray:
        """Signal probabilities (one per event)."""
        self.model.eval()
        with self.torch.no_grad():
            parts = [self._probabilities(self._forward(take(X, slice(i, i + batch_size))))
                     for i in range(0, n_events(X), batch_size)]
        return np.concatenate(parts) if parts else self.task.no_scores()

    def _joined(self, labels: list[np.ndarray], scores: list[np.ndarray]
                ) -> tuple[np.ndarray, np.ndarray]:
        if not labels:
            return np.zeros(0), self.task.no_scores()
        return np.concatenate(labels), np.concatenate(scores)

    def save(self, path: Path) -> Path:
        """``torch.export`` program (``.pt2``; ``torch.export.load(path).module()`` runs it
        without the model's code), any batch size."""
        path = with_suffix(path, (".pt2",))
        self._to_cpu()
        torch = self.torch
        try:
            program = torch.export.export(self.model, self._example(),
                                          dynamic_shapes=self._dynamic_shapes())
        except Exception as exc:
            raise UserError(f"{self.where}: torch.export cannot export the module: "
                            f"{describe(exc)}") from None
        torch.export.save(program, str(path))
        return path

    def to_onnx(self, path: Path) -> Path:
        """ONNX through ``torch.onnx`` (dynamo), with the scores ``predict`` gives (sigmoid or
        softmax applied); input ``X`` float32 (n, features), any batch size."""
        import_library("onnxscript", ONNX_HINT)
        torch, adapter = self.torch, self
        path = with_suffix(path, (".onnx",))

        class Scores(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = adapter.model

            def forward(self, x: Any, mask: Any = None) -> Any:
                out = self.model(x) if mask is None else self.model(x, mask)
                if not adapter.task.multiclass and out.ndim == 2:
                    out = out[:, 0]
                return adapter._scores(out)

        self._to_cpu()
        torch.onnx.export(Scores().eval(), self._example(), str(path), dynamo=True,
                          input_names=["X", "mask"][:len(self._example())],
                          output_names=["scores"], dynamic_shapes=self._dynamic_shapes(),
                          verbose=False)
        return path

    def _to_cpu(self) -> None:
        """Move the trained model to the CPU (and evaluation mode) for export."""
        self.use_device("cpu")
        self.model.eval()

    def _example(self) -> tuple:
        """Example inputs for export: X, and the mask when the module takes it."""
        return tuple(self.torch.zeros(2, self.n_features) for _ in range(1 + self.wants_mask))

    def _dynamic_shapes(self) -> tuple:
        batch = self.torch.export.Dim("batch")
        return ({0: batch},) * len(self._example())


def _forward_arguments(model: Any) -> int:
    """Required positional arguments of ``model.forward``."""
    try:
        parameters = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return 1
    return sum(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
               for p in parameters)

