"""Spike binning exactly as the paper's code (seed-spec 1.3), for one sample or a whole data set.

A spike at time t goes to step ``np.digitize(t, np.linspace(0, max_time, nb_steps))``: step 0 stays
empty, step k+1 covers [k*dt, (k+1)*dt) with dt = max_time / (nb_steps - 1). Spikes at or after
``max_time`` are dropped (the original code would index out of range). Values are spike counts, not 0/1:
repeated spikes of a unit within one step add up, as in the original's uncoalesced sparse tensor.
float16 times are upcast to float64 before any comparison or arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from spikecl.data.events import BinnedSpikes, smallest_uint

_INVALID = -1  # step code of a NaN or negative time
# Binning that drops more than this fraction of a file's spikes (at or after max_time) stops: the times are
# then in another unit than seconds (milliseconds, steps), or max_time is far too short for the recordings.
MAX_DROPPED_FRACTION = 0.5


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
    if not u.size:  # np.asarray([]) is float64
        u = u.astype(np.int64)
    if len(t) != len(u):
        raise ValueError(f"{len(t)} spike times but {len(u)} units")
    _check_units(u, nb_units)
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
    the events, already ordered by (sample, step, unit). The work goes through consecutive groups of
    samples of about ``CHUNK_SPIKES`` spikes: the temporaries then stay small enough for the allocator
    to reuse, where fresh arrays of ~80 M entries cost more in page faults than the arithmetic itself.
    """
    nb_steps, nb_units = int(nb_steps), int(nb_units)
    times, units = np.asarray(times), np.asarray(units)
    if not units.size:  # np.asarray([]) is float64
        units = units.astype(np.int64)
    if units.dtype.kind not in "iu":
        raise ValueError(f"unit indices must be integers, got dtype {units.dtype}")
    bounds = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=bounds[1:])
    to_steps = _step_coder(times.dtype, nb_steps, max_time)
    targets = np.arange(CHUNK_SPIKES, bounds[-1], CHUNK_SPIKES)
    cuts = np.unique(np.concatenate([[0], np.searchsorted(bounds, targets), [len(lengths)]]))
    if len(cuts) == 1:  # no samples at all
        cuts = np.array([0, 0])
    parts = []
    for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist()):
        lo, hi = bounds[a], bounds[b]
        parts.append(_bin_chunk(times[lo:hi], units[lo:hi], bounds[a : b + 1] - lo, a, to_steps, nb_steps, nb_units))
    binned = BinnedSpikes.concatenate(parts)
    _check_time_unit(times, int(binned.counts.sum(dtype=np.int64)), max_time)
    return binned


CHUNK_SPIKES = 1 << 21


def _bin_chunk(
    times: np.ndarray,
    units: np.ndarray,
    bounds: np.ndarray,
    first_sample: int,
    to_steps: Callable[[np.ndarray], np.ndarray],
    nb_steps: int,
    nb_units: int,
) -> BinnedSpikes:
    """Bin samples ``first_sample...`` whose spikes are ``times/units[bounds[i]:bounds[i+1]]``."""
    bad = units >= nb_units
    if units.dtype.kind == "i":
        bad |= units < 0
    if bad.any():
        first = int(np.argmax(bad))
        raise ValueError(
            f"sample {_sample_of(bounds, first, first_sample)} has unit index {int(units[first])}, "
            f"outside [0, {nb_units}) (dataset.nb_units={nb_units})"
        )
    step = to_steps(times)
    if len(step) and step.min() == _INVALID:
        first = int(np.argmax(step == _INVALID))
        raise ValueError(
            f"sample {_sample_of(bounds, first, first_sample)} has an invalid spike time "
            f"({float(times[first])}); times must be >= 0 and not NaN"
        )

    n, grid = len(bounds) - 1, nb_steps * nb_units
    kd = np.uint32 if n * grid < 2**32 else np.uint64
    key = step.astype(kd)
    key *= kd(nb_units)
    key += units.astype(kd, copy=False)
    key += np.repeat(np.arange(n, dtype=kd) * kd(grid), np.diff(bounds))
    key = key[step < nb_steps]  # drop spikes at or after max_time
    key.sort()

    first = np.ones(len(key), dtype=bool)
    np.not_equal(key[1:], key[:-1], out=first[1:])
    counts = np.diff(np.flatnonzero(np.append(first, True)))
    key = key[first]
    rest = key % kd(grid)
    return BinnedSpikes(
        offsets=np.searchsorted(key, np.arange(n + 1, dtype=kd) * kd(grid)).astype(np.int64),
        steps=(rest // kd(nb_units)).astype(smallest_uint(nb_steps - 1)),
        units=(rest % kd(nb_units)).astype(smallest_uint(max(nb_units - 1, 65535))),
        counts=counts.astype(smallest_uint(int(counts.max()) if len(counts) else 0)),
        nb_steps=nb_steps,
        nb_units=nb_units,
    )


def _check_time_unit(times: np.ndarray, kept: int, max_time: float) -> None:
    """ValueError when binning kept ``kept`` of ``times`` and so dropped more than MAX_DROPPED_FRACTION.

    SHD stores seconds; times in milliseconds would all lie after max_time and vanish silently. A max_time
    that drops most spikes on purpose is refused too (cut the recordings in the files instead).
    """
    total = len(times)
    dropped = total - kept
    if not total or dropped <= MAX_DROPPED_FRACTION * total:
        return
    raise ValueError(
        f"dataset.max_time={max_time:g} is not valid for these spike times; {dropped / total:.0%} of the spikes "
        f"lie at or after {max_time:g} (median spike time {float(np.median(times)):g}), so the times look like "
        "milliseconds or another unit, but SHD stores seconds (and so does dataset.max_time); convert the file's "
        "spikes/times to seconds, or set dataset.max_time to the length of the recordings"
    )


def _sample_of(bounds: np.ndarray, spike: int, first_sample: int) -> int:
    """Index of the sample that owns spike position ``spike`` of a chunk starting at ``first_sample``."""
    return first_sample + int(np.searchsorted(bounds, spike, side="right") - 1)


def _step_coder(dtype: np.dtype, nb_steps: int, max_time: float) -> Callable[[np.ndarray], np.ndarray]:
    """A function from spike times to step codes: the step, ``nb_steps`` if dropped, -1 if NaN or < 0.

    float16 times have only 65,536 bit patterns: the step of every pattern is computed once (from its
    exact float64 value) and looked up, which is much faster than digitizing ~80 M spikes.
    """
    edges = time_edges(nb_steps, max_time)
    if dtype == np.float16:
        table = _step_codes(np.arange(2**16, dtype=np.uint16).view(np.float16).astype(np.float64), edges)
        return lambda t: table[t.view(np.uint16)]
    if dtype.kind not in "fiu":
        raise ValueError(f"spike times must be numbers, got dtype {dtype}")
    return lambda t: _step_codes(t.astype(np.float64), edges)


def _step_codes(t: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """np.digitize step of float64 times ``t``, with the invalid code -1 for NaN or negative times.

    digitize returns len(edges) == nb_steps exactly for t >= edges[-1] == max_time: the drop code.
    """
    step = np.digitize(t, edges).astype(np.int16 if len(edges) < 2**15 else np.int32)
    step[np.isnan(t) | (t < 0)] = _INVALID
    return step


def _check_units(units: np.ndarray, nb_units: int) -> None:
    """ValueError for a unit index outside ``[0, nb_units)`` (single sample)."""
    if units.dtype.kind not in "iu":
        raise ValueError(f"unit indices must be integers, got dtype {units.dtype}")
    bad = (units >= nb_units) | (units < 0)
    if bad.any():
        raise ValueError(f"unit index {int(units[np.argmax(bad)])} is outside [0, {nb_units})")
