"""A :class:`torch.utils.data.Dataset` view of a :class:`~spikecl.data.shd.SpikeDataset`, for DataLoaders.

Items are ``(frames, label, speaker)``: ``frames`` the binned spike counts of one sample, dense
``[nb_steps, nb_units]`` (float32 by default, or uint8 counts) or a coalesced sparse COO tensor of that
shape; ``label`` and ``speaker`` Python ints. Frames are built from the compact event list of only the
samples asked for, never from a densified copy of the whole data set. The view implements
``__getitems__``, so a DataLoader with automatic batching builds each batch in one vectorised pass.

Batching: ``default_collate`` stacks dense items into ``[B, T, U]`` and turns labels and speakers into
int64 tensors. It refuses sparse tensors; pass :func:`collate_sparse` as ``collate_fn`` for those.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from spikecl.data.events import BinnedSpikes


class Samples(Protocol):
    """What a view reads from its data set (a :class:`~spikecl.data.shd.SpikeDataset` has it): the binned
    spikes and one label and speaker per sample. The view names no data-set class, so that the data set can
    offer the view (``SpikeDataset.as_torch``) without an import circle."""

    spikes: BinnedSpikes
    labels: np.ndarray
    speakers: np.ndarray

    def __len__(self) -> int: ...


Item = tuple[torch.Tensor, int, int]
DENSE_DTYPES = (torch.float32, torch.float64, torch.float16, torch.uint8, torch.int16, torch.int32, torch.int64)


class SpikeTorchDataset(Dataset[Item]):
    """The samples ``indices`` of a SpikeDataset (any :class:`Samples`) as ``(frames, label, speaker)`` items.

    ``dense``: dense ``[T, U]`` frames (True) or sparse COO ones (False). ``dtype``: element type of the
    frames (float32; ``torch.uint8`` gives raw counts). ``device``: where frames are built; anything but
    the CPU only with ``num_workers=0`` (CUDA cannot be used inside DataLoader worker processes).
    """

    def __init__(
        self,
        data: Samples,
        indices: np.ndarray | Sequence[int] | torch.Tensor | slice | None = None,
        *,
        dense: bool = True,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        if dtype not in DENSE_DTYPES:
            raise ValueError(f"dtype={dtype} is not allowed; allowed: {', '.join(map(str, DENSE_DTYPES))}")
        if isinstance(indices, torch.Tensor):
            indices = indices.cpu().numpy()
        everything = np.arange(len(data), dtype=np.int64)
        # NumPy's rules: integer indices (negative ones count from the end), a boolean mask or a slice.
        self.indices = everything if indices is None else np.atleast_1d(everything[indices])
        self.spikes: BinnedSpikes = data.spikes
        self.labels = np.asarray(data.labels, dtype=np.int64)
        self.speakers = np.asarray(data.speakers, dtype=np.int64)
        self.dense, self.dtype, self.device = bool(dense), dtype, torch.device(device)
        if dtype == torch.uint8 and self.spikes.counts.dtype != np.uint8 and len(self.spikes.counts):
            peak = int(self.spikes.counts.max())
            if peak > 255:
                raise ValueError(f"dtype=torch.uint8 cannot hold spike counts up to {peak}; use a wider dtype")

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def nb_steps(self) -> int:
        """Time steps T of every frame."""
        return self.spikes.nb_steps

    @property
    def nb_units(self) -> int:
        """Input units U of every frame."""
        return self.spikes.nb_units

    def __getitem__(self, i: int) -> Item:
        return self.__getitems__([i])[0]

    def __getitems__(self, positions: Sequence[int]) -> list[Item]:
        """The items at ``positions`` (of this view), built together from one gather of their events."""
        if self.device.type != "cpu" and get_worker_info() is not None:
            raise RuntimeError(
                f"frames on {self.device} cannot be built in a DataLoader worker process; use "
                "num_workers=0, or device='cpu' and move each batch afterwards"
            )
        idx = self.indices[np.asarray(positions, dtype=np.int64)]
        part = self.spikes.subset(idx)
        labels, speakers = self.labels[idx].tolist(), self.speakers[idx].tolist()
        frames = self._dense(part) if self.dense else self._sparse(part)
        return list(zip(frames, labels, speakers))

    def _dense(self, part: BinnedSpikes) -> list[torch.Tensor]:
        """Dense ``[T, U]`` frames of every sample of ``part``."""
        n, t, u = len(part), part.nb_steps, part.nb_units
        sample = np.repeat(np.arange(n, dtype=np.int64), part.nnz_per_sample())
        flat = torch.from_numpy((sample * t + part.steps) * u + part.units).to(self.device)
        out = torch.zeros(n * t * u, dtype=self.dtype, device=self.device)
        out[flat] = torch.from_numpy(part.counts.astype(np.int64)).to(self.device, self.dtype)
        return list(out.view(n, t, u).unbind(0))

    def _sparse(self, part: BinnedSpikes) -> list[torch.Tensor]:
        """Coalesced sparse COO ``[T, U]`` frames of every sample of ``part``."""
        # Events are sorted by (step, unit) and unique per sample: the COO layout is coalesced as it is.
        indices = torch.from_numpy(np.stack([part.steps.astype(np.int64), part.units.astype(np.int64)]))
        values = torch.from_numpy(part.counts.astype(np.int64)).to(self.dtype)
        sizes = part.nnz_per_sample().tolist()
        shape = (part.nb_steps, part.nb_units)
        return [
            _coalesced_coo(ix, v, shape, self.device)
            for ix, v in zip(indices.split(sizes, dim=1), values.split(sizes))
        ]


def collate_sparse(batch: Sequence[Item]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``collate_fn`` for sparse items: (sparse COO ``[B, T, U]``, labels int64 ``[B]``, speakers int64 ``[B]``).

    ``frames.to_dense()`` equals what ``default_collate`` gives for the same items in dense form.
    """
    if not batch:
        raise ValueError("collate_sparse got an empty batch")
    frames = [item[0].coalesce() for item in batch]
    if any(not f.is_sparse or f.dim() != 2 for f in frames):
        raise ValueError("collate_sparse expects 2-D sparse COO frames; use default_collate for dense ones")
    shapes = {tuple(f.shape) for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"collate_sparse got frames of different shapes: {sorted(shapes)}")
    nnz = torch.tensor([f._nnz() for f in frames], dtype=torch.int64)
    sample = torch.repeat_interleave(torch.arange(len(frames)), nnz).to(frames[0].device)
    indices = torch.cat([sample[None], torch.cat([f.indices() for f in frames], dim=1)])
    values = torch.cat([f.values() for f in frames])
    # Coalesced frames, concatenated in sample order, give sorted unique (sample, step, unit) indices.
    stacked = _coalesced_coo(indices, values, (len(frames), *shapes.pop()), values.device)
    labels = torch.tensor([int(item[1]) for item in batch], dtype=torch.int64)
    speakers = torch.tensor([int(item[2]) for item in batch], dtype=torch.int64)
    return stacked, labels, speakers


def _coalesced_coo(
    indices: torch.Tensor, values: torch.Tensor, size: tuple[int, ...], device: torch.device
) -> torch.Tensor:
    """A sparse COO tensor from indices that are sorted and unique by construction, marked coalesced."""
    try:
        return torch.sparse_coo_tensor(
            indices, values, size, device=device, check_invariants=False, is_coalesced=True
        )
    except TypeError:  # torch < 2.2 has no is_coalesced argument: coalesce (a sort of sorted indices)
        return torch.sparse_coo_tensor(indices, values, size, device=device, check_invariants=False).coalesce()
