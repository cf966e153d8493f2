"""spikecl from Python: compose a config like the command line does, then run an :class:`Experiment`.

    cfg = spikecl.compose(["strategy=latent_replay", "compression=1to4"])
    with spikecl.Experiment(cfg, "outputs/mine") as exp:
        exp.pretrain()
        exp.learn(1)

The config keeps Hydra's own node (``cfg.hydra``: the overrides and the groups chosen), so a run folder made
from Python gets the same ``.hydra/`` records as one made by the command line.
"""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig

from spikecl.build import build_setup
from spikecl.cli import check_overrides, config_dir
from spikecl.sweeps import register_resolvers


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """The packaged config with command-line style ``overrides`` (``["split=class_incremental",
    "split.new_class=3"]``), checked as ``python -m spikecl`` checks it: a bad value raises a one-line
    :class:`~spikecl.errors.ConfigError` here, before any data is read."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    check_overrides(overrides)
    register_resolvers()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = hydra_compose("config", overrides=list(overrides), return_hydra_config=True)
    build_setup(cfg)
    return cfg
