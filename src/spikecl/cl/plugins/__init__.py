"""The continual-learning methods that ship with spikecl, as plugins of the loop (:mod:`spikecl.cl.plugin`).

One module each:

- :mod:`~spikecl.cl.plugins.replay`: (latent) replay from a compressed buffer (:class:`Replay`);
- :mod:`~spikecl.cl.plugins.readout`: fresh readout columns for classes pretraining never saw
  (:class:`NewClassReadout`);
- :mod:`~spikecl.cl.plugins.ewc`: online Elastic Weight Consolidation (:class:`EWC`);
- :mod:`~spikecl.cl.plugins.si`: Synaptic Intelligence (:class:`SI`);
- :mod:`~spikecl.cl.plugins.lwf`: Learning without Forgetting (:class:`LwF`);
- :mod:`~spikecl.cl.plugins.align`: weight aligning of the readout after each task (:class:`WeightAlign`);

:mod:`~spikecl.cl.plugins.params` holds what several of them share.
"""

from spikecl.cl.plugins.align import WeightAlign
from spikecl.cl.plugins.ewc import EWC
from spikecl.cl.plugins.lwf import LwF
from spikecl.cl.plugins.readout import NewClassReadout
from spikecl.cl.plugins.replay import Replay
from spikecl.cl.plugins.si import SI

__all__ = ["EWC", "SI", "LwF", "NewClassReadout", "Replay", "WeightAlign"]
