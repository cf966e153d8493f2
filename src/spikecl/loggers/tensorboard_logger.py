"""TensorBoard event files: scalars per evaluation, the accuracy matrix as an image, hyper-parameters."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from spikecl.errors import ConfigError
from spikecl.loggers.base import Logger, Step, flatten_params, resolve
from spikecl.loggers.matrix import matrix_figure, rgb_array


class TensorBoardLogger(Logger):
    """Writes under ``run_dir/log_dir`` (``tensorboard --logdir outputs`` shows every run).

    Scalars are tagged ``<phase>/<name>`` for a :class:`Step` (one increasing step per evaluation across
    tasks; ``<phase>/task`` and ``<phase>/epoch`` record where each step is), plain ``<name>`` otherwise.
    Matrices are images tagged by their name, hyper-parameters go to the HParams tab with the final metrics.
    """

    def __init__(self, run_dir: str | Path = ".", log_dir: str = "tensorboard", flush_secs: int = 30) -> None:
        super().__init__()
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ConfigError(f"logger=tensorboard needs the tensorboard package ({err}); "
                              'install it with: pip install "spikecl[tensorboard]"') from None
        self.log_dir = resolve(run_dir, log_dir)
        self._open = lambda purge_step: SummaryWriter(log_dir=str(self.log_dir), flush_secs=flush_secs,
                                                      purge_step=purge_step)
        self._writer = self._open(None)
        self._last = 0

    def resume(self, state: dict[str, Any] | None) -> None:
        """TensorBoard hides every event an interrupted attempt wrote at or after the resumed step."""
        super().resume(state)
        self._writer.close()
        self._last = len(self._steps)
        self._writer = self._open(self._last)

    def log_metrics(self, metrics: Mapping[str, float], step: int | Step) -> None:
        index = self.global_step(step)
        self._last = max(self._last, index)
        prefix = f"{step.phase}/" if isinstance(step, Step) else ""
        for name, value in metrics.items():
            self._writer.add_scalar(prefix + name, float(value), index)
        if isinstance(step, Step):
            self._writer.add_scalar(f"{prefix}task", step.task, index)
            self._writer.add_scalar(f"{prefix}epoch", step.epoch, index)

    def log_hparams(self, params: Mapping[str, Any], metrics: Mapping[str, float] | None = None) -> None:
        # run_name="." keeps the HParams summary in this run's folder instead of a timestamped subfolder
        self._writer.add_hparams(flatten_params(params), {f"hparam/{k}": float(v) for k, v in (metrics or {}).items()},
                                 run_name=".")

    def log_matrix(self, name: str, matrix: np.ndarray) -> None:
        image = rgb_array(matrix_figure(matrix, name.replace("_", " ")))
        self._writer.add_image(name, image, self._last, dataformats="HWC")

    def close(self) -> None:
        self._writer.close()
