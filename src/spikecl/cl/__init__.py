"""Continual learning: the loop, its plugins, replay buffers with time compression, and metrics.

- :mod:`spikecl.cl.loop`: :class:`Strategy`, the one loop that trains every phase and calls the plugins.
- :mod:`spikecl.cl.plugin`: :class:`Plugin`, the hooks a method implements and what it declares; :class:`Phase`.
- :mod:`spikecl.cl.context`: :class:`Context`, what the loop and the plugins work with.
- :mod:`spikecl.cl.minibatch`: sources, the pieces of a minibatch and the :class:`Batch` the loop trains.
- :mod:`spikecl.cl.plugins`: the methods that ship with spikecl (replay, new-class readout, ...).
- :mod:`spikecl.cl.policies`: storage policies, which past samples a replay buffer keeps.
- :mod:`spikecl.cl.storage`: the replay buffer's storage (bit-packed / narrow-integer, memory accounting).
- :mod:`spikecl.cl.compression`: codecs that compress replayed activity in time and expand it for replay.
- :mod:`spikecl.cl.sources`: where training samples come from (raw input, cached latents, a buffer).
- :mod:`spikecl.cl.loss`: the spike regulariser every training loss includes.
- :mod:`spikecl.cl.metrics`: evaluations, accuracy matrices, backward and forward transfer, forgetting.
"""

from spikecl.cl.context import Context
from spikecl.cl.loop import Strategy
from spikecl.cl.minibatch import Batch
from spikecl.cl.plugin import Phase, Plugin

__all__ = ["Batch", "Context", "Phase", "Plugin", "Strategy"]
