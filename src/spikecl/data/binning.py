"""Spike binning exactly as the paper's code (seed-spec 1.3), for one sample or a whole data set.

A spike at time t goes to step ``np.digitize(t, np.linspace(0, max_time, nb_steps))``: step 0 stays
empty, step k+1 covers [k*dt, (k+1)*dt) with dt = max_time / (nb_steps - 1). Spikes at or after
``max_time`` are dropped (the original code would index out of range). Values are spike counts, not 0/1:
repeated spikes of a unit within one step add up, as in the original's uncoalesced sparse tensor.
float16 times are upcast to float64 before any comparison or arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from spikecl.data.events import BinnedSpikes, smallest_uint

_INVALID = -1  # step code of a NaN or negative time


def time_edges(nb_steps: int, max_time: float) -> np.ndarray:
    """The ``nb_steps`` bin edges of the paper, float64."""
    return np.linspace(0.0, float(max_time), int(nb_steps))


def bin_spikes(
    times: np.ndarray | Sequence[float],
    units: np.ndarray | Sequence[int],
    nb_steps: int = 100,
    max_time: float = 1.4,
    nb_units: int = 700,
) -> torch.Tensor:
    """Spike counts of one sample as float32 ``[nb_steps, nb_units]``.

    This is the reference implementation (a direct transcription of the paper's binning); the bulk path
    :func:`bin_dataset` gives identical values. Raises ValueError for NaN or negative times, unit indices
    outside ``[0, nb_units)`` or times and units of different lengths.
    """
    t = np.asarray(times).astype(np.float64).ravel()
    u = np.asarray(units).ravel()
    if len(t) != len(u):
        raise ValueError(f"{len(t)} spike times but {len(u)} units")
    _check_units(u, np.array([0, len(u)]), nb_units)
    bad = np.isnan(t) | (t < 0)
    if bad.any():
        raise ValueError(f"spike {np.argmax(bad)} has an invalid time ({t[bad][0]}); times must be >= 0")
    step = np.digitize(t, time_edges(nb_steps, max_time))
    keep = (t < max_time) & (step < nb_steps)
    counts = np.zeros((nb_steps, nb_units), dtype=np.float32)
    np.add.at(counts, (step[keep], u[keep].astype(np.intp)), 1.0)
    return torch.from_numpy(counts)


def bin_dataset(
    times_vlen: np.ndarray | Sequence[np.ndarray],
    units_vlen: np.ndarray | Sequence[np.ndarray],
    nb_steps: int,
    max_time: float,
    nb_units: int,
) -> BinnedSpikes:
    """Bin every sample at once (vectorised); equal to :func:`bin_spikes` applied sample by sample.

    ``times_vlen`` / ``units_vlen`` hold one array per sample (h5py returns such object arrays for
    variable-length datasets). Raises ValueError naming the first bad sample.
    """
    times, units, lengths = flatten_samples(times_vlen, units_vlen)
    return bin_flat(times, units, lengths, nb_steps, max_time, nb_units)


def flatten_samples(
    times_vlen: np.ndarray | Sequence[np.ndarray], units_vlen: np.ndarray | Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate per-sample arrays into flat times and units plus the per-sample spike counts."""
    if len(times_vlen) != len(units_vlen):
        raise ValueError(f"{len(times_vlen)} samples of spike times but {len(units_vlen)} of units")
    # len() per sample is the only per-sample work: object arrays offer no vectorised length.
    t_len = np.fromiter(map(len, times_vlen), dtype=np.int64, count=len(times_vlen))
    u_len = np.fromiter(map(len, units_vlen), dtype=np.int64, count=len(units_vlen))
    if np.any(t_len != u_len):
        i = int(np.argmax(t_len != u_len))
        raise ValueError(f"sample {i} has {t_len[i]} spike times but {u_len[i]} units")
    if len(t_len) == 0:
        return np.zeros(0, np.float64), np.zeros(0, np.int64), t_len
    return np.concatenate(list(times_vlen)), np.concatenate(list(units_vlen)), t_len


def bin_flat(
    times: np.ndarray,
    units: np.ndarray,
    lengths: np.ndarray,
    nb_steps: int,
    max_time: float,
    nb_units: int,
) -> BinnedSpikes:
    """Bin flat spike arrays (sample i owns the next ``lengths[i]`` spikes) into a :class:`BinnedSpikes`.

    Each spike gets a key ``sample * T * U + step * U + unit``; sorting the keys and counting runs gives
    the events, already ordered by (sample, step, unit).
    """
    nb_steps, nb_units = int(nb_steps), int(nb_units)
    bounds = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=bounds[1:])
    _check_units(units, bounds, nb_units)
    step = spike_steps(times, nb_steps, max_time)
    if len(step) and step.min() == _INVALID:
        first = int(np.argmax(step == _INVALID))
        sample = int(np.searchsorted(bounds, first, side="right") - 1)
        raise ValueError(
            f"sample {sample} has an invalid spike time ({float(times[first])}); times must be >= 0 and not NaN"
        )

    # Fresh large arrays are costly (page faults), so the key is built in place in one buffer.
    n, grid = len(lengths), nb_steps * nb_units
    kd = np.uint32 if n * grid < 2**32 else np.uint64
    key = step.astype(kd)
    key *= kd(nb_units)
    key += units.astype(kd, copy=False)
    key += np.repeat(np.arange(n, dtype=kd) * kd(grid), lengths)
    key = key[step < nb_steps]  # drop spikes at or after max_time
    del step
    key.sort()

    first = np.ones(len(key), dtype=bool)
    np.not_equal(key[1:], key[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.empty(len(starts), dtype=np.int64)
    np.subtract(starts[1:], starts[:-1], out=counts[:-1])
    counts[-1:] = len(key) - starts[-1:]
    key = key[first]
    offsets = np.searchsorted(key, np.arange(n + 1, dtype=kd) * kd(grid)).astype(np.int64)
    rest = key % kd(grid)
    units_out = (rest % kd(nb_units)).astype(smallest_uint(max(nb_units - 1, 65535)))
    np.floor_divide(rest, kd(nb_units), out=rest)
    return BinnedSpikes(
        offsets=offsets,
        steps=rest.astype(smallest_uint(nb_steps - 1)),
        units=units_out,
        counts=counts.astype(smallest_uint(int(counts.max()) if len(counts) else 0)),
        nb_steps=nb_steps,
        nb_units=nb_units,
    )


def spike_steps(times: np.ndarray, nb_steps: int, max_time: float) -> np.ndarray:
    """Step index of each spike: ``nb_steps`` for dropped spikes, -1 for NaN or negative times.

    float16 times have only 65,536 bit patterns: the step of every pattern is computed once (from its
    exact float64 value) and looked up, which is much faster than digitizing ~80 M spikes.
    """
    edges = time_edges(nb_steps, max_time)
    times = np.asarray(times)
    if times.dtype == np.float16:
        table = _step_codes(np.arange(2**16, dtype=np.uint16).view(np.float16).astype(np.float64), edges)
        return table[times.view(np.uint16)]
    if times.dtype.kind not in "fiu":
        raise ValueError(f"spike times must be numbers, got dtype {times.dtype}")
    return _step_codes(times.astype(np.float64), edges)


def _step_codes(t: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """np.digitize step of float64 times ``t``, with the invalid code -1 for NaN or negative times.

    digitize returns len(edges) == nb_steps exactly for t >= edges[-1] == max_time: the drop code.
    """
    step = np.digitize(t, edges).astype(np.int16 if len(edges) < 2**15 else np.int32)
    step[np.isnan(t) | (t < 0)] = _INVALID
    return step


def _check_units(units: np.ndarray, bounds: np.ndarray, nb_units: int) -> None:
    """ValueError naming the first sample with a unit index outside ``[0, nb_units)``."""
    if units.dtype.kind not in "iu":
        raise ValueError(f"unit indices must be integers, got dtype {units.dtype}")
    if not len(units):
        return
    bad = (units >= nb_units) | (units < 0) if units.dtype.kind == "i" else units >= nb_units
    if bad.any():
        first = int(np.argmax(bad))
        sample = int(np.searchsorted(bounds, first, side="right") - 1)
        raise ValueError(
            f"sample {sample} has unit index {int(units[first])}, outside [0, {nb_units}) "
            f"(dataset.nb_units={nb_units})"
        )
