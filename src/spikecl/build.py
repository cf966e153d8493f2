"""Configs into objects, once, near the top: every config group with a ``_target_`` becomes its object here.

:func:`build` instantiates one node and turns whatever its constructor rejects into one
:class:`~spikecl.errors.ConfigError` line that names the full config key (``strategy.epochs='abc' is not
valid; ...``), instead of Hydra's multi-line instantiation error. :func:`build_strategy` builds a strategy
with its plugins, each plugin under its own key, so a user's plugin with a typo in an argument is named.
"""

from __future__ import annotations

import re
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from spikecl.errors import ConfigError

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
        first = str(exc).splitlines()[0]
        raise ConfigError(f"{where}._target_={node.get('_target_')!r} cannot be built: {first}") from None


def build_strategy(node: DictConfig, key: str = "strategy", **kwargs: Any) -> Any:
    """A :class:`~spikecl.cl.Strategy` from ``node``: its optimiser and its ``plugins`` (in their order) are
    built one by one, each under its own key. A plugin set to null is left out (a preset can so remove a
    plugin that its scenario adds)."""
    plugins = {name: build(plugin, f"{key}.plugins.{name}")
               for name, plugin in (node.get("plugins") or {}).items() if plugin is not None}
    optimizer = build(node.optimizer, f"{key}.optimizer")
    # Built parts replace their nodes (Hydra would merge a dict argument into the node's own dict).
    rest = OmegaConf.masked_copy(node, [k for k in node if k not in ("plugins", "optimizer")])
    return build(rest, key, plugins=plugins, optimizer=optimizer, config_key=key, _recursive_=False, **kwargs)
