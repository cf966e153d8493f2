"""Continual-learning metrics: evaluations, per-epoch records, the accuracy matrix, backward and forward transfer,
forgetting."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spikecl.data import SpikeDataset, Task
from spikecl.loggers import Logger, Step
from spikecl.utils.atomic import write_text

# ``data``: which samples a row is on: ``val`` (validation parts, for tuning) or ``test``.
METRIC_COLUMNS = ["phase", "task", "epoch", "data", "subset", "accuracy", "loss", "train_loss", "seconds"]
PARTS = ("val", "test")


@dataclass
class Evaluation:
    """Predictions of the full network on a set of samples."""

    indices: np.ndarray      # data-set indices
    labels: np.ndarray
    predictions: np.ndarray
    losses: np.ndarray       # per-sample NLL

    def accuracy(self, mask: np.ndarray | None = None) -> float:
        """Fraction correct over the samples in ``mask`` (all if None); NaN for an empty selection."""
        correct = self.predictions == self.labels
        if mask is not None:
            correct = correct[mask]
        return float(correct.mean()) if len(correct) else float("nan")

    def loss(self, mask: np.ndarray | None = None) -> float:
        """Mean NLL over the samples in ``mask``."""
        values = self.losses if mask is None else self.losses[mask]
        return float(values.mean()) if len(values) else float("nan")

    def subset(self, members: np.ndarray) -> np.ndarray:
        """Mask of the evaluated samples that are in ``members`` (data-set indices)."""
        return np.isin(self.indices, members)


@dataclass
class Recorder:
    """Collects one row per (evaluation, subset), rewrites ``metrics.csv`` atomically after each evaluation
    (a run that stops early keeps everything evaluated so far) and hands the figures to the run's logger.

    Activity figures measured after a task (firing rates, synaptic operations) are added to that task's
    ``all`` row of the test evaluation as extra columns (:meth:`annotate`).
    """

    path: Path
    tasks: list[Task]
    logger: Logger | None = None
    rows: list[dict] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def subsets(self, task_index: int, per_task: bool, data: str = "test") -> dict[str, np.ndarray]:
        """Index sets of ``data`` (val or test) reported after training on ``task_index``: old, new, all (and,
        ``per_task``, the tasks seen so far and every task)."""
        tests = [getattr(t, data) for t in self.tasks]
        out = {"old": tests[0]}
        if task_index > 0:
            out["new"] = tests[task_index]
        if per_task:
            out["seen"] = np.concatenate(tests[:task_index + 1])
            out.update({f"task{j}": t for j, t in enumerate(tests)})
        out["all"] = np.concatenate(tests)
        return out

    def record(self, phase: str, task_index: int, epoch: int, ev: Evaluation, per_task: bool,
               train_loss: float | None = None, data: str = "test") -> dict[str, float]:
        """Add the rows of one evaluation on ``data`` (val or test); returns accuracy per subset."""
        accs, scalars = {}, {}
        for name, members in self.subsets(task_index, per_task, data).items():
            mask = ev.subset(members)
            accs[name] = ev.accuracy(mask)
            self.rows.append({"phase": phase, "task": task_index, "epoch": epoch, "data": data, "subset": name,
                              "accuracy": accs[name], "loss": ev.loss(mask), "train_loss": train_loss,
                              "seconds": round(time.perf_counter() - self.started, 3)})
            scalars.update({f"{data}/accuracy/{name}": accs[name], f"{data}/loss/{name}": self.rows[-1]["loss"]})
        if train_loss is not None:
            scalars["train_loss"] = train_loss
        self.flush()
        if self.logger is not None:
            self.logger.log_metrics(scalars, Step(phase, task_index, epoch))
        return accs

    def annotate(self, figures: dict[str, float]) -> None:
        """Add ``figures`` as columns of the latest test evaluation's ``all`` row (and log them)."""
        row = next(r for r in reversed(self.rows) if r["data"] == "test" and r["subset"] == "all")
        row.update(figures)
        self.flush()
        if self.logger is not None:
            self.logger.log_metrics({f"activity/{k}": v for k, v in figures.items()},
                                    Step(row["phase"], row["task"], row["epoch"]))

    def flush(self) -> None:
        """Write every row so far to ``metrics.csv``."""
        extra = sorted({k for r in self.rows for k in r} - set(METRIC_COLUMNS))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS + extra)
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.path, buf.getvalue())


def task_accuracies(ev: Evaluation, tasks: list[Task], data: str = "test") -> list[float]:
    """Accuracy on each task's ``data`` portion (test or val)."""
    return [ev.accuracy(ev.subset(getattr(t, data))) for t in tasks]


def backward_transfer(matrix: np.ndarray) -> float:
    """BWT (Lopez-Paz & Ranzato 2017): mean over tasks j < n of R[n, j] - R[j, j]; R[i, j] is the accuracy on
    task j after learning task i (row 0: after pretraining). NaN with a single task."""
    n = matrix.shape[0] - 1
    if n < 1:
        return float("nan")
    return float(np.mean([matrix[n, j] - matrix[j, j] for j in range(n)]))


def forgetting_per_task(matrix: np.ndarray) -> list[float]:
    """Forgetting of task j (Chaudhry et al. 2018): best accuracy on it before the last task minus the final
    one, for every task learned before the last."""
    n = matrix.shape[0] - 1
    return [float(matrix[j:n, j].max() - matrix[n, j]) for j in range(n)]


def forward_transfer(matrix: np.ndarray, initial: np.ndarray) -> float:
    """FWT (Lopez-Paz & Ranzato 2017): mean over learned tasks j >= 1 of R[j-1, j] - b[j], the accuracy on task j
    just before learning it minus that of the initial (untrained) model, ``initial`` [tasks]. NaN with a
    single task."""
    n = matrix.shape[0] - 1
    if n < 1:
        return float("nan")
    return float(np.mean([matrix[j - 1, j] - initial[j] for j in range(1, n + 1)]))


def matrix_metrics(matrix: np.ndarray, initial: np.ndarray | None = None) -> dict[str, float | list[float]]:
    """What the accuracy matrix says about a continual-learning run: ``acc_new_mean`` (mean accuracy on each
    new task right after learning it), ``bwt``, ``forgetting_per_task`` and, given the initial model's
    accuracy per task, ``fwt``."""
    learned = range(1, matrix.shape[0])
    figures: dict[str, float | list[float]] = {
        "acc_new_mean": float(np.mean([matrix[i, i] for i in learned])) if len(learned) else float("nan"),
        "bwt": backward_transfer(matrix), "forgetting_per_task": forgetting_per_task(matrix)}
    if initial is not None:
        figures["fwt"] = forward_transfer(matrix, initial)
    return figures


def per_group_accuracy(before: Evaluation, after: Evaluation, data: SpikeDataset) -> str:
    """CSV text: test accuracy per class and per speaker, before (pretrained) and after continual learning."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["group", "id", "name", "samples", "accuracy_before", "accuracy"])
    for group, values in (("class", data.labels), ("speaker", data.speakers)):
        ids = values[after.indices]
        for g in np.unique(ids):
            mask = ids == g
            name = data.class_names[g] if group == "class" and g < len(data.class_names) else str(g)
            writer.writerow([group, int(g), name, int(mask.sum()), f"{before.accuracy(mask):.6f}",
                             f"{after.accuracy(mask):.6f}"])
    return buf.getvalue()
