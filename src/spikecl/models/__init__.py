"""Spiking network models."""

from spikecl.models.lif import RSNN, class_scores

__all__ = ["RSNN", "class_scores"]
