"""Lossy time compression of replayed activity (seed-spec §4), vectorised on any device.

A sample's activity ``x`` of shape ``[T, H]`` (batched: ``[N, T, H]``) is cut into ``S = T // ratio`` windows
of ``w = ratio`` consecutive steps. :func:`encode` reduces each window to one stored value per neuron and
:func:`decode` expands the stored values back to ``T`` steps, because the network always simulates the full
``T`` steps with its original time constants. Both are one reshape to ``[N, S, w, H]`` and a reduction or a
broadcast comparison: no Python loop over samples, neurons or windows.

Codecs (value stored per window -> what is replayed in the window):

``or_impulse``
    Logical OR of the window (bool) -> one spike (value 1) at the window's first step, zeros elsewhere.
    The paper's default for spikes; several spikes in a window collapse to one.
``count_burst``
    Spike count ``n`` -> ``n`` consecutive spikes from the window start (spike at offset ``j`` iff ``n > j``),
    the paper's ``_sums`` variant. Keeps the rate, pushes timing to the window start.
``count_spread``
    Spike count ``n`` -> ``n`` spikes spread evenly over the window, at offsets ``floor(i * w / n)`` for
    ``i = 0 .. n-1`` (``n`` is clipped to ``w``). Offset ``j`` spikes iff ``ceil((j+1)n/w) > ceil(jn/w)``,
    which is the vectorised form used here. ``n == w`` gives all ones, ``n == 0`` none. Keeps the rate and,
    roughly, the timing; not in the paper.
``sum_impulse``
    Window sum (any real value) -> that value injected at the window's first step, zeros elsewhere. The
    paper's treatment of input currents (latent depth 0) and of raw input counts (rehearsal).

Which codec to use: float input currents accept only ``sum_impulse``; spikes and raw input counts accept all
four. For spikes at strong compression (1:10 and beyond) ``or_impulse`` starves the layers above of spikes;
the count codecs keep the rate, and ``count_spread`` also keeps the timing best. At ratio 1 every codec is
the identity on valid inputs (0/1 spikes for ``or_impulse`` and the count codecs, any value for
``sum_impulse``).
"""

from __future__ import annotations

import math

import torch

from spikecl.errors import ConfigError
from spikecl.utils import checks

CODECS = ("or_impulse", "count_burst", "count_spread", "sum_impulse")
COUNT_CODECS = ("count_burst", "count_spread")
# What each kind of stored activity may be compressed with (seed-spec §4.1).
KIND_CODECS = {"spikes": CODECS, "counts": CODECS, "current": ("sum_impulse",)}
_UNSIGNED = (torch.uint8, torch.uint16, torch.uint32, torch.uint64)


def divisors(n: int) -> list[int]:
    """All positive divisors of ``n`` in increasing order."""
    return [d for d in range(1, n + 1) if n % d == 0]


def check_ratio(ratio: int, nb_steps: int) -> None:
    """Raise :class:`ConfigError` unless ``ratio`` is a positive integer dividing ``nb_steps``."""
    if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1 or nb_steps % ratio != 0:
        raise ConfigError(
            f"compression.ratio={ratio!r} must be a positive integer that divides nb_steps={nb_steps} "
            f"(one stored step per `ratio` simulated steps); valid values: {divisors(nb_steps)}"
        )


def check_codec(codec: str, kind: str = "spikes") -> None:
    """Raise :class:`ConfigError` unless ``codec`` is known and fits ``kind`` (spikes, counts or current)."""
    if kind not in KIND_CODECS:
        raise ValueError(f"unknown stored activity kind {kind!r}; expected one of {sorted(KIND_CODECS)}")
    allowed = KIND_CODECS[kind]
    if codec not in allowed:
        what = "float input currents (latent depth 0)" if kind == "current" else kind
        raise ConfigError(f"compression.codec={codec!r} cannot store {what}; allowed: {', '.join(allowed)}")


def unsigned_dtype(max_value: int) -> torch.dtype:
    """The narrowest unsigned integer dtype that holds every value in ``0..max_value``."""
    for dtype in _UNSIGNED:
        if max_value <= torch.iinfo(dtype).max:
            return dtype
    raise ValueError(f"value {max_value} does not fit in 64 bits")


def bits_per_entry(codec: str, ratio: int, max_value: int = 1, current_bits: int = 32, kind: str = "spikes") -> int:
    """Bits one stored value needs in the paper's accounting (seed-spec §9).

    ``or_impulse`` stores 1 bit; the count codecs and ``sum_impulse`` on integer data store a window sum of
    at most ``ratio * max_value`` (``max_value`` is the largest value of one step: 1 for spikes), i.e.
    ``ceil(log2(ratio * max_value + 1))`` bits; ``kind="current"`` (float currents) stores ``current_bits``.
    """
    check_codec(codec, kind)
    if kind == "current":
        return current_bits
    if codec == "or_impulse":
        return 1
    return max(1, math.ceil(math.log2(ratio * max(max_value, 1) + 1)))


def _windows(x: torch.Tensor, ratio: int) -> torch.Tensor:
    """View ``[N, T, H]`` as ``[N, T // ratio, ratio, H]``."""
    if x.dim() != 3:
        raise ValueError(f"expected activity of shape [N, T, H], got {tuple(x.shape)}")
    check_ratio(ratio, x.shape[1])
    return x.reshape(x.shape[0], x.shape[1] // ratio, ratio, x.shape[2])


def _check_counts(x: torch.Tensor, codec: str) -> None:
    """Count codecs need non-negative integer values; anything else would be silently truncated."""
    bad = (x < 0).any()
    if x.is_floating_point():
        bad = bad | (x != x.round()).any()
    if bool(bad):
        raise ValueError(f"codec {codec!r} needs non-negative integer spike counts; got negative or fractional values")


def encode(x: torch.Tensor, ratio: int, codec: str) -> torch.Tensor:
    """Compress ``x`` ``[N, T, H]`` to ``[N, T // ratio, H]`` with ``codec`` (see the module docstring).

    Result dtypes: ``or_impulse`` bool; count codecs the narrowest unsigned integer dtype holding
    ``ratio * x.max()``; ``sum_impulse`` keeps a float dtype and turns integer/bool input into the same
    narrowest unsigned dtype (it must then be non-negative).
    """
    check_codec(codec)
    win = _windows(x, ratio)
    if codec == "or_impulse":
        return (win != 0).any(dim=2)
    if codec == "sum_impulse" and x.is_floating_point():
        return win.sum(dim=2)
    _check_counts(x, codec)
    # Integer sums in int64 (unsigned wide dtypes lack reductions); float input is integral by the check above.
    sums = win.to(torch.int64).sum(dim=2)
    peak = int(x.max()) if x.numel() else 0
    return sums.to(unsigned_dtype(ratio * max(peak, 1)))


def decode(z: torch.Tensor, ratio: int, codec: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Expand stored values ``z`` ``[N, S, H]`` to replayed activity ``[N, S * ratio, H]`` of ``dtype``."""
    check_codec(codec)
    if z.dim() != 3:
        raise ValueError(f"expected stored values of shape [N, S, H], got {tuple(z.shape)}")
    if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
        raise ConfigError(f"compression.ratio={ratio!r} must be a positive integer")
    n, s, h = z.shape
    if codec in ("or_impulse", "sum_impulse"):
        value = (z != 0).to(dtype) if codec == "or_impulse" else z.to(dtype)
        if ratio == 1:
            return value
        out = torch.zeros(n, s, ratio, h, dtype=dtype, device=z.device)
        out[:, :, 0, :] = value
        return out.reshape(n, s * ratio, h)
    # Count n replays as row n of a [w + 1, w] pattern table: one gather instead of arithmetic per cell.
    table = count_patterns(ratio, codec, dtype, z.device)
    spikes = table[z.to(torch.int64).clamp(0, ratio)]  # [N, S, H, w]
    return spikes.transpose(2, 3).reshape(n, s * ratio, h)


def count_patterns(ratio: int, codec: str, dtype: torch.dtype = torch.float32,
                   device: str | torch.device = "cpu") -> torch.Tensor:
    """Replayed window for every count: ``[ratio + 1, ratio]``, row ``n`` holds the ``n`` spikes of ``codec``."""
    n = torch.arange(ratio + 1, device=device).view(-1, 1)
    j = torch.arange(ratio, device=device).view(1, -1)
    if codec == "count_burst":
        return (n > j).to(dtype)
    if codec == "count_spread":
        # ceil(a / w) as -((-a) // w): offset j holds one of the n evenly spread spikes iff this jumps.
        return (-((-(j + 1) * n) // ratio) > -((-j * n) // ratio)).to(dtype)
    raise ValueError(f"{codec!r} is not a count codec; expected one of {', '.join(COUNT_CODECS)}")


# Storage types of input currents (latent depth 0).
CURRENT_DTYPES = {"float32": torch.float32, "float16": torch.float16}


class Compression:
    """How replay buffers store activity in time: the ``compression`` config group as an object.

    ``ratio``: one stored step per ``ratio`` simulated steps (1: uncompressed; must divide the data's
    ``nb_steps``, checked against the data set by :func:`spikecl.build.build_setup`). ``codec``: for
    stored spikes (latent depth >= 1); ``input_codec``: for raw input counts (rehearsal); input currents
    (depth 0) always use ``sum_impulse``, stored as ``current_dtype``.
    """

    def __init__(self, *, ratio: int, codec: str, input_codec: str, current_dtype: str) -> None:
        self.ratio = checks.integer("ratio", ratio, 1)
        self.codec = checks.one_of("codec", codec, CODECS)
        self.input_codec = checks.one_of("input_codec", input_codec, CODECS)
        self.current_dtype = checks.one_of("current_dtype", current_dtype, CURRENT_DTYPES)

    def codec_for(self, kind: str) -> str:
        """The codec that stores activity of ``kind`` (spikes, counts or current)."""
        return {"spikes": self.codec, "counts": self.input_codec, "current": "sum_impulse"}[kind]

    def __repr__(self) -> str:
        return (f"Compression(ratio={self.ratio}, codec={self.codec!r}, input_codec={self.input_codec!r}, "
                f"current_dtype={self.current_dtype!r})")
