"""Replay buffer: exact storage round trips, byte accounting (seed-spec §9), duplicates, sample selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikecl.cl.policies import select_samples
from spikecl.cl.storage import ReplayBuffer, pack_bits, unpack_bits
from spikecl.cl.compression import CODECS, decode, encode
from spikecl.errors import ConfigError


def spikes(n: int, steps: int, width: int, seed: int = 0, p: float = 0.2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, steps, width, generator=g) < p).float()


@pytest.mark.parametrize("width", [1, 7, 8, 13, 200])
def test_pack_bits_round_trip_and_numpy_order(width):
    bits = spikes(3, 5, width, seed=width).bool()
    packed = pack_bits(bits)
    assert packed.dtype == torch.uint8 and packed.shape == (3, 5, -(-width // 8))
    assert np.array_equal(packed.numpy(), np.packbits(bits.numpy(), axis=-1))
    assert torch.equal(unpack_bits(packed, width), bits)


@pytest.mark.parametrize("width", [13, 200])
def test_uncompressed_spikes_round_trip_exactly(width):
    x = spikes(6, 20, width, seed=width)
    buf = ReplayBuffer("spikes", 20, width, ratio=1, codec="or_impulse")
    buf.add(x, labels=[0, 1, 2, 3, 4, 5], sample_ids=[10, 11, 12, 13, 14, 15])
    assert buf.storage_dtype == torch.uint8 and buf.nbytes == 6 * 20 * -(-width // 8)
    assert torch.equal(buf.encoded(slice(None)), x.bool())
    got, labels = buf.batch([4, 0, 2])
    assert got.dtype == torch.float32 and torch.equal(got, x[[4, 0, 2]])
    assert labels.tolist() == [4, 0, 2]


@pytest.mark.parametrize("codec", CODECS)
def test_ratio_one_buffer_equals_no_compression(codec):
    x = spikes(4, 10, 11, seed=3)
    buf = ReplayBuffer("spikes", 10, 11, ratio=1, codec=codec)
    buf.add(x, [0, 0, 1, 1], [0, 1, 2, 3])
    assert torch.equal(buf.batch(np.arange(4))[0], x)


@pytest.mark.parametrize("codec", CODECS)
def test_compressed_batch_equals_codec(codec):
    x = spikes(5, 20, 9, seed=4, p=0.5)
    buf = ReplayBuffer("spikes", 20, 9, ratio=5, codec=codec)
    buf.add(x, [1] * 5, [5, 6, 7, 8, 9])
    z = encode(x, 5, codec)
    assert torch.equal(buf.encoded([0, 1, 2, 3, 4]).to(torch.int64), z.to(torch.int64))
    assert torch.equal(buf.batch([3, 1])[0], decode(z[[3, 1]], 5, codec))


def test_or_impulse_nbytes_by_hand():
    # 10 samples x 100 steps x 200 neurons at 1:4 -> 25 stored steps x 200 bits = 25 bytes per step.
    buf = ReplayBuffer("spikes", 100, 200, ratio=4, codec="or_impulse")
    buf.add(spikes(10, 100, 200), list(range(10)), list(range(10)))
    assert buf.nbytes == 10 * 25 * 25 == 6250
    assert buf.nbytes == buf._data[: len(buf)].nbytes
    assert buf.bytes_per_sample == 625
    assert buf.nbytes_1bit == 6250  # bit-packing is exactly the paper's 1-bit model here


def test_paper_figure_depth3_1to10():
    # seed-spec §9: 2,560 samples x 50 neurons x 10 stored steps x 1 bit = 160,000 B ("160 KB").
    buf = ReplayBuffer("spikes", 100, 50, ratio=10, codec="or_impulse", capacity=2560)
    x = torch.rand(2560, 100, 50) < 0.05
    buf.add(x, torch.zeros(2560, dtype=torch.int64), np.arange(2560))
    assert buf.nbytes_1bit == 160_000
    assert buf.nbytes == 2560 * 10 * 7  # 50 bits padded to 7 bytes per stored step


def test_paper_per_sample_figures():
    # seed-spec §9 table, bytes per sample: raw input 700 x 100 -> 8,750; depth 1 (200 neurons) at 1:10 -> 250;
    # depth 3 (50 neurons) at 1:2 -> 312.5; input currents 200 x 100 float32 -> 80,000, at 1:10 -> 8,000.
    raw = ReplayBuffer("counts", 100, 700, ratio=1, codec="sum_impulse")
    raw.add(spikes(2, 100, 700, p=0.02), [0, 1], [0, 1])
    assert raw.nbytes_1bit / 2 == 8750
    assert raw.nbytes == 2 * 100 * 700  # stored as uint8 counts
    d1 = ReplayBuffer("spikes", 100, 200, ratio=10, codec="or_impulse")
    d1.add(spikes(2, 100, 200), [0, 1], [0, 1])
    assert d1.nbytes_1bit / 2 == 250 and d1.bytes_per_sample == 250
    d3 = ReplayBuffer("spikes", 100, 50, ratio=2, codec="or_impulse")
    d3.add(spikes(2, 100, 50), [0, 1], [0, 1])
    assert d3.nbytes_1bit / 2 == 312.5
    for ratio, expected in ((1, 80_000), (10, 8_000)):
        cur = ReplayBuffer("current", 100, 200, ratio=ratio, codec="sum_impulse")
        cur.add(torch.randn(2, 100, 200), [0, 1], [0, 1])
        assert cur.nbytes_1bit / 2 == expected and cur.bytes_per_sample == expected
    half = ReplayBuffer("current", 100, 200, ratio=10, codec="sum_impulse", current_dtype="float16")
    half.add(torch.randn(2, 100, 200), [0, 1], [0, 1])
    assert half.storage_dtype == torch.float16 and half.bytes_per_sample == 4_000 == half.nbytes_1bit / 2


def test_count_codec_storage_and_accounting():
    # Spike counts at 1:10 take 0..10: uint8 storage, ceil(log2 11) = 4 bits in the paper's accounting.
    x = spikes(3, 100, 20, seed=5, p=0.5)
    buf = ReplayBuffer("spikes", 100, 20, ratio=10, codec="count_spread")
    buf.add(x, [0, 1, 2], [0, 1, 2])
    assert buf.storage_dtype == torch.uint8 and buf.nbytes == 3 * 10 * 20
    assert buf.nbytes_1bit == 3 * 10 * 20 * 4 / 8
    assert torch.equal(buf.encoded([0, 1, 2]), encode(x, 10, "count_spread"))


def test_currents_round_trip_and_sum():
    x = torch.randn(4, 20, 6)
    buf = ReplayBuffer("current", 20, 6, ratio=1, codec="sum_impulse")
    buf.add(x, [0, 1, 2, 3], [0, 1, 2, 3])
    assert torch.equal(buf.batch([0, 1, 2, 3])[0], x)
    buf4 = ReplayBuffer("current", 20, 6, ratio=4, codec="sum_impulse")
    buf4.add(x, [0, 1, 2, 3], [0, 1, 2, 3])
    got = buf4.batch([2])[0].view(5, 4, 6)
    assert torch.allclose(got[:, 0], x[2].view(5, 4, 6).sum(1)) and not got[:, 1:].any()


def test_raw_counts_widen_storage_and_keep_values():
    # Counts up to 1 at 1:100 fit uint8 (<= 100); a later sample with counts of 3 needs up to 300 -> uint16.
    first = spikes(2, 100, 5, seed=6)
    buf = ReplayBuffer("counts", 100, 5, ratio=100, codec="sum_impulse")
    buf.add(first, [0, 0], [0, 1])
    assert buf.storage_dtype == torch.uint8
    buf.add(torch.full((1, 100, 5), 3.0), [1], [2])
    assert buf.storage_dtype == torch.uint16 and buf.nbytes == 3 * 1 * 5 * 2
    assert buf.encoded([0, 1]).to(torch.int64).squeeze(1).tolist() == first.sum(1).long().tolist()
    assert buf.batch([2])[0][0, 0].tolist() == [300.0] * 5
    assert buf.bits_per_entry == 9  # 0..300
    fixed = ReplayBuffer("counts", 100, 5, ratio=100, codec="count_burst", max_value=2)
    assert fixed.storage_dtype == torch.uint8  # 200 fits
    with pytest.raises(ValueError, match="max_value=2"):
        fixed.add(torch.full((1, 100, 5), 3.0), [0], [0])
    with pytest.raises(ValueError, match="non-negative integer"):
        fixed.add(torch.full((1, 100, 5), 0.5), [0], [0])


def test_growth_keeps_samples_and_counts_only_stored_bytes():
    x = spikes(13, 10, 9, seed=7)
    buf = ReplayBuffer("spikes", 10, 9, ratio=2, codec="or_impulse")
    start = 0
    for n in (1, 2, 3, 7):
        buf.add(x[start : start + n], list(range(start, start + n)), np.arange(start, start + n) + 100)
        start += n
        assert buf.nbytes == start * 5 * 2
    assert buf.capacity_nbytes >= buf.nbytes
    assert buf.labels.tolist() == list(range(13)) and buf.labels.dtype == torch.int64
    assert buf.sample_ids.dtype == np.int64 and buf.sample_ids.tolist() == list(range(100, 113))
    assert torch.equal(buf.batch(torch.arange(13))[0], decode(encode(x, 2, "or_impulse"), 2, "or_impulse"))


def test_rejects_duplicates_bad_shapes_and_values():
    buf = ReplayBuffer("spikes", 10, 4, ratio=5)
    buf.add(spikes(3, 10, 4), [0, 1, 2], [7, 8, 9])
    with pytest.raises(ValueError, match=r"\[9\]"):
        buf.add(spikes(2, 10, 4), [0, 1], [9, 10])
    with pytest.raises(ValueError, match="repeated"):
        buf.add(spikes(2, 10, 4), [0, 1], [11, 11])
    assert len(buf) == 3 and buf.sample_ids.tolist() == [7, 8, 9]
    with pytest.raises(ValueError, match=r"shape \[n, 10, 4\]"):
        buf.add(spikes(2, 10, 5), [0, 1], [20, 21])
    with pytest.raises(ValueError, match="need 2 labels"):
        buf.add(spikes(2, 10, 4), [0], [20, 21])
    with pytest.raises(ValueError, match="binary"):
        buf.add(2 * spikes(1, 10, 4, p=0.9), [0], [30])
    with pytest.raises(IndexError):
        buf.batch([3])


def test_config_errors():
    with pytest.raises(ConfigError, match="compression.codec"):
        ReplayBuffer("current", 100, 20, ratio=10, codec="or_impulse")
    with pytest.raises(ConfigError, match="compression.ratio"):
        ReplayBuffer("spikes", 100, 20, ratio=3)
    with pytest.raises(ConfigError, match="compression.current_dtype"):
        ReplayBuffer("current", 100, 20, codec="sum_impulse", current_dtype="int8")


def test_empty_buffer():
    buf = ReplayBuffer("spikes", 10, 4, capacity=8)
    assert len(buf) == 0 and buf.nbytes == 0 and buf.bytes_per_sample == 0 and buf.nbytes_1bit == 0
    assert buf.capacity_nbytes == 8 * 10 * 1


def test_select_class_balanced():
    # Classes 0 and 1 have 10 candidates each, class 2 only 2.
    labels = np.array([0] * 10 + [1] * 10 + [2] * 2)
    candidates = np.random.default_rng(0).permutation(22)
    picked = select_samples(labels, candidates, 12, "class_balanced", np.random.default_rng(1))
    # 12 / 3 = 4 each, but class 2 gives its 2 and the other 10 split 5 / 5.
    assert np.bincount(labels[picked], minlength=3).tolist() == [5, 5, 2]
    assert np.unique(picked).size == 12 and np.isin(picked, candidates).all()
    # Order follows candidates.
    pos = {c: i for i, c in enumerate(candidates.tolist())}
    assert [pos[p] for p in picked.tolist()] == sorted(pos[p] for p in picked.tolist())
    # 13: class 2 gives 2, the remaining 11 split 6 / 5 in some order.
    counts = np.bincount(labels[select_samples(labels, candidates, 13, "class_balanced", np.random.default_rng(2))])
    assert counts[2] == 2 and sorted(counts[:2].tolist()) == [5, 6]
    # Only candidates are ever chosen (e.g. train samples only).
    train = np.arange(0, 22, 2)
    assert np.isin(select_samples(labels, train, 6, "class_balanced", np.random.default_rng(3)), train).all()


def test_select_random_and_first_and_reproducible():
    labels = np.arange(50) % 5
    candidates = np.arange(10, 50)
    a = select_samples(labels, candidates, 15, "random", np.random.default_rng(7))
    b = select_samples(labels, candidates, 15, "random", np.random.default_rng(7))
    c = select_samples(labels, candidates, 15, "random", np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.size == 15 and np.unique(a).size == 15 and np.isin(a, candidates).all()
    assert np.array_equal(select_samples(labels, candidates, 15, "class_balanced", np.random.default_rng(4)),
                          select_samples(labels, candidates, 15, "class_balanced", np.random.default_rng(4)))
    assert select_samples(labels, candidates[::-1], 4, "first", np.random.default_rng(0)).tolist() == [49, 48, 47, 46]
    for sel in ("random", "first", "class_balanced"):
        assert np.array_equal(select_samples(labels, candidates, 99, sel, np.random.default_rng(0)), candidates)
        assert select_samples(labels, candidates, 0, sel, np.random.default_rng(0)).size == 0
    with pytest.raises(ConfigError, match="selection='herding'.*class_balanced, random, first"):
        select_samples(labels, candidates, 4, "herding", np.random.default_rng(0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind,codec", [("spikes", "or_impulse"), ("spikes", "count_spread"), ("counts", "sum_impulse")])
def test_cuda_buffer_equals_cpu(kind, codec):
    x = spikes(8, 100, 21, seed=9)
    out = []
    for device in ("cpu", "cuda"):
        buf = ReplayBuffer(kind, 100, 21, ratio=10, codec=codec, device=device)
        buf.add(x, list(range(8)), list(range(8)))
        data, labels = buf.batch([7, 2, 5])
        assert data.device.type == device and labels.device.type == device
        out.append((data.cpu(), buf.nbytes))
    assert torch.equal(out[0][0], out[1][0]) and out[0][1] == out[1][1]
