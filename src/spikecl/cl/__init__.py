"""Continual learning: the loop, its plugins, replay buffers with time compression, and metrics.

- :mod:`spikecl.cl.loop`: :class:`Strategy`, the one loop that trains every phase and calls the plugins.
- :mod:`spikecl.cl.plugin`: :class:`Plugin`, the hooks a method implements, and :class:`Batch`.
- :mod:`spikecl.cl.context`: :class:`Context`, what the loop and the plugins work with.
- :mod:`spikecl.cl.plugins`: the methods that ship with spikecl (replay, new-class readout, ...).
- :mod:`spikecl.cl.compression`: codecs that compress replayed activity in time and expand it for replay.
- :mod:`spikecl.cl.buffer`: the replay buffer (bit-packed / narrow-integer storage, memory accounting) and
  the choice of which past samples it keeps.
- :mod:`spikecl.cl.sources`: where training samples come from (raw input, cached latents, a buffer).
- :mod:`spikecl.cl.metrics`: accuracy matrices, backward transfer and forgetting.
"""

from spikecl.cl.context import Context
from spikecl.cl.loop import Strategy
from spikecl.cl.plugin import Batch, Plugin

__all__ = ["Batch", "Context", "Plugin", "Strategy"]
