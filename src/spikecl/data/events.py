"""Compact storage of a binned spike data set: one event list per sample, in CSR layout over samples.

An event is (time step, unit, spike count) with a count >= 1. The full SHD binned to 100 x 700 holds about
80 M events; stored as uint8/uint16 columns they take a fraction of the dense float32 tensor (~2.9 GB) and
load from the cache in well under a second. Batches are densified (or turned into a sparse CSR matrix)
only when the model needs them, on the device that runs the model.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


def smallest_uint(max_value: int) -> np.dtype:
    """The narrowest unsigned integer dtype that holds ``max_value``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if max_value <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


@dataclass(frozen=True, eq=False)
class BinnedSpikes:
    """Spike counts of N samples on a ``nb_steps x nb_units`` grid, as a CSR event list over samples.

    Events of sample i are ``steps/units/counts[offsets[i]:offsets[i+1]]``, sorted by (step, unit) and
    unique, so densifying never has to add duplicates. ``steps`` is uint8 (uint16 for nb_steps > 256),
    ``units`` uint16, ``counts`` uint8 (wider only if a count exceeds 255).
    """

    offsets: np.ndarray
    steps: np.ndarray
    units: np.ndarray
    counts: np.ndarray
    nb_steps: int
    nb_units: int

    def __post_init__(self) -> None:
        # Cheap structural checks: they also reject a damaged cache file that happens to unpickle.
        off = self.offsets
        if off.ndim != 1 or off.dtype != np.int64 or len(off) < 1 or off[0] != 0:
            raise ValueError("offsets must be a 1-D int64 array starting at 0")
        nnz = len(self.steps)
        if off[-1] != nnz or len(self.units) != nnz or len(self.counts) != nnz:
            raise ValueError(
                f"event arrays disagree: offsets end at {off[-1]}, steps/units/counts have "
                f"{nnz}/{len(self.units)}/{len(self.counts)} entries"
            )
        if np.any(np.diff(off) < 0):
            raise ValueError("offsets must be non-decreasing")
        if nnz and (int(self.steps.max()) >= self.nb_steps or int(self.units.max()) >= self.nb_units):
            raise ValueError(f"events outside the {self.nb_steps} x {self.nb_units} grid")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def nbytes(self) -> int:
        """Memory held by the four arrays."""
        return int(self.offsets.nbytes + self.steps.nbytes + self.units.nbytes + self.counts.nbytes)

    def nnz_per_sample(self) -> np.ndarray:
        """Number of (step, unit) events of each sample, int64 [N]."""
        return np.diff(self.offsets)

    def subset(self, idx: np.ndarray | Sequence[int] | slice) -> BinnedSpikes:
        """The samples ``idx`` (integer indices, a boolean mask or a slice), in that order."""
        idx = self._index(idx)
        pos, offsets = self._gather(idx)
        return BinnedSpikes(
            offsets, self.steps[pos], self.units[pos], self.counts[pos], self.nb_steps, self.nb_units
        )

    def dense(
        self, idx: np.ndarray | Sequence[int] | slice | None = None, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """Spike counts of the samples ``idx`` (all if None) as float32 ``[B, nb_steps, nb_units]``.

        Only the event list travels to ``device``; the dense tensor is filled there.
        """
        idx = self._index(idx)
        pos, offsets = self._gather(idx)
        batch = np.repeat(np.arange(len(idx), dtype=np.int64), np.diff(offsets))
        flat = (batch * self.nb_steps + self.steps[pos]) * self.nb_units + self.units[pos]
        out = torch.zeros(len(idx) * self.nb_steps * self.nb_units, dtype=torch.float32, device=device)
        values = torch.from_numpy(self.counts[pos].astype(np.float32))
        out[torch.from_numpy(flat).to(out.device)] = values.to(out.device)
        return out.view(len(idx), self.nb_steps, self.nb_units)

    def csr(
        self, idx: np.ndarray | Sequence[int] | slice, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """The samples ``idx`` as a sparse CSR float32 matrix ``[B * nb_steps, nb_units]``.

        Row ``b * nb_steps + step`` holds the counts of sample ``idx[b]`` at that step; ``csr(idx)``
        equals ``dense(idx).reshape(-1, nb_units)``.
        """
        idx = self._index(idx)
        pos, offsets = self._gather(idx)
        nrows = len(idx) * self.nb_steps
        rows = np.repeat(np.arange(len(idx), dtype=np.int64), np.diff(offsets)) * self.nb_steps
        rows += self.steps[pos]
        crow = np.zeros(nrows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=nrows), out=crow[1:])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            # The layout is valid by construction (rows ascending, columns sorted within a row).
            return torch.sparse_csr_tensor(
                torch.from_numpy(crow).to(device),
                torch.from_numpy(self.units[pos].astype(np.int64)).to(device),
                torch.from_numpy(self.counts[pos].astype(np.float32)).to(device),
                size=(nrows, self.nb_units),
                check_invariants=False,
            )

    @staticmethod
    def concatenate(parts: Sequence[BinnedSpikes]) -> BinnedSpikes:
        """The samples of ``parts`` one after the other (all on the same grid)."""
        grids = {(p.nb_steps, p.nb_units) for p in parts}
        if len(grids) != 1:
            raise ValueError(f"cannot concatenate binned spikes on different grids: {sorted(grids)}")
        nb_steps, nb_units = grids.pop()
        shifts = np.cumsum([0] + [int(p.offsets[-1]) for p in parts[:-1]])
        offsets = np.concatenate([[0]] + [p.offsets[1:] + s for p, s in zip(parts, shifts)]).astype(np.int64)
        counts_dtype = np.result_type(*[p.counts.dtype for p in parts])
        return BinnedSpikes(
            offsets,
            np.concatenate([p.steps for p in parts]),
            np.concatenate([p.units for p in parts]),
            np.concatenate([p.counts for p in parts]).astype(counts_dtype, copy=False),
            nb_steps,
            nb_units,
        )

    def _index(self, idx: np.ndarray | Sequence[int] | slice | None) -> np.ndarray:
        """Normalise ``idx`` to int64 sample indices, with NumPy's bounds and negative-index rules."""
        all_idx = np.arange(len(self), dtype=np.int64)
        if idx is None:
            return all_idx
        if isinstance(idx, torch.Tensor):
            idx = idx.cpu().numpy()
        return np.atleast_1d(all_idx[idx])

    def _gather(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Event positions of samples ``idx`` (in order) and the offsets of the gathered event list."""
        starts = self.offsets[idx]
        lengths = self.offsets[idx + 1] - starts
        offsets = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        pos = np.arange(offsets[-1], dtype=np.int64) + np.repeat(starts - offsets[:-1], lengths)
        return pos, offsets
