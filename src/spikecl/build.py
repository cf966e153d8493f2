"""Configs into objects, once, at the top: every config group with a ``_target_`` becomes its object here.

:func:`build_setup` turns a composed config into a :class:`Setup`, the checked objects an experiment is made
of, before any data is read: a bad value stops here with one line. :func:`build` instantiates one node and
turns whatever its constructor rejects into one :class:`~spikecl.errors.ConfigError` line that names the
full config key (``strategy.epochs='abc' is not valid; ...``), instead of Hydra's multi-line instantiation
error. :func:`build_strategy` builds a strategy with its plugins, each plugin under its own key, so a user's
plugin with a typo in an argument is named. Below this module nothing reads the config.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from spikecl.checkpoints import POLICIES
from spikecl.cl import Strategy
from spikecl.cl.compression import Compression, check_ratio
from spikecl.cl.loss import SpikeRegulariser
from spikecl.data import SpikeFiles, Split
from spikecl.errors import ConfigError
from spikecl.evaluation import EvalSettings
from spikecl.loggers import Logger
from spikecl.utils import checks
from spikecl.utils.cache_dir import open_cache_dir
from spikecl.utils.device import Device
from spikecl.utils.progress import show_progress

log = logging.getLogger("spikecl")

_FULL_KEY = re.compile(r"full_key: (\S+)")


def build(node: DictConfig, key: str, **kwargs: Any) -> Any:
    """``instantiate(node, **kwargs)``; a rejected argument raises a ConfigError naming ``key``."""
    if not isinstance(node, DictConfig) or "_target_" not in node:
        raise ConfigError(f"{key} has no _target_; it must name the class that it builds, e.g. "
                          f"{key}._target_=spikecl.cl.Strategy")
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as exc:
        found = _FULL_KEY.search(str(exc))  # the failing node's path from the config's root
        where = found.group(1) if found else key
        cause = exc.__cause__
        if isinstance(cause, ConfigError):
            raise ConfigError(f"{where}.{cause}") from None
        if isinstance(cause, TypeError):
            raise ConfigError(f"{where}: {cause}; see the arguments of {node._target_}") from None
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        message = _FULL_KEY.sub("", message).strip()
        raise ConfigError(f"{where}._target_={node.get('_target_')!r} cannot be built: {message}") from None


def build_strategy(node: DictConfig, key: str = "strategy", **kwargs: Any) -> Strategy:
    """A :class:`~spikecl.cl.Strategy` from ``node``: its optimiser and its ``plugins`` are built one by one,
    each under its own key. A plugin set to null is left out (a preset can so remove a plugin that its
    tuned defaults add)."""
    plugins = {name: build(plugin, f"{key}.plugins.{name}")
               for name, plugin in (node.get("plugins") or {}).items() if plugin is not None}
    optimizer = build(node.optimizer, f"{key}.optimizer")
    # Built parts replace their nodes (Hydra would merge a dict argument into the node's own dict).
    rest = OmegaConf.masked_copy(node, [k for k in node if k not in ("plugins", "optimizer")])
    return build(rest, key, plugins=plugins, optimizer=optimizer, config_key=key, _recursive_=False, **kwargs)


@dataclass
class Setup:
    """The config turned into checked objects, before any data is read: what an experiment is made of.

    ``model`` and ``loggers`` are factories: the model is made once the data set says how many classes
    there are (``nb_outputs`` None: one output per class), a logger once the run folder is known.
    ``config`` is the resolved config as plain values (``config.yaml``, the loggers' hyper-parameters).
    """

    seed: int
    progress: bool
    checkpoints: str
    cache_dir: Path
    plots: bool
    files: SpikeFiles
    split: Split
    compression: Compression
    eval: EvalSettings
    reg: SpikeRegulariser
    pretraining: Strategy
    strategy: Strategy
    device: Device
    model: Callable[..., nn.Module]
    nb_outputs: int | None
    loggers: list[Callable[..., Logger]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


def build_setup(cfg: DictConfig) -> Setup:
    """Every config group built into its object, the checks across groups done, the cache folder opened:
    a bad value stops here with one line, before any long work."""
    setup = Setup(
        seed=checks.integer("seed", cfg.seed, 0), progress=show_progress(cfg.progress),
        checkpoints=checks.one_of("checkpoints", cfg.checkpoints, POLICIES),
        cache_dir=open_cache_dir(cfg.cache_dir), plots=checks.boolean("plots", cfg.plots),
        files=build(cfg.dataset, "dataset"), split=build(cfg.split, "split"),
        compression=build(cfg.compression, "compression"), eval=build(cfg.eval, "eval"), reg=build(cfg.loss, "loss"),
        pretraining=build_strategy(cfg.pretrain, "pretrain"), strategy=build_strategy(cfg.strategy, "strategy"),
        device=build(cfg.device, "device"), model=build(cfg.model, "model", _partial_=True),
        nb_outputs=cfg.model.get("nb_outputs"),
        loggers=[build(node, f"logger.{name}", _partial_=True) for name, node in (cfg.get("logger") or {}).items()],
        config=OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True))
    if any(p.learns_every_task for p in setup.pretraining.plugins.values()) and setup.strategy.epochs:
        # Pretraining has seen every task's train data (joint training): nothing is left for the continual
        # phase, whatever epochs a preset gives it (experiment=digits_progressive sets strategy.epochs).
        log.info("the pretraining phase learns every task: the continual phase trains nothing "
                 "(strategy.epochs=%d not used)", setup.strategy.epochs)
        setup.strategy.epochs = 0
    shape = _model_shape(setup)

    check_ratio(setup.compression.ratio, setup.files.nb_steps)
    for strategy in (setup.pretraining, setup.strategy):
        strategy.check_depth(shape.nb_layers)
    return setup


def _model_shape(setup: Setup) -> nn.Module:
    """The model built on the meta device: its arguments checked now, without memory or random numbers."""
    try:
        with torch.device("meta"):
            return setup.model(nb_outputs=setup.nb_outputs or 1)
    except ConfigError as exc:
        raise ConfigError(f"model.{exc}") from None
    except TypeError as exc:
        raise ConfigError(f"model: {exc}; see the arguments of the model's _target_") from None
