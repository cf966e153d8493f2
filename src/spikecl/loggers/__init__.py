"""Experiment loggers: CSV (always available), TensorBoard and MLflow (optional extras), several at once.

Every logger takes the run folder as ``run_dir`` and resolves its own paths inside it, so a config node
``logger: {_target_: spikecl.loggers.TensorBoardLogger, log_dir: tensorboard}`` is built with
``hydra.utils.instantiate(cfg.logger, run_dir=folder)``. TensorBoard and MLflow are imported only when their
logger is built; a missing package is a one-line :class:`~spikecl.errors.ConfigError` naming the extra.
"""

from spikecl.loggers.base import Logger, Step, flatten_params
from spikecl.loggers.csv_logger import CSVLogger
from spikecl.loggers.mlflow_logger import MLflowLogger
from spikecl.loggers.multi import MultiLogger
from spikecl.loggers.tensorboard_logger import TensorBoardLogger

__all__ = ["CSVLogger", "Logger", "MLflowLogger", "MultiLogger", "Step", "TensorBoardLogger", "flatten_params"]
