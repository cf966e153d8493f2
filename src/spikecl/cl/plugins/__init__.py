"""The continual-learning methods that ship with spikecl, as plugins of the loop (:mod:`spikecl.cl.plugin`).

One module each:

- :mod:`~spikecl.cl.plugins.replay`: (latent) replay from a compressed buffer (:class:`Replay`);
- :mod:`~spikecl.cl.plugins.readout`: fresh readout columns for classes pretraining never saw
  (:class:`NewClassReadout`);
- :mod:`~spikecl.cl.plugins.ewc`: online Elastic Weight Consolidation (:class:`EWC`);
- :mod:`~spikecl.cl.plugins.si`: Synaptic Intelligence (:class:`SI`);
- :mod:`~spikecl.cl.plugins.lwf`: Learning without Forgetting (:class:`LwF`);
- :mod:`~spikecl.cl.plugins.align`: weight aligning of the readout after each task (:class:`WeightAlign`);
- :mod:`~spikecl.cl.plugins.joint`: joint training on every task's train data, the upper bound, as a
  plugin of the pretraining strategy (:class:`JointTraining`);
- :mod:`~spikecl.cl.plugins.balanced_loss`: every class present in a minibatch weighs the same in its loss
  (:class:`ClassBalancedLoss`);
- :mod:`~spikecl.cl.plugins.consolidation`: a few epochs on the replay buffer alone after every task, the
  sleep phase of sleep-enhanced latent replay (:class:`Consolidation`);
- :mod:`~spikecl.cl.plugins.short_replay`: replay of the stored activity at T / r steps without
  decompression, with adapted time constants (:class:`ShortTimeReplay`, Replay4NCL);
- :mod:`~spikecl.cl.plugins.der`: DER++, replay that also distils the class scores stored with every buffer
  sample (:class:`DER`);
- :mod:`~spikecl.cl.plugins.er_ace`: ER-ACE's asymmetric cross-entropy (:class:`ERACE`);
- :mod:`~spikecl.cl.plugins.gdumb`: GDumb, retraining from the initial state on the buffer alone after every
  task (:class:`GDumb`);
- :mod:`~spikecl.cl.plugins.ncm`: the nearest-class-mean classifier on the buffer, measured next to the
  readout (:class:`NearestClassMean`);
- :mod:`~spikecl.cl.plugins.bias`: a factor on the new classes' scores fitted on held-out samples
  (:class:`BiasCorrection`);

:mod:`~spikecl.cl.plugins.params` holds what several of them share.
"""

from spikecl.cl.plugins.align import WeightAlign
from spikecl.cl.plugins.balanced_loss import ClassBalancedLoss
from spikecl.cl.plugins.bias import BiasCorrection
from spikecl.cl.plugins.consolidation import Consolidation
from spikecl.cl.plugins.der import DER
from spikecl.cl.plugins.er_ace import ERACE
from spikecl.cl.plugins.ewc import EWC
from spikecl.cl.plugins.gdumb import GDumb
from spikecl.cl.plugins.joint import JointTraining
from spikecl.cl.plugins.lwf import LwF
from spikecl.cl.plugins.ncm import NearestClassMean
from spikecl.cl.plugins.readout import NewClassReadout
from spikecl.cl.plugins.replay import Replay
from spikecl.cl.plugins.short_replay import ShortTimeReplay
from spikecl.cl.plugins.si import SI

__all__ = ["EWC", "SI", "JointTraining", "LwF", "NewClassReadout", "Replay", "WeightAlign", "ClassBalancedLoss",
           "Consolidation", "ShortTimeReplay", "DER", "ERACE", "GDumb", "NearestClassMean", "BiasCorrection"]
