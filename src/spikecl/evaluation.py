"""Evaluation of an experiment: per epoch, after every task, the accuracy matrices and the activity measured.

:func:`evaluate` runs the whole network from raw input without autograd. An :class:`Evaluator` does what an
experiment evaluates: the validation parts after every epoch (``metrics.csv`` rows, the log line), the
test and validation parts after every task (a row of the accuracy matrices; the last epoch's evaluation is
reused when the weights are still those it saw), firing and synaptic-operation figures after every task,
and the untrained model's accuracy per task (the baseline of forward transfer).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spikecl.cl.metrics import Evaluation, Recorder, task_accuracies
from spikecl.cl.minibatch import minibatches
from spikecl.data import BinnedSpikes, SpikeDataset, Task
from spikecl.measure import measure
from spikecl.models import class_scores
from spikecl.utils import checks

log = logging.getLogger("spikecl")

PARTS = ("val", "test")


class EvalSettings:
    """When and how the experiment evaluates: the ``eval`` config group as an object.

    ``batch_size``: samples per inference batch; ``every_epoch``: evaluate the validation parts after every
    training epoch (else only after each task's last epoch); ``test_every_epoch``: the test parts too (for
    the paper's per-epoch figures; otherwise test accuracy is measured only after each task).
    """

    def __init__(self, *, batch_size: int, every_epoch: bool, test_every_epoch: bool) -> None:
        self.batch_size = checks.integer("batch_size", batch_size, 1)
        self.every_epoch = checks.boolean("every_epoch", every_epoch)
        self.test_every_epoch = checks.boolean("test_every_epoch", test_every_epoch)


@torch.inference_mode()
def evaluate(model: nn.Module, spikes: BinnedSpikes, labels: np.ndarray, indices: np.ndarray, batch_size: int,
             device: torch.device) -> Evaluation:
    """Run the whole network from raw input on ``indices``; no autograd."""
    model.eval()
    preds, losses = [], []
    for b in minibatches(indices, batch_size):
        out = model(spikes.csr(b, device=device), spikes.nb_steps)
        logp = F.log_softmax(class_scores(out), dim=1)
        y = torch.as_tensor(labels[b], device=device)
        preds.append(logp.argmax(dim=1).cpu())
        losses.append(F.nll_loss(logp, y, reduction="none").cpu())
    cat = (lambda xs: torch.cat(xs).numpy()) if preds else (lambda xs: np.zeros(0))
    return Evaluation(indices, labels[indices], cat(preds).astype(np.int64), cat(losses))


class Evaluator:
    """Everything an experiment evaluates (see the module docstring).

    Args:
        model, data, tasks, device: what is evaluated, on which samples, where.
        settings: the ``eval`` group.
        recorder: keeps the rows of ``metrics.csv`` and hands figures to the loggers.
        per_task: report every task's accuracy (the split's choice) or only old / new / all.
        epochs: epochs of pretraining and of every later task (the last one is always evaluated).
        step_seconds: one time step in seconds (firing rates in Hz).
        train_depth: the latent depth the continual phase trains from (synaptic operations of a step there).
    """

    def __init__(self, model: nn.Module, data: SpikeDataset, tasks: Sequence[Task], device: torch.device,
                 settings: EvalSettings, recorder: Recorder, *, per_task: bool, epochs: tuple[int, int],
                 step_seconds: float, train_depth: int | None) -> None:
        self.model, self.data, self.tasks, self.device = model, data, list(tasks), device
        self.settings, self.recorder, self.per_task, self.epochs = settings, recorder, per_task, epochs
        self.step_seconds, self.train_depth = step_seconds, train_depth
        self.parts_every_epoch = (["val"] if self.has_val else []) + (["test"] if settings.test_every_epoch else [])
        self.initial: list[float] = []            # the untrained model's test accuracy per task
        self.matrix: list[list[float]] = []       # test accuracy per task after each task
        self.val_matrix: list[list[float]] = []   # the same on the validation parts (for tuning)
        self.activity: list[dict[str, float]] = []  # firing and synaptic-operation figures after each task
        self.activity_seconds = 0.0                 # what measuring them cost
        self.before: Evaluation | None = None     # test evaluation after pretraining
        self.after: Evaluation | None = None      # test evaluation after the latest task
        self._last: dict[tuple[int, str], tuple[Evaluation, list[torch.Tensor]]] = {}

    @property
    def has_val(self) -> bool:
        """Whether the tasks have validation parts (``dataset.val_fraction`` > 0 or a validation file)."""
        return any(len(t.val) for t in self.tasks)

    def evaluate(self, data: str = "test") -> Evaluation:
        """The whole network on every task's ``data`` part (test or val)."""
        indices = np.concatenate([getattr(t, data) for t in self.tasks])
        return evaluate(self.model, self.data.spikes, self.data.labels, indices, self.settings.batch_size,
                        self.device)

    def initial_model(self) -> None:
        """The untrained model's test accuracy per task (forward transfer's baseline)."""
        self.initial = task_accuracies(self.evaluate("test"), self.tasks)

    def on_epoch(self, task: int, epoch: int, loss: float) -> None:
        """After every epoch: validation accuracy (and test accuracy with ``eval.test_every_epoch``)."""
        last = epoch == self.epochs[task > 0]
        if not (self.settings.every_epoch or last):
            return
        phase = "pretrain" if task == 0 else "cl"
        shown = [f"loss {loss:.4f}"]
        for data in self.parts_every_epoch:
            ev = self.evaluate(data)
            if last:  # kept with the weights it saw: a phase or an after_task hook may still change them
                self._last[(task, data)] = (ev, [p.detach().clone() for p in self.model.parameters()])
            accs = self.recorder.record(phase, task, epoch, ev, self.per_task, loss, data)
            keys = ["old"] if task == 0 else ["old", "new", "all"]
            shown.append(f"{data} " + ", ".join(f"{k} {accs[k]:.4f}" for k in keys))
        where = "pretrain" if task == 0 else f"task {task} ({self.tasks[task].name})"
        log.info("%s epoch %d/%d: %s", where, epoch, self.epochs[task > 0], "; ".join(shown))

    def after_task(self, task: int) -> Evaluation:
        """The test and validation rows of the accuracy matrices after ``task`` and the activity figures;
        returns the test evaluation."""
        ev = self._final(task, "test")
        self.matrix.append(task_accuracies(ev, self.tasks))
        if self.has_val:
            self.val_matrix.append(task_accuracies(self._final(task, "val"), self.tasks, "val"))
        self._last.clear()
        self.activity.append(self.measure_activity())
        self.recorder.annotate(self.activity[-1])
        self.after = ev
        if task == 0:
            self.before = ev
        return ev

    def _final(self, task: int, data: str) -> Evaluation:
        """The evaluation on ``data`` after ``task``: the last epoch's if the weights are still those it saw
        (no epoch ran when epochs=0; consolidation and weight aligning change them after the last epoch),
        else a new one, whose test rows then join metrics.csv. After pretraining always a new one, so that a
        model from the pretraining cache gives the same rows as one just trained."""
        ev, weights = self._last.get((task, data), (None, None)) if task else (None, None)
        if ev is None or not all(torch.equal(a, b) for a, b in zip(weights, self.model.parameters())):
            ev = self.evaluate(data)
            if data == "test":
                self.recorder.record("cl", task, self.epochs[task > 0] if task else 0, ev, self.per_task, data=data)
        return ev

    def measure_activity(self) -> dict[str, float]:
        """Firing rates, silent neurons, sparsity per hidden layer and synaptic operations per sample (for
        inference, and for a training step at the latent depth) on every task's test samples."""
        started = time.perf_counter()
        indices = np.concatenate([t.test for t in self.tasks])
        figures = measure(self.model, self.data.spikes, indices, self.settings.batch_size, self.device,
                          step_seconds=self.step_seconds, train_depth=self.train_depth)
        self.activity_seconds += time.perf_counter() - started
        return figures

    # ------------------------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """The matrices, rows, activity and evaluations so far (plain values and tensors)."""
        return {"initial": self.initial, "matrix": self.matrix, "val_matrix": self.val_matrix,
                "rows": self.recorder.rows, "activity": self.activity, "activity_seconds": self.activity_seconds,
                "before": _evaluation_state(self.before), "after": _evaluation_state(self.after)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Go on from :meth:`state_dict`."""
        self.initial, self.matrix, self.val_matrix = state["initial"], state["matrix"], state["val_matrix"]
        self.recorder.rows[:] = state["rows"]
        self.recorder.flush()
        self.activity, self.activity_seconds = state["activity"], state["activity_seconds"]
        self.before, self.after = _evaluation_of(state["before"]), _evaluation_of(state["after"])


def _evaluation_state(ev: Evaluation | None) -> dict[str, torch.Tensor] | None:
    return None if ev is None else {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32 if k == "losses" else np.int64)) for k, v in asdict(ev).items()}


def _evaluation_of(state: dict[str, torch.Tensor] | None) -> Evaluation | None:
    return None if state is None else Evaluation(**{k: v.numpy() for k, v in state.items()})
