"""Time-compression codecs: hand-worked examples, identities, error messages (seed-spec §4)."""

from __future__ import annotations

import math

import pytest
import torch

from spikecl.cl.compression import CODECS, bits_per_entry, check_codec, check_ratio, decode, encode
from spikecl.errors import ConfigError


def train(bits: str) -> torch.Tensor:
    """One neuron's spike train written as a string ("0110 0000") -> float32 [1, T, 1]."""
    return torch.tensor([float(b) for b in bits.replace(" ", "")]).view(1, -1, 1)


def as_bits(x: torch.Tensor) -> str:
    """[1, T, 1] -> "0110 0000" in groups of 4 steps."""
    s = "".join(str(int(v)) for v in x.flatten().tolist())
    return " ".join(s[i : i + 4] for i in range(0, len(s), 4))


def reference_decode(z: torch.Tensor, ratio: int, codec: str) -> torch.Tensor:
    """Cell-by-cell decoding straight from the definitions, to check the vectorised one."""
    n, s, h = z.shape
    out = torch.zeros(n, s * ratio, h)
    for b in range(n):
        for k in range(s):
            for u in range(h):
                v = float(z[b, k, u])
                if codec == "or_impulse":
                    out[b, k * ratio, u] = float(v != 0)
                elif codec == "sum_impulse":
                    out[b, k * ratio, u] = v
                elif codec == "count_burst":
                    for j in range(min(int(v), ratio)):
                        out[b, k * ratio + j, u] = 1.0
                else:
                    c = min(int(v), ratio)
                    for i in range(c):
                        out[b, k * ratio + (i * ratio) // c, u] = 1.0
    return out


def test_or_impulse_16_step_example():
    # The paper's figure "compression.png", 1:4: windows 0110 | 0000 | 1001 | 0001 -> OR = 1, 0, 1, 1;
    # replay puts one spike at each non-empty window's first step.
    x = train("0110 0000 1001 0001")
    z = encode(x, 4, "or_impulse")
    assert z.dtype == torch.bool
    assert z.flatten().tolist() == [True, False, True, True]
    assert as_bits(decode(z, 4, "or_impulse")) == "1000 0000 1000 1000"


def test_count_burst_example():
    # Windows 0101 | 0000 | 1011 | 0010 hold 2, 0, 3, 1 spikes; a count n replays as n spikes from the start.
    x = train("0101 0000 1011 0010")
    z = encode(x, 4, "count_burst")
    assert z.dtype == torch.uint8
    assert z.flatten().tolist() == [2, 0, 3, 1]
    assert as_bits(decode(z, 4, "count_burst")) == "1100 0000 1110 1000"


def test_count_spread_example():
    # Same counts 2, 0, 3, 1 at w = 4; spikes at floor(i * 4 / n):
    # n=2 -> 0, 2 (1010); n=0 -> none; n=3 -> 0, 1, 2 (floor(4/3)=1, floor(8/3)=2: 1110); n=1 -> 0 (1000).
    x = train("0101 0000 1011 0010")
    z = encode(x, 4, "count_spread")
    assert z.flatten().tolist() == [2, 0, 3, 1]
    assert as_bits(decode(z, 4, "count_spread")) == "1010 0000 1110 1000"


def test_count_spread_other_windows():
    # w = 5: n=2 -> 0, floor(2.5)=2 -> 10100; n=3 -> 0, floor(5/3)=1, floor(10/3)=3 -> 11010;
    # n=4 -> 0, 1, 2, 3 -> 11110; n=5 -> all ones.
    z = torch.tensor([2, 3, 4, 5], dtype=torch.uint8).view(1, 4, 1)
    got = "".join(str(int(v)) for v in decode(z, 5, "count_spread").flatten().tolist())
    assert got == "10100" + "11010" + "11110" + "11111"
    # w = 10, n = 3 -> 0, 3, 6.
    z = torch.tensor([3], dtype=torch.uint8).view(1, 1, 1)
    assert decode(z, 10, "count_spread").flatten().tolist() == [1, 0, 0, 1, 0, 0, 1, 0, 0, 0]


@pytest.mark.parametrize("w", [1, 2, 3, 4, 7, 10, 25])
def test_count_spread_keeps_every_count(w):
    # Every count 0..w decodes to exactly that many spikes at floor(i * w / n); n == w is all ones.
    z = torch.arange(w + 1, dtype=torch.uint8).view(1, w + 1, 1)
    out = decode(z, w, "count_spread").view(w + 1, w)
    assert out.sum(dim=1).tolist() == list(range(w + 1))
    assert torch.equal(out, reference_decode(z, w, "count_spread").view(w + 1, w))
    assert out[w].tolist() == [1.0] * w


def test_sum_impulse_on_currents():
    # Windows (0.5, -1, 0.25, 2) and (1.5, 0, 0, -0.5) sum to 1.75 and 1.0 (all exact in binary);
    # the sum is injected at the first step of its window.
    x = torch.tensor([0.5, -1.0, 0.25, 2.0, 1.5, 0.0, 0.0, -0.5]).view(1, 8, 1)
    z = encode(x, 4, "sum_impulse")
    assert z.dtype == torch.float32
    assert z.flatten().tolist() == [1.75, 1.0]
    assert decode(z, 4, "sum_impulse").flatten().tolist() == [1.75, 0, 0, 0, 1.0, 0, 0, 0]


def test_sum_impulse_on_integer_counts():
    # Raw input counts 2,0 | 1,0 | 3,3 | 0,0 at 1:2 -> 2, 1, 6, 0, stored as unsigned integers.
    x = torch.tensor([2, 0, 1, 0, 3, 3, 0, 0], dtype=torch.int64).view(1, 8, 1)
    z = encode(x, 2, "sum_impulse")
    assert z.dtype == torch.uint8
    assert z.flatten().tolist() == [2, 1, 6, 0]
    assert decode(z, 2, "sum_impulse").flatten().tolist() == [2, 0, 1, 0, 6, 0, 0, 0]


@pytest.mark.parametrize("codec", CODECS)
def test_ratio_one_is_identity(codec):
    g = torch.Generator().manual_seed(0)
    if codec == "sum_impulse":
        x = torch.randn(3, 20, 13, generator=g)
    else:
        x = (torch.rand(3, 20, 13, generator=g) < 0.3).float()
    z = encode(x, 1, codec)
    assert z.shape == x.shape
    assert torch.equal(decode(z, 1, codec), x)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("ratio", [2, 5])
def test_vectorised_matches_cell_by_cell(codec, ratio):
    # Several samples and neurons: catches a reshape that mixes time and neuron axes.
    g = torch.Generator().manual_seed(ratio)
    x = (torch.rand(2, 10, 3, generator=g) < 0.4).float()
    z = encode(x, ratio, codec)
    win = x.view(2, 10 // ratio, ratio, 3)
    expected = (win.sum(2) > 0).float() if codec == "or_impulse" else win.sum(2)
    assert torch.equal(z.float(), expected)
    assert torch.equal(decode(z, ratio, codec), reference_decode(z, ratio, codec))


def test_count_dtype_is_narrowest_unsigned():
    spikes = torch.ones(1, 100, 2)
    assert encode(spikes, 100, "count_burst").dtype == torch.uint8  # at most 100
    counts = torch.full((1, 100, 2), 3.0)
    z = encode(counts, 100, "count_spread")  # at most 300
    assert z.dtype == torch.uint16
    assert z.to(torch.int64).flatten().tolist() == [300, 300]
    # Counts above w replay as a full window.
    assert decode(z, 100, "count_burst").sum().item() == 200


def test_count_codecs_reject_non_counts():
    with pytest.raises(ValueError, match="non-negative integer"):
        encode(torch.full((1, 4, 1), 0.5), 2, "count_burst")
    with pytest.raises(ValueError, match="non-negative integer"):
        encode(torch.full((1, 4, 1), -1.0), 2, "count_spread")


def test_check_ratio():
    for ratio in (1, 2, 4, 5, 10, 20, 25, 50, 100):
        check_ratio(ratio, 100)
    with pytest.raises(ConfigError) as err:
        check_ratio(3, 100)
    msg = str(err.value)
    assert "compression.ratio=3" in msg and "nb_steps=100" in msg and "[1, 2, 4, 5, 10, 20, 25, 50, 100]" in msg
    for bad in (0, -2, 200):
        with pytest.raises(ConfigError, match="compression.ratio"):
            check_ratio(bad, 100)
    with pytest.raises(ConfigError, match="compression.ratio"):
        encode(torch.zeros(1, 10, 2), 3, "or_impulse")


def test_codec_validity():
    for codec in CODECS:
        check_codec(codec, "spikes")
        check_codec(codec, "counts")
    check_codec("sum_impulse", "current")
    with pytest.raises(ConfigError) as err:
        check_codec("or_impulse", "current")
    assert "compression.codec='or_impulse'" in str(err.value) and "sum_impulse" in str(err.value)
    with pytest.raises(ConfigError, match="or_impulse, count_burst, count_spread, sum_impulse"):
        encode(torch.zeros(1, 4, 1), 2, "gzip")


def test_bits_per_entry():
    assert bits_per_entry("or_impulse", 10) == 1
    assert bits_per_entry("count_burst", 1) == 1
    assert bits_per_entry("count_burst", 4) == 3  # 0..4 needs 3 bits
    assert bits_per_entry("count_spread", 10) == 4  # ceil(log2 11), the figure
    assert bits_per_entry("count_burst", 100) == 7
    assert bits_per_entry("sum_impulse", 5, max_value=3, kind="counts") == 4  # 0..15
    assert bits_per_entry("sum_impulse", 10, kind="current") == 32
    assert bits_per_entry("sum_impulse", 10, current_bits=16, kind="current") == 16
    for r in (2, 5, 10, 20, 50):
        assert bits_per_entry("count_burst", r) == math.ceil(math.log2(r + 1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("codec", CODECS)
def test_cuda_equals_cpu(codec):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 100, 30, generator=g) if codec == "sum_impulse" else (torch.rand(4, 100, 30, generator=g) < 0.2).float()
    for ratio in (1, 4, 10):
        z_cpu = encode(x, ratio, codec)
        z_gpu = encode(x.cuda(), ratio, codec)
        assert z_gpu.dtype == z_cpu.dtype
        assert torch.equal(z_gpu.cpu(), z_cpu) if codec != "sum_impulse" else torch.allclose(z_gpu.cpu(), z_cpu, atol=1e-5)
        assert torch.equal(decode(z_cpu.cuda(), ratio, codec).cpu(), decode(z_cpu, ratio, codec))
