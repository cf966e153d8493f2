"""The 0.2 import path of the network (``from spikecl.models.lif import RSNN, class_scores``), kept until
every importer uses :mod:`spikecl.models`; the LIF neuron itself is :mod:`spikecl.models.neurons.lif`."""

from spikecl.models.readout import class_scores
from spikecl.models.rsnn import RSNN

__all__ = ["RSNN", "class_scores"]
