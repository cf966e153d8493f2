"""The checks that span config groups, run on the built objects before any data is read.

Each group's own values are checked by the object it builds (``Strategy``, ``Replay``, ``Compression``,
``SpikeFiles``, the splits, ``RSNN``, ...); what is left here needs two groups at once.
"""

from __future__ import annotations

from spikecl.cl.compression import check_ratio
from spikecl.cl.loop import Strategy
from spikecl.cl.plugins import Replay
from spikecl.errors import ConfigError
from spikecl.models.lif import RSNN


def check_across(*, nb_steps: int, ratio: int, model: RSNN, strategies: dict[str, Strategy]) -> None:
    """ConfigError unless the compression ratio divides ``nb_steps`` and every latent depth is a layer."""
    check_ratio(ratio, nb_steps)
    for key, strategy in strategies.items():
        depth = strategy.latent_depth
        replay = strategy.plugin(Replay)
        if replay is not None and replay.stores == "latent" and depth is None:
            raise ConfigError(f"{key}.latent_depth=null is not valid with a latent replay plugin (it stores the "
                              f"activity at that depth); choose 0..{model.nb_layers}, or stores=raw (rehearsal)")
        if depth is not None and depth > model.nb_layers:
            raise ConfigError(f"{key}.latent_depth={depth} is not valid; allowed: 0..{model.nb_layers} for "
                              f"{model.nb_layers} hidden layers (0: input currents, d: spikes of hidden layer d)")
