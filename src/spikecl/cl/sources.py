"""Where training samples come from: raw SHD input, latents cached for a phase, or a replay buffer.

Each source hands the trainer the entry activity at the training depth (see :mod:`spikecl.cl.minibatch`);
:func:`task_source` is the new data of a phase, as the loop (and joint training) build it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from spikecl.cl.context import Context
from spikecl.cl.minibatch import Source, minibatches
from spikecl.cl.storage import ReplayBuffer
from spikecl.data import BinnedSpikes
from spikecl.models import RSNN


def task_source(ctx: Context, indices: np.ndarray) -> Source:
    """Data-set samples ``indices`` as the phase's new data at its entry depth: raw input when every layer
    trains (``ctx.latent_depth`` None), else their activity at the depth, computed once."""
    data = ctx.data
    if ctx.latent_depth is None:
        return RawSource(ctx.model, data.spikes, indices, data.labels, 0, ctx.device)
    return CachedLatents(ctx.model, data.spikes, indices, data.labels, ctx.latent_depth, ctx.device)


class RawSource:
    """Samples of the data set, run through the layers below the training depth at every step.

    Below-depth layers are either trainable (depth 0 with W1 trained: naive and rehearsal) or frozen, in
    which case autograd records nothing for them.
    """

    def __init__(self, model: RSNN, spikes: BinnedSpikes, indices: np.ndarray, labels: np.ndarray, depth: int,
                 device: torch.device) -> None:
        self.model, self.spikes, self.indices, self.depth, self.device = model, spikes, indices, depth, device
        self.labels = torch.as_tensor(labels[indices], device=device)

    def __len__(self) -> int:
        return len(self.indices)

    def entry(self, idx: np.ndarray) -> Tensor:
        return self.model.latent(self.spikes.csr(self.indices[idx], device=self.device), self.depth,
                                 self.spikes.nb_steps)


class CachedLatents:
    """Activity at the training depth of a fixed set of samples, computed once with the frozen layers.

    The layers below the depth are frozen during the phase, so recomputing them every epoch would give
    the same values; spikes are kept as bool, currents as float32.
    """

    def __init__(self, model: RSNN, spikes: BinnedSpikes, indices: np.ndarray, labels: np.ndarray, depth: int,
                 device: torch.device, batch_size: int = 256) -> None:
        with torch.inference_mode():
            parts = [model.latent(spikes.csr(b, device=device), depth, spikes.nb_steps)
                     for b in minibatches(indices, batch_size)]
        width = model.latent_width(depth)
        z = torch.cat(parts) if parts else torch.zeros(0, spikes.nb_steps, width, device=device)
        self.z = z.bool() if depth > 0 else z.float()
        self.labels = torch.as_tensor(labels[indices], device=device)
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def entry(self, idx: np.ndarray) -> Tensor:
        return self.z[torch.as_tensor(idx, device=self.z.device)]  # the model takes bool spikes as they are


class BufferSource:
    """A replay buffer as a training source. Raw-input buffers run their decoded inputs through the
    layers below the depth, latent buffers enter directly.

    With ``encoded`` the source hands out the stored values as they are, ``nb_steps / ratio`` steps without
    decompression (bool for bit-packed spikes, else float32), for short-time replay
    (:mod:`spikecl.cl.plugins.short_replay`); :attr:`ratio` is then the buffer's ratio, else 1.
    :meth:`entry` is :meth:`enter` of :meth:`activity`, so a wrapper can change the stored activity before
    it enters (the noise of :mod:`spikecl.cl.plugins.consolidation`).
    """

    def __init__(self, buffer: ReplayBuffer, model: RSNN, depth: int, raw_input: bool, encoded: bool = False) -> None:
        self.buffer, self.model, self.depth, self.raw_input = buffer, model, depth, raw_input
        self.encoded = bool(encoded)

    @property
    def labels(self) -> Tensor:
        return self.buffer.labels

    @property
    def ratio(self) -> int:
        """Original steps per step of the activity this source hands out."""
        return self.buffer.ratio if self.encoded else 1

    def __len__(self) -> int:
        return len(self.buffer)

    def activity(self, idx: np.ndarray) -> Tensor:
        """The stored activity [B, T / ratio, W] of positions ``idx``: decoded, or as stored with ``encoded``."""
        if not self.encoded:
            return self.buffer.batch(idx)[0]
        z = self.buffer.encoded(idx)
        return z if z.dtype == torch.bool and not self.raw_input else z.to(torch.float32)

    def enter(self, z: Tensor) -> Tensor:
        """Entry activity at the depth from stored activity ``z`` [B, steps, W]."""
        if not self.raw_input:
            return z
        steps = z.shape[1]
        # The same sparse projection as for new raw data, so replayed and new inputs are computed alike.
        return self.model.latent(z.reshape(-1, z.shape[2]).to_sparse_csr(), self.depth, steps)

    def entry(self, idx: np.ndarray) -> Tensor:
        return self.enter(self.activity(idx))
