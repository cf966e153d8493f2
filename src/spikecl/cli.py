"""The Hydra entry point: compose the config from ``conf/`` and hand it to :func:`spikecl.run.run`."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

try:
    from spikecl.sweeps import register_resolvers
except ImportError:
    register_resolvers = lambda: None


def config_dir() -> Path:
    """The ``conf/`` folder: inside the package in a wheel, at the repository root otherwise."""
    packaged = Path(__file__).resolve().parent / "conf"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "conf"


register_resolvers()


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Run one experiment; returns the final *validation* accuracy on all tasks (what sweepers that optimise,
    such as Optuna's, should compare: never a test figure), or None without a validation part."""
    from spikecl.run import run  # torch is imported lazily so that --help and --cfg stay fast

    return run(cfg)["val_acc_all"]
