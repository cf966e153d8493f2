"""Several loggers at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spikecl.loggers.base import Logger, Step


class MultiLogger(Logger):
    """Sends every call to each of ``loggers``. Entries may be configs (mappings with ``_target_``), built here
    with ``run_dir`` so one Hydra node can list several loggers (with ``_recursive_: false``)."""

    def __init__(self, loggers: Sequence[Logger | Mapping[str, Any]] = (), run_dir: str | Path = ".") -> None:
        super().__init__()
        built: list[Logger] = []
        for entry in loggers:
            if isinstance(entry, Logger):
                built.append(entry)
            else:
                from hydra.utils import instantiate

                built.append(instantiate(entry, run_dir=run_dir))
        self.loggers = built

    def log_metrics(self, metrics: Mapping[str, float], step: int | Step) -> None:
        for logger in self.loggers:
            logger.log_metrics(metrics, step)

    def log_hparams(self, params: Mapping[str, Any], metrics: Mapping[str, float] | None = None) -> None:
        for logger in self.loggers:
            logger.log_hparams(params, metrics)

    def log_matrix(self, name: str, matrix: np.ndarray) -> None:
        for logger in self.loggers:
            logger.log_matrix(name, matrix)

    def close(self) -> None:
        """Close every logger, also when one of them fails (the first error is raised after)."""
        error: BaseException | None = None
        for logger in self.loggers:
            try:
                logger.close()
            except Exception as err:  # noqa: BLE001 - the others must still be closed
                error = error or err
        if error is not None:
            raise error
