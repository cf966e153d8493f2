"""Scalars in a long-format CSV file, hyper-parameters as JSON, matrices as CSV, all inside the run folder."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from spikecl.loggers.base import Logger, Step, flatten_params, resolve
from spikecl.utils.atomic import write_text

SCALAR_COLUMNS = ["step", "phase", "task", "epoch", "name", "value"]


class CSVLogger(Logger):
    """``scalars.csv``: one row per (step, metric), appended and flushed as it comes, so a run that stops keeps
    every complete row (a resumed run goes on after the rows of its checkpoint); ``hparams.json`` and
    ``<name>.csv`` for each matrix.

    It complements the run's ``metrics.csv`` (written by :class:`spikecl.cl.metrics.Recorder`, the input of
    ``spikecl.report``), which it does not replace: any scalar a plugin logs lands here too.
    """

    def __init__(self, run_dir: str | Path = ".", filename: str = "scalars.csv") -> None:
        super().__init__()
        self.folder = Path(run_dir)
        self.path = resolve(run_dir, filename)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        if self._file.tell() == 0:
            self._header()

    def _header(self) -> None:
        self._writer.writerow(SCALAR_COLUMNS)
        self._file.flush()

    def state_dict(self) -> dict[str, Any]:
        self._file.flush()
        return {**super().state_dict(), "bytes": self._file.tell()}

    def resume(self, state: dict[str, Any] | None) -> None:
        super().resume(state)
        self._file.flush()
        self._file.truncate(state["bytes"] if state else 0)  # append mode writes at the new end
        if not state:
            self._header()

    def log_metrics(self, metrics: Mapping[str, float], step: int | Step) -> None:
        phase, task, epoch = step if isinstance(step, Step) else ("", "", "")
        index = self.global_step(step)
        self._writer.writerows([index, phase, task, epoch, name, float(value)] for name, value in metrics.items())
        self._file.flush()

    def log_hparams(self, params: Mapping[str, Any], metrics: Mapping[str, float] | None = None) -> None:
        body = {"params": flatten_params(params), "metrics": dict(metrics or {})}
        write_text(self.folder / "hparams.json", json.dumps(body, indent=2, sort_keys=True) + "\n")

    def log_matrix(self, name: str, matrix: np.ndarray) -> None:
        rows = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
        write_text(self.folder / f"{name}.csv", "\n".join(",".join(f"{v:.6g}" for v in r) for r in rows) + "\n")

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
