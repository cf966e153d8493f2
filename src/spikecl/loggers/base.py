"""The logger interface: metrics per evaluation, hyper-parameters, matrices (the accuracy matrix)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np


class Step(NamedTuple):
    """Where a set of metrics belongs in a continual-learning run: ``phase`` (pretrain | cl), ``task``, ``epoch``."""

    phase: str
    task: int
    epoch: int


class Logger(ABC):
    """Receives a run's figures. ``step`` is a plain integer or a :class:`Step`; a logger that needs one
    increasing integer numbers the distinct steps in the order they first arrive (:meth:`global_step`)."""

    def __init__(self) -> None:
        self._steps: dict[Step, int] = {}

    def global_step(self, step: int | Step) -> int:
        """An increasing integer for ``step``: the integer itself, or the arrival rank of a :class:`Step`."""
        if isinstance(step, Step):
            return self._steps.setdefault(step, len(self._steps))
        return int(step)

    @abstractmethod
    def log_metrics(self, metrics: Mapping[str, float], step: int | Step) -> None:
        """Scalars of one evaluation (e.g. ``{"accuracy/old": 0.8, "loss/old": 0.6, "train_loss": 0.4}``)."""

    @abstractmethod
    def log_hparams(self, params: Mapping[str, Any], metrics: Mapping[str, float] | None = None) -> None:
        """The run's settings (nested mappings are flattened to dotted keys) and, optionally, its final metrics
        to show next to them."""

    @abstractmethod
    def log_matrix(self, name: str, matrix: np.ndarray) -> None:
        """A 2-D array, e.g. ``accuracy_matrix`` (row i: accuracy on every task after learning task i)."""

    def state_dict(self) -> dict[str, Any]:
        """Where the logger stands, for a run's checkpoint (plain values)."""
        return {"steps": [list(step) for step in self._steps]}

    def resume(self, state: dict[str, Any] | None) -> None:
        """Go on after a checkpoint's :meth:`state_dict`, dropping whatever an interrupted attempt logged after
        it; None starts afresh (nothing of an interrupted attempt stays)."""
        self._steps = {Step(*step): i for i, step in enumerate(state["steps"])} if state else {}

    def close(self) -> None:
        """Write everything out and release files; the logger is not used afterwards."""

    def __enter__(self) -> Logger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str | int | float | bool]:
    """Nested mappings as dotted keys; scalars kept, ``None`` and sequences as their text (loggers accept
    only scalar hyper-parameters)."""
    out: dict[str, str | int | float | bool] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_params(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = str(value)
    return out


def resolve(run_dir: str | Path, path: str | Path) -> Path:
    """``path`` relative to the run folder (an absolute path stays as it is)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else Path(run_dir) / path
