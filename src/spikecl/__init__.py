"""spikecl: continual learning with spiking neural networks on the Spiking Heidelberg Digits.

Latent replay with lossy time-compressed spike buffers (Dequino et al., ISVLSI 2024), re-implemented as a
Hydra-configured experiment framework. Entry point: ``python -m spikecl [overrides]``; from Python,
:func:`spikecl.compose` and :class:`spikecl.Experiment` (docs/api.md).
"""

import os
import warnings

__version__ = "0.3.0"

# spikecl feeds binned spikes to the network as sparse CSR batches; torch flags that layout as beta.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")

# Idle OpenMP threads of torch spin by default; on a shared or busy CPU that slows every job 2-3x. Set before
# torch is first imported (spikecl imports it lazily); an explicit user setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["Experiment", "compose", "__version__"]


def __getattr__(name: str):
    """``spikecl.compose`` and ``spikecl.Experiment``, imported on first use: ``import spikecl`` (and so
    ``python -m spikecl --help``) stays fast and does not import torch."""
    if name == "compose":
        from spikecl.api import compose

        return compose
    if name == "Experiment":
        from spikecl.experiment import Experiment

        return Experiment
    raise AttributeError(f"module 'spikecl' has no attribute {name!r}")
