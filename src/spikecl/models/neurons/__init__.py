"""Neuron types for the hidden layers of :class:`~spikecl.models.RSNN` (``model.neuron``): the paper's
:class:`LIF`, the adaptive :class:`AdLIF`, and the :class:`Neuron` interface a new type implements."""

from spikecl.models.neurons.adlif import AdLIF
from spikecl.models.neurons.base import Neuron, SuperSpike
from spikecl.models.neurons.lif import LIF

__all__ = ["AdLIF", "LIF", "Neuron", "SuperSpike"]
