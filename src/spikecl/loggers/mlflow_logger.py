"""MLflow tracking: parameters, metrics with steps, the accuracy matrix as a PNG artifact."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from spikecl.errors import ConfigError
from spikecl.loggers.base import Logger, Step, flatten_params, resolve
from spikecl.loggers.matrix import matrix_figure, png_bytes

MAX_PARAM_LENGTH = 6000  # MLflow rejects longer parameter values


class MLflowLogger(Logger):
    """One MLflow run in experiment ``experiment_name`` (None: the sweep folder's name for a sweep's job,
    ``spikecl`` otherwise).

    ``tracking_uri`` None keeps everything inside the run folder: an SQLite store ``run_dir/mlflow.db`` and
    artifacts in ``run_dir/mlartifacts``; a sweep's jobs (their parent folder holds ``multirun.yaml``) share
    one store in the sweep folder, each a run named after its folder (MLflow 3 refuses its plain file store unless
    ``MLFLOW_ALLOW_FILE_STORE=true``; SQLite is its local default). Browse with
    ``mlflow ui --backend-store-uri sqlite:///RUN_DIR/mlflow.db``. Give a server or shared database URI to
    collect many runs in one place. Metric keys are ``<phase>/<name>`` for a :class:`Step`, with the step
    numbered across tasks.
    """

    def __init__(self, run_dir: str | Path = ".", experiment_name: str | None = None, tracking_uri: str | None = None,
                 run_name: str | None = None, artifact_dir: str = "mlartifacts") -> None:
        super().__init__()
        try:
            from mlflow.entities import Metric, Param
            from mlflow.tracking import MlflowClient
        except ImportError as err:
            raise ConfigError(f"logger=mlflow needs the mlflow package ({err}); "
                              'install it with: pip install "spikecl[mlflow]"') from None
        self._metric, self._param = Metric, Param
        folder = Path(run_dir).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        # Every job of a sweep (its folder holds multirun.yaml) logs into one store and one experiment there.
        sweep = folder.parent if (folder.parent / "multirun.yaml").is_file() else None
        home = sweep or folder
        experiment_name = experiment_name or (sweep.name if sweep else "spikecl")
        local = tracking_uri is None
        self.tracking_uri = f"sqlite:///{home / 'mlflow.db'}" if local else tracking_uri
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        found = self.client.get_experiment_by_name(experiment_name)
        if found is not None:
            experiment_id = found.experiment_id
        else:
            location = resolve(home, artifact_dir).as_uri() if local else None
            experiment_id = self.client.create_experiment(experiment_name, artifact_location=location)
        self._new_run = lambda: self.client.create_run(experiment_id, run_name=run_name or folder.name).info.run_id
        self.run_id = self._new_run()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "run_id": self.run_id}

    def resume(self, state: dict[str, Any] | None) -> None:
        """A resumed run logs into the MLflow run of its checkpoint (a new one if that is gone)."""
        super().resume(state)
        if state and state.get("run_id") and state["run_id"] != self.run_id:
            from mlflow.exceptions import MlflowException

            try:
                self.client.get_run(state["run_id"])
            except MlflowException:
                return
            self.client.delete_run(self.run_id)
            self.run_id = state["run_id"]

    def log_metrics(self, metrics: Mapping[str, float], step: int | Step) -> None:
        index = self.global_step(step)
        prefix = f"{step.phase}/" if isinstance(step, Step) else ""
        now = int(time.time() * 1000)
        values = [self._metric(prefix + k, float(v), now, index) for k, v in metrics.items()]
        if isinstance(step, Step):
            values += [self._metric(f"{prefix}task", step.task, now, index),
                       self._metric(f"{prefix}epoch", step.epoch, now, index)]
        self.client.log_batch(self.run_id, metrics=values)

    def log_hparams(self, params: Mapping[str, Any], metrics: Mapping[str, float] | None = None) -> None:
        flat = flatten_params(params)
        items = [self._param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in flat.items()]
        for start in range(0, len(items), 100):  # MLflow takes at most 100 parameters per batch
            self.client.log_batch(self.run_id, params=items[start:start + 100])
        if metrics:
            self.log_metrics(metrics, max(self._steps.values(), default=0))

    def log_matrix(self, name: str, matrix: np.ndarray) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            png = Path(tmp) / f"{name}.png"
            png.write_bytes(png_bytes(matrix_figure(matrix, name.replace("_", " "))))
            csv = Path(tmp) / f"{name}.csv"
            np.savetxt(csv, np.atleast_2d(matrix), delimiter=",", fmt="%.6g")
            self.client.log_artifact(self.run_id, str(png), "matrices")
            self.client.log_artifact(self.run_id, str(csv), "matrices")

    def close(self) -> None:
        self.client.set_terminated(self.run_id)
