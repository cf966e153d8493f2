"""spikecl: continual learning with spiking neural networks on the Spiking Heidelberg Digits.

Latent replay with lossy time-compressed spike buffers (Dequino et al., ISVLSI 2024), re-implemented as a
Hydra-configured experiment framework. Entry point: ``python -m spikecl [overrides]``; the testable core
is :func:`spikecl.run.run`.
"""

import os
import warnings

__version__ = "0.1.0"

# spikecl feeds binned spikes to the network as sparse CSR batches; torch flags that layout as beta.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")

# Idle OpenMP threads of torch spin by default; on a shared or busy CPU that slows every job 2-3x. Set before
# torch is first imported (spikecl imports it lazily); an explicit user setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
