"""Models for unit tests, built from the config's model presets (conf/model/*.yaml hold the defaults; the
constructors take every value as a required keyword argument)."""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from spikecl.cli import config_dir
from spikecl.models import RSNN


def make_model(preset: str = "rsnn", **overrides: Any) -> RSNN:
    """The model of ``conf/model/<preset>.yaml`` with ``overrides`` merged in (nested dicts for the neuron's
    and readout's keys, e.g. ``neuron={"tau_syn": 1e-6}``); ``nb_inputs`` defaults to the default data set's
    and ``nb_outputs`` to 20."""
    conf = config_dir()
    root = OmegaConf.create({"dataset": OmegaConf.load(conf / "dataset" / "shd.yaml"),
                             "model": OmegaConf.load(conf / "model" / f"{preset}.yaml")})
    root = OmegaConf.merge(root, {"model": {"nb_outputs": 20, **overrides}})
    try:
        return instantiate(root.model)
    except InstantiationException as exc:  # the model's own error, as a test expects it
        raise exc.__cause__ from None
