"""Replay storage: stored activity of past samples, time-compressed and packed, decoded on demand for replay.

Which samples are stored is a storage policy's choice (:mod:`spikecl.cl.policies`); when they are replayed
is the replay plugin's (:mod:`spikecl.cl.plugins.replay`). This module only keeps them.

Three kinds of activity are stored (seed-spec §3.0, §4):

``spikes``
    binary spikes of a hidden layer (latent depth >= 1);
``counts``
    raw input spike counts (rehearsal); a time bin may hold several spikes of one unit;
``current``
    the float input current ``x·W1`` of the first layer (latent depth 0); only ``sum_impulse`` fits it.

Storage per stored step and neuron: binary values (``or_impulse``, or spikes at ratio 1) are bit-packed along
the neuron axis, 8 neurons per byte (most significant bit first, as :func:`numpy.packbits`); window counts and
sums of counts use the narrowest unsigned integer dtype that holds ``ratio * max_value``; currents use
float32 or float16. The arrays live on the buffer's device and grow geometrically with the number of stored
samples only; :attr:`ReplayBuffer.nbytes` counts the stored samples, :attr:`ReplayBuffer.capacity_nbytes`
what is allocated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from spikecl.cl.compression import CURRENT_DTYPES, bits_per_entry, check_codec, check_ratio, decode, encode, unsigned_dtype
from spikecl.errors import ConfigError

KINDS = ("spikes", "counts", "current")
# The size figures of ReplayBuffer.figures, in its order (0 each for a run without a buffer).
FIGURES = ("buffer_samples", "buffer_bytes", "buffer_bytes_1bit", "bits_per_entry", "bytes_per_sample",
           "raw_rehearsal_bytes_1bit")
# Bit weights of one packed byte, most significant first (the numpy.packbits order).
_SHIFTS = torch.arange(7, -1, -1, dtype=torch.uint8)
_WEIGHTS = torch.ones(8, dtype=torch.uint8) << _SHIFTS

Index = int | slice | Sequence[int] | np.ndarray | torch.Tensor


def pack_bits(bits: torch.Tensor) -> torch.Tensor:
    """Pack a 0/1 tensor ``[..., W]`` into uint8 ``[..., ceil(W / 8)]`` along the last axis (MSB first)."""
    width = bits.shape[-1]
    padded = (bits != 0).to(torch.uint8)
    if width % 8:
        padded = F.pad(padded, (0, 8 - width % 8))
    groups = padded.reshape(*padded.shape[:-1], -1, 8)
    return (groups * _WEIGHTS.to(bits.device)).sum(dim=-1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, width: int) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: uint8 ``[..., ceil(width / 8)]`` to bool ``[..., width]``."""
    bits = (packed.unsqueeze(-1) >> _SHIFTS.to(packed.device)) & 1
    return bits.reshape(*packed.shape[:-1], -1)[..., :width].to(torch.bool)


class ReplayBuffer:
    """Stored activity of past samples, compressed in time and packed; decoded on demand for replay.

    Args:
        kind: ``"spikes"``, ``"counts"`` or ``"current"`` (see the module docstring).
        nb_steps: simulated time steps per sample (``T``).
        width: neurons (or input units) per step (``H``).
        ratio: time compression 1:``ratio``; must divide ``nb_steps``.
        codec: one of :data:`spikecl.cl.compression.CODECS`; ``current`` accepts only ``sum_impulse``.
        current_dtype: ``"float32"`` or ``"float16"``, storage type of currents.
        device: where the stored arrays live and where :meth:`batch` returns its tensors.
        max_value: for ``counts``, the largest count one time bin may hold; fixes the storage dtype and the
            paper accounting and rejects larger counts. ``None`` (default) follows the largest count added
            so far, widening the storage dtype when needed. Spikes always have ``max_value`` 1.
        capacity: samples to preallocate room for (the storage grows geometrically past it).
    """

    def __init__(
        self,
        kind: str,
        nb_steps: int,
        width: int,
        ratio: int = 1,
        codec: str = "or_impulse",
        current_dtype: str = "float32",
        device: str | torch.device = "cpu",
        *,
        max_value: int | None = None,
        capacity: int = 0,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown buffer kind {kind!r}; expected one of {', '.join(KINDS)}")
        check_ratio(ratio, nb_steps)
        check_codec(codec, kind)
        if current_dtype not in CURRENT_DTYPES:
            raise ConfigError(
                f"compression.current_dtype={current_dtype!r} is not supported; allowed: {', '.join(CURRENT_DTYPES)}"
            )
        if max_value is not None and (kind != "counts" or max_value < 1):
            raise ValueError("max_value applies only to kind='counts' and must be >= 1")
        self.kind, self.nb_steps, self.width, self.ratio, self.codec = kind, nb_steps, width, ratio, codec
        self.current_dtype = current_dtype
        self.device = torch.device(device)
        self.stored_steps = nb_steps // ratio
        self.packed = codec == "or_impulse" or (kind == "spikes" and ratio == 1)
        self._fixed_max = max_value
        self._max_value = 1 if kind != "counts" else (max_value or 1)
        row = math.ceil(width / 8) if self.packed else width
        self._data = torch.empty(capacity, self.stored_steps, row, dtype=self._storage_dtype(), device=self.device)
        self._len = 0
        self._labels = torch.empty(0, dtype=torch.int64, device=self.device)
        self._ids = np.empty(0, dtype=np.int64)

    def _storage_dtype(self) -> torch.dtype:
        if self.packed:
            return torch.uint8
        if self.kind == "current":
            return CURRENT_DTYPES[self.current_dtype]
        return unsigned_dtype(self.ratio * self._max_value)

    def __len__(self) -> int:
        return self._len

    @property
    def labels(self) -> torch.Tensor:
        """Labels of the stored samples, int64 ``[n]`` on the buffer's device."""
        return self._labels

    @property
    def sample_ids(self) -> np.ndarray:
        """Ids of the stored samples, int64 ``[n]``, in storage order."""
        return self._ids

    @property
    def storage_dtype(self) -> torch.dtype:
        """Dtype of the stored array (uint8 for bit-packed values)."""
        return self._data.dtype

    def _validate(self, activity: torch.Tensor) -> torch.Tensor:
        """Check values against the kind; return the activity in the dtype :func:`encode` should see."""
        if self.kind == "current":
            if not activity.is_floating_point():
                raise ValueError(f"kind='current' stores float input currents, got dtype {activity.dtype}")
            return activity
        if self.kind == "spikes":
            if bool(((activity != 0) & (activity != 1)).any()):
                raise ValueError("kind='spikes' stores binary spikes; got values other than 0 and 1")
            return activity
        bad = (activity < 0).any()
        if activity.is_floating_point():
            bad = bad | (activity != activity.round()).any()
        if bool(bad):
            raise ValueError("kind='counts' stores non-negative integer spike counts; got negative or fractional values")
        peak = int(activity.max()) if activity.numel() else 0
        if self._fixed_max is not None and peak > self._fixed_max:
            raise ValueError(f"count {peak} exceeds the buffer's max_value={self._fixed_max}")
        self._max_value = max(self._max_value, peak)
        # Integer input makes sum_impulse store integer window sums rather than floats.
        return activity.to(torch.int32)

    def _reserve(self, total: int) -> None:
        """Make room for ``total`` samples in a dtype that holds every stored value."""
        dtype = self._storage_dtype()
        if total <= self._data.shape[0] and dtype == self._data.dtype:
            return
        capacity = self._data.shape[0]
        if total > capacity:
            capacity = max(total, 2 * capacity)
        grown = torch.empty(capacity, *self._data.shape[1:], dtype=dtype, device=self.device)
        grown[: self._len] = self._data[: self._len].to(dtype)
        self._data = grown

    def add(self, activity: torch.Tensor, labels: Sequence[int] | np.ndarray | torch.Tensor,
            sample_ids: Sequence[int] | np.ndarray | torch.Tensor) -> None:
        """Encode and store full-resolution ``activity`` ``[n, nb_steps, width]`` of samples ``sample_ids``.

        Raises ValueError on a shape mismatch, on values the kind cannot hold, or on a sample id that is
        already stored or repeated (the buffer holds no duplicates).
        """
        expected = (self.nb_steps, self.width)
        if activity.dim() != 3 or tuple(activity.shape[1:]) != expected:
            raise ValueError(f"activity must have shape [n, {expected[0]}, {expected[1]}], got {tuple(activity.shape)}")
        n = activity.shape[0]
        ids = np.asarray(sample_ids.cpu() if isinstance(sample_ids, torch.Tensor) else sample_ids, dtype=np.int64)
        labels_t = torch.as_tensor(labels, dtype=torch.int64).to(self.device).reshape(-1)
        if ids.shape != (n,) or labels_t.shape != (n,):
            raise ValueError(f"need {n} labels and {n} sample ids, got {labels_t.numel()} and {ids.size}")
        repeated = np.unique(ids[np.isin(ids, self._ids)]).tolist()
        if repeated or np.unique(ids).size != n:
            raise ValueError(f"sample ids already in the buffer or repeated in this call: {repeated or 'repeated'}")
        stored = encode(self._validate(activity.to(self.device)), self.ratio, self.codec)
        if self.packed:
            stored = pack_bits(stored)
        self._reserve(self._len + n)
        self._data[self._len : self._len + n] = stored.to(self._data.dtype)
        self._len += n
        self._labels = torch.cat([self._labels, labels_t])
        self._ids = np.concatenate([self._ids, ids])

    def remove(self, which: Sequence[int] | np.ndarray | torch.Tensor) -> None:
        """Drop stored samples, given as a bool mask ``[len(self)]`` or as positions; the others keep their order.

        Activity, labels and ids stay aligned. The allocated room is kept for later :meth:`add` calls, and the
        storage dtype stays as wide as the largest count ever added.
        """
        which = np.asarray(which.cpu() if isinstance(which, torch.Tensor) else which)
        if which.dtype == bool:
            if which.shape != (self._len,):
                raise ValueError(f"a removal mask needs shape ({self._len},), got {which.shape}")
            drop = which
        else:
            positions = which.astype(np.int64).reshape(-1)
            if positions.size and (positions.min() < 0 or positions.max() >= self._len):
                raise IndexError(f"buffer position out of range 0..{self._len - 1}")
            drop = np.zeros(self._len, dtype=bool)
            drop[positions] = True
        keep = np.flatnonzero(~drop)
        keep_t = torch.as_tensor(keep, device=self.device)
        # the gather copies before the write, so compacting within the same storage is safe
        self._data[: keep.size] = self._data[: self._len][keep_t]
        self._len = int(keep.size)
        self._labels = self._labels[keep_t]
        self._ids = self._ids[keep]

    def _index(self, idx: Index) -> torch.Tensor:
        if isinstance(idx, slice):
            return torch.arange(self._len, device=self.device)[idx]
        index = torch.as_tensor(np.asarray(idx) if not isinstance(idx, torch.Tensor) else idx).reshape(-1)
        index = index.to(device=self.device, dtype=torch.int64)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= self._len):
            raise IndexError(f"buffer index out of range 0..{self._len - 1}")
        return index

    def encoded(self, idx: Index) -> torch.Tensor:
        """Stored values ``[B, nb_steps // ratio, width]``, unpacked (bool for bit-packed storage)."""
        stored = self._data[: self._len][self._index(idx)]
        return unpack_bits(stored, self.width) if self.packed else stored

    def batch(self, idx: Index) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoded float32 activity ``[B, nb_steps, width]`` and int64 labels ``[B]``, on the buffer's device."""
        index = self._index(idx)
        z = self._data[: self._len][index]
        if self.packed:
            z = unpack_bits(z, self.width)
        return decode(z, self.ratio, self.codec, torch.float32), self._labels[index]

    @property
    def nbytes(self) -> int:
        """Bytes of the stored activity of the stored samples (labels and ids excluded)."""
        return self._len * math.prod(self._data.shape[1:]) * self._data.element_size()

    @property
    def capacity_nbytes(self) -> int:
        """Bytes allocated for activity, including room preallocated for samples not yet added."""
        return self._data.nbytes

    @property
    def bits_per_entry(self) -> int:
        """Bits per stored (neuron, step) entry in the paper's accounting (seed-spec §9)."""
        current_bits = 8 * CURRENT_DTYPES[self.current_dtype].itemsize
        return bits_per_entry(self.codec, self.ratio, self._max_value, current_bits, kind=self.kind)

    @property
    def nbytes_1bit(self) -> float:
        """Buffer size as the paper counts it: :attr:`bits_per_entry` bits per neuron per stored step."""
        return self._len * self.stored_steps * self.width * self.bits_per_entry / 8

    @property
    def bytes_per_sample(self) -> float:
        """:attr:`nbytes` per stored sample (0 when empty)."""
        return self.nbytes / self._len if self._len else 0.0

    def figures(self, raw_values_per_sample: int) -> dict[str, float]:
        """The buffer's size figures (:data:`FIGURES`) for a run's summary; ``raw_values_per_sample`` (steps x
        input units) gives what raw rehearsal of the same samples would need at 1 bit per value."""
        values = (self._len, self.nbytes, self.nbytes_1bit, self.bits_per_entry, self.bytes_per_sample,
                  self._len * raw_values_per_sample / 8)
        return dict(zip(FIGURES, values, strict=True))

    def state_dict(self) -> dict:
        """Everything the buffer holds, for checkpoints (tensors on the CPU)."""
        return {"kind": self.kind, "nb_steps": self.nb_steps, "width": self.width, "ratio": self.ratio,
                "codec": self.codec, "current_dtype": self.current_dtype, "max_value": self._fixed_max,
                "seen_max": self._max_value, "data": self._data[:self._len].cpu(), "labels": self._labels.cpu(),
                "ids": torch.from_numpy(self._ids.copy())}

    @classmethod
    def from_state_dict(cls, state: dict, device: str | torch.device = "cpu") -> ReplayBuffer:
        """The buffer that :meth:`state_dict` described, on ``device``."""
        buf = cls(state["kind"], state["nb_steps"], state["width"], state["ratio"], state["codec"],
                  state["current_dtype"], device, max_value=state["max_value"])
        buf._max_value = int(state["seen_max"])
        buf._data = state["data"].to(buf.device)
        buf._len = int(buf._data.shape[0])
        buf._labels = state["labels"].to(buf.device)
        buf._ids = state["ids"].numpy().astype(np.int64)
        return buf
