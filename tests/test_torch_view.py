"""SpikeDataset.as_torch: a torch Dataset of (frames, label, speaker), dense or sparse, through DataLoaders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torch.utils.data.dataloader import default_collate

from spikecl.data import BinnedSpikes, SpikeDataset
from spikecl.data.torch_view import SpikeTorchDataset, collate_sparse
from tests.factories import binned_from_dense

N, T, U = 23, 7, 5


@pytest.fixture(scope="module")
def data() -> tuple[SpikeDataset, torch.Tensor]:
    rng = np.random.default_rng(0)
    x = (rng.random((N, T, U)) < 0.3) * rng.integers(1, 4, (N, T, U))
    x[3] = 0  # an empty sample
    ds = SpikeDataset(name="toy", spikes=binned_from_dense(x.astype(np.uint8)),
                      labels=np.arange(N, dtype=np.int64),  # unique labels: a shuffled batch maps back to samples
                      speakers=(np.arange(N) * 7 % 5).astype(np.int64), from_test_file=np.arange(N) % 4 == 0,
                      class_names=[], files=[])
    return ds, torch.from_numpy(x.astype(np.float32))


def test_items_dense(data: tuple[SpikeDataset, torch.Tensor]) -> None:
    ds, x = data
    view = ds.as_torch()
    assert isinstance(view, SpikeTorchDataset) and len(view) == N and (view.nb_steps, view.nb_units) == (T, U)
    frames, label, speaker = view[5]
    assert frames.shape == (T, U) and frames.dtype == torch.float32 and torch.equal(frames, x[5])
    assert (label, speaker) == (5, 35 % 5) and type(label) is int and type(speaker) is int
    assert torch.equal(view[3][0], torch.zeros(T, U))
    counts = ds.as_torch(dtype=torch.uint8)[5][0]
    assert counts.dtype == torch.uint8 and torch.equal(counts.float(), x[5])


def test_indices(data: tuple[SpikeDataset, torch.Tensor]) -> None:
    ds, x = data
    train = np.flatnonzero(~ds.from_test_file)
    view = ds.as_torch(train)
    assert len(view) == len(train) and [view[i][1] for i in range(len(view))] == train.tolist()
    assert [item[1] for item in ds.as_torch(torch.tensor([4, -1]))] == [4, N - 1]
    assert [item[1] for item in ds.as_torch(ds.from_test_file)] == np.flatnonzero(ds.from_test_file).tolist()
    assert [item[1] for item in ds.as_torch(slice(2, 5))] == [2, 3, 4]
    with pytest.raises(IndexError):
        ds.as_torch([N])


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_dense(data: tuple[SpikeDataset, torch.Tensor], workers: int) -> None:
    ds, x = data
    loader = DataLoader(ds.as_torch(), batch_size=4, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))
    seen = []
    for frames, labels, speakers in loader:  # default_collate
        assert frames.shape[1:] == (T, U) and frames.dtype == torch.float32 and len(frames) <= 4
        assert labels.dtype == speakers.dtype == torch.int64
        assert torch.equal(frames, x[labels]) and torch.equal(speakers, torch.from_numpy(ds.speakers)[labels])
        seen += labels.tolist()
    assert sorted(seen) == list(range(N)) and seen != list(range(N))  # all samples once, shuffled


# torch itself rebuilds sparse batches that come back from worker processes, and warns while doing so.
@pytest.mark.filterwarnings("ignore:Sparse invariant checks are implicitly disabled")
@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_sparse(data: tuple[SpikeDataset, torch.Tensor], workers: int) -> None:
    ds, x = data
    view = ds.as_torch(np.arange(1, N), dense=False)
    item = view[0][0]
    assert item.is_sparse and item.is_coalesced() and item.shape == (T, U) and torch.equal(item.to_dense(), x[1])
    loader = DataLoader(view, batch_size=5, shuffle=True, num_workers=workers, collate_fn=collate_sparse)
    seen = []
    for frames, labels, speakers in loader:
        assert frames.is_sparse and frames.is_coalesced() and frames.shape == (len(labels), T, U)
        assert torch.equal(frames.to_dense(), x[labels]) and labels.dtype == torch.int64
        assert torch.equal(speakers, torch.from_numpy(ds.speakers)[labels])
        seen += labels.tolist()
    assert sorted(seen) == list(range(1, N))
    with pytest.raises(RuntimeError, match="sparse"):  # why collate_sparse exists
        default_collate([view[0], view[1]])


def test_batches_built_from_their_own_events(data: tuple[SpikeDataset, torch.Tensor],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch gathers only its samples' events; the whole data set is never densified."""
    ds, x = data
    sizes = []
    original = BinnedSpikes.subset
    monkeypatch.setattr(BinnedSpikes, "subset", lambda self, idx: sizes.append(len(idx)) or original(self, idx))
    monkeypatch.setattr(BinnedSpikes, "dense", lambda *a, **k: pytest.fail("no whole-set densification"))
    for dense in (True, False):
        loader = DataLoader(ds.as_torch(dense=dense), batch_size=6,
                            collate_fn=default_collate if dense else collate_sparse)
        batches = list(loader)
        assert len(batches) == 4
    assert sizes == [6, 6, 6, 5] * 2  # one vectorised gather per batch (__getitems__)


def test_bad_arguments(data: tuple[SpikeDataset, torch.Tensor]) -> None:
    ds, _ = data
    with pytest.raises(ValueError, match="dtype"):
        ds.as_torch(dtype=torch.bool)
    big = np.zeros((2, T, U), dtype=np.uint16)
    big[0, 1, 2] = 300
    spikes = binned_from_dense(big)
    spikes = BinnedSpikes(spikes.offsets, spikes.steps, spikes.units, big[big > 0].astype(np.uint16), T, U)
    wide = SpikeDataset(name="w", spikes=spikes, labels=np.zeros(2, np.int64), speakers=np.zeros(2, np.int64),
                        from_test_file=np.zeros(2, bool), class_names=[], files=[])
    with pytest.raises(ValueError, match="cannot hold spike counts up to 300"):
        wide.as_torch(dtype=torch.uint8)
    assert wide.as_torch()[0][0][1, 2] == 300.0
    with pytest.raises(ValueError, match="empty batch"):
        collate_sparse([])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_frames_on_cuda(data: tuple[SpikeDataset, torch.Tensor]) -> None:
    ds, x = data
    frames, labels, _ = next(iter(DataLoader(ds.as_torch(device="cuda"), batch_size=4)))
    assert frames.is_cuda and torch.equal(frames.cpu(), x[labels])
    sparse, labels, _ = next(iter(DataLoader(ds.as_torch(dense=False, device="cuda"), batch_size=4,
                                             collate_fn=collate_sparse)))
    assert sparse.is_cuda and torch.equal(sparse.to_dense().cpu(), x[labels])
