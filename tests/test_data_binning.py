"""Binning (seed-spec 1.3) and the compact event storage: values worked out by hand, bulk == single."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.shd_factory import random_samples

import spikecl.data.binning as binning
from spikecl.data import BinnedSpikes, bin_dataset, bin_spikes

# Grid with float16-exact edges: 12 steps over [0, 1.375] -> edges 0, 0.125, ..., 1.375 (dt = 0.125).
GRID = dict(nb_steps=12, max_time=1.375, nb_units=8)


def test_bin_spikes_by_hand() -> None:
    times = np.array([0.0, 0.1, 1.375, 0.125, 0.2, 0.2, 1.3, 0.124], dtype=np.float16)
    units = np.array([2, 2, 5, 2, 7, 7, 0, 1], dtype=np.uint16)
    out = bin_spikes(times, units, **GRID)
    expected = torch.zeros(12, 8)
    expected[1, 2] = 2  # t = 0 and t = 0.1 (float16 0.09998): first interval [0, 0.125) -> step 1
    expected[2, 2] = 1  # t = 0.125 sits on an edge: digitize puts it in the next step
    expected[2, 7] = 2  # two spikes of unit 7 in one step add up
    expected[11, 0] = 1  # t = 1.3 (float16 1.2998) in [1.25, 1.375) -> last step
    expected[1, 1] = 1  # t = 0.124 (float16 0.1240) -> step 1
    # t = 1.375 == max_time is dropped; step 0 stays empty
    assert out.dtype == torch.float32 and out.shape == (12, 8)
    assert torch.equal(out, expected)


def test_bin_spikes_paper_grid() -> None:
    dt = 1.4 / 99
    times = [0.0, dt * 0.999, dt * 1.001, 1.4 - 1e-9, 1.4, 2.0, np.float16(1.3994140625)]
    out = bin_spikes(np.array(times), np.arange(7))
    assert out.shape == (100, 700)
    nz = {(int(s), int(u)) for s, u in out.nonzero()}
    assert nz == {(1, 0), (1, 1), (2, 2), (99, 3), (99, 6)}  # 1.4 and 2.0 dropped
    assert out[0].sum() == 0
    # float16 1.4 is 1.40039 > max_time: dropped too
    assert bin_spikes(np.array([1.4], dtype=np.float16), [0]).sum() == 0


def test_bin_spikes_empty_and_errors() -> None:
    assert torch.equal(bin_spikes(np.zeros(0, np.float16), np.zeros(0, np.uint16), **GRID), torch.zeros(12, 8))
    with pytest.raises(ValueError, match="unit index 8"):
        bin_spikes([0.1], [8], **GRID)
    with pytest.raises(ValueError, match="invalid time"):
        bin_spikes([0.1, -0.5], [1, 1], **GRID)
    with pytest.raises(ValueError, match="invalid time"):
        bin_spikes([np.nan], [1], **GRID)
    with pytest.raises(ValueError, match="2 spike times but 1 units"):
        bin_spikes([0.1, 0.2], [1], **GRID)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_bulk_equals_single(dtype: type) -> None:
    rng = np.random.default_rng(1)
    times, units = random_samples(rng, 60, max_spikes=300, nb_units=50)
    times = [t.astype(dtype) for t in times]
    grid = dict(nb_steps=20, max_time=1.4, nb_units=50)
    binned = bin_dataset(times, units, **grid)
    single = torch.stack([bin_spikes(t, u, **grid) for t, u in zip(times, units)])
    assert torch.equal(binned.dense(), single)
    assert single.max() >= 3  # counts, not 0/1, are exercised
    assert len(binned) == 60 and (binned.nnz_per_sample()[::12] == 0).all()


def test_bulk_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Groups of samples are binned separately (memory); the result must not depend on the grouping."""
    times, units = random_samples(np.random.default_rng(3), 40, max_spikes=120, nb_units=20)
    grid = dict(nb_steps=10, max_time=1.4, nb_units=20)
    whole = bin_dataset(times, units, **grid)
    monkeypatch.setattr(binning, "CHUNK_SPIKES", 50)
    chunked = bin_dataset(times, units, **grid)
    for name in ("offsets", "steps", "units", "counts"):
        assert np.array_equal(getattr(chunked, name), getattr(whole, name))
    assert torch.equal(chunked.dense(), torch.stack([bin_spikes(t, u, **grid) for t, u in zip(times, units)]))
    bad = [u.copy() for u in units]
    bad[37][-1] = 20
    with pytest.raises(ValueError, match="sample 37 has unit index 20"):
        bin_dataset(times, bad, **grid)


def test_bulk_no_samples() -> None:
    b = bin_dataset([], [], **GRID)
    assert len(b) == 0 and b.dense().shape == (0, 12, 8)
    b = bin_dataset([[], []], [[], []], **GRID)  # plain lists: empty samples only
    assert b.offsets.tolist() == [0, 0, 0] and b.dense().sum() == 0
    assert bin_spikes([], [], **GRID).sum() == 0


def test_bulk_by_hand_layout() -> None:
    times = [np.array([0.3, 0.0, 0.0, 1.375], np.float16), np.array([], np.float16), np.array([1.0], np.float16)]
    units = [np.array([4, 6, 6, 1], np.uint16), np.array([], np.uint16), np.array([0], np.uint16)]
    b = bin_dataset(times, units, **GRID)
    assert b.offsets.tolist() == [0, 2, 2, 3]
    assert b.steps.tolist() == [1, 3, 9] and b.units.tolist() == [6, 4, 0] and b.counts.tolist() == [2, 1, 1]
    assert b.steps.dtype == np.uint8 and b.units.dtype == np.uint16 and b.counts.dtype == np.uint8
    assert b.nbytes == 4 * 8 + 3 + 6 + 3


def test_bulk_wide_dtypes() -> None:
    times = [np.full(300, 0.5, np.float16)]
    units = [np.zeros(300, np.uint16)]
    b = bin_dataset(times, units, nb_steps=300, max_time=1.4, nb_units=4)
    assert b.steps.dtype == np.uint16 and b.counts.dtype == np.uint16 and b.counts.tolist() == [300]


def test_bulk_errors_name_the_sample() -> None:
    ok_t, ok_u = np.array([0.1], np.float16), np.array([1], np.uint16)
    with pytest.raises(ValueError, match="sample 1 has 2 spike times but 1 units"):
        bin_dataset([ok_t, np.array([0.1, 0.2], np.float16)], [ok_u, ok_u], **GRID)
    with pytest.raises(ValueError, match=r"sample 2 has unit index 9, outside \[0, 8\)"):
        bin_dataset([ok_t, ok_t, ok_t], [ok_u, ok_u, np.array([9], np.uint16)], **GRID)
    with pytest.raises(ValueError, match="sample 1 has an invalid spike time"):
        bin_dataset([ok_t, np.array([np.nan], np.float16)], [ok_u, ok_u], **GRID)
    with pytest.raises(ValueError, match="sample 0 has an invalid spike time"):
        bin_dataset([np.array([-0.01])], [ok_u], **GRID)


def _random_binned(seed: int = 2) -> BinnedSpikes:
    times, units = random_samples(np.random.default_rng(seed), 25, max_spikes=200, nb_units=30)
    return bin_dataset(times, units, nb_steps=16, max_time=1.4, nb_units=30)


def test_dense_csr_subset_agree() -> None:
    b = _random_binned()
    full = b.dense()
    idx = np.array([7, 0, 7, 24, 5])
    dense = b.dense(idx)
    assert torch.equal(dense, full[idx])
    csr = b.csr(idx)
    assert csr.layout == torch.sparse_csr and csr.shape == (5 * 16, 30)
    assert torch.equal(csr.to_dense(), dense.reshape(-1, 30))
    sub = b.subset(idx)
    assert torch.equal(sub.dense(), dense)
    assert torch.equal(b.subset(full.sum((1, 2)) > 0).dense(), full[full.sum((1, 2)) > 0])
    assert torch.equal(b.dense(torch.tensor([3, -1])), full[[3, 24]])
    assert b.dense([]).shape == (0, 16, 30)


def test_concatenate_and_checks() -> None:
    b = _random_binned()
    both = BinnedSpikes.concatenate([b.subset(slice(0, 10)), b.subset(slice(10, None))])
    assert torch.equal(both.dense(), b.dense())
    with pytest.raises(ValueError, match="offsets"):
        BinnedSpikes(b.offsets[::-1].copy(), b.steps, b.units, b.counts, 16, 30)
    with pytest.raises(ValueError, match="grid"):
        BinnedSpikes(b.offsets, b.steps, b.units, b.counts, 16, 3)
