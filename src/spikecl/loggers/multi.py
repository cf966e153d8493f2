"""Several loggers at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from spikecl.loggers.base import Logger, Step


class MultiLogger(Logger):
    """Sends every call to each of ``loggers`` (the ``logger`` config group may select several options,
    ``logger=[csv,tensorboard]``: each is built and they are joined here)."""

    def __init__(self, loggers: Sequence[Logger] = ()) -> None:
        super().__init__()
        self.loggers = list(loggers)

    def log_metrics(self, metrics: Mapping[str, float], step: int | Step) -> None:
        for logger in self.loggers:
            logger.log_metrics(metrics, step)

    def log_hparams(self, params: Mapping[str, Any], metrics: Mapping[str, float] | None = None) -> None:
        for logger in self.loggers:
            logger.log_hparams(params, metrics)

    def log_matrix(self, name: str, matrix: np.ndarray) -> None:
        for logger in self.loggers:
            logger.log_matrix(name, matrix)

    def state_dict(self) -> dict[str, Any]:
        return {"loggers": [logger.state_dict() for logger in self.loggers]}

    def resume(self, state: dict[str, Any] | None) -> None:
        states = state["loggers"] if state else [None] * len(self.loggers)
        for logger, logger_state in zip(self.loggers, states):
            logger.resume(logger_state)

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
