"""Spiking network models: the network (:class:`RSNN`), its neuron types (:mod:`spikecl.models.neurons`),
the readout and its class scores."""

from spikecl.models.neurons import LIF, AdLIF, Neuron
from spikecl.models.readout import LeakyReadout, class_scores
from spikecl.models.rsnn import RSNN

__all__ = ["LIF", "AdLIF", "LeakyReadout", "Neuron", "RSNN", "class_scores"]
