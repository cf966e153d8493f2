"""In-memory data sets for unit tests of the model, strategies and engine (no files)."""

from __future__ import annotations

import numpy as np

from spikecl.data import BinnedSpikes, SpikeDataset


def binned_from_dense(x: np.ndarray) -> BinnedSpikes:
    """BinnedSpikes of dense counts [N, T, U] (events sorted by sample, step, unit)."""
    n, steps, units = x.shape
    b, t, u = np.nonzero(x)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.add.at(offsets, b + 1, 1)
    return BinnedSpikes(np.cumsum(offsets), t.astype(np.uint8), u.astype(np.uint16), x[b, t, u].astype(np.uint8),
                        steps, units)


def clustered_dataset(n_per_class: int = 12, classes: int = 4, steps: int = 20, units: int = 24,
                      speakers: int = 3, seed: int = 0, rate: float = 0.15) -> SpikeDataset:
    """A learnable toy data set: each class fires mostly in its own band of input units."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    band = units // classes
    p = np.full((len(labels), steps, units), rate / 4)
    for i, c in enumerate(labels):
        p[i, :, c * band:(c + 1) * band] = rate
    x = (rng.random(p.shape) < p).astype(np.uint8) * rng.integers(1, 3, p.shape).astype(np.uint8)
    x[:, 0] = 0  # bin 0 is always empty in SHD binning
    return SpikeDataset(name="toy", spikes=binned_from_dense(x), labels=labels.astype(np.int64),
                        speakers=(np.arange(len(labels)) % speakers).astype(np.int64),
                        from_test_file=np.zeros(len(labels), dtype=bool),
                        class_names=[f"c{i}" for i in range(classes)], files=[])


def write_learnable_shd(root, classes: int = 4, speakers: int = 4, per_speaker_class: int = 5, seed: int = 0,
                        nb_units: int = 700, test_speakers: tuple[int, ...] = ()) -> None:
    """Write shd_train.h5/shd_test.h5 in the exact SHD schema with class-specific unit bands and timing.

    Speakers in ``test_speakers`` appear only in the test file, as speakers 4 and 5 of SHD do.
    """
    from tests.shd_factory import write_shd_file

    rng = np.random.default_rng(seed)
    rows = {"train": ([], [], [], []), "test": ([], [], [], [])}
    band = nb_units // classes
    for s in range(speakers):
        for c in range(classes):
            for r in range(per_speaker_class):
                k = int(rng.integers(300, 500))
                units = np.concatenate([rng.integers(c * band, (c + 1) * band, k), rng.integers(0, nb_units, k // 4)])
                times = np.concatenate([rng.uniform(0.1 + 0.1 * c, 0.5 + 0.1 * c, k), rng.uniform(0, 1.3, k // 4)])
                order = np.argsort(times)
                split = "test" if s in test_speakers or r == 0 else "train"
                for lst, v in zip(rows[split], (times[order], units[order], c, s)):
                    lst.append(v)
    for split, (t, u, lab, spk) in rows.items():
        write_shd_file(f"{root}/shd_{split}.h5", t, u, lab, spk)


def replay_plugin(stores: str = "latent", capacity: int | None = 16, growth: int | None = 4, mix: str = "sequential",
                  replay_ratio: float | None = None, policy: str = "Growing", **policy_args):
    """A Replay plugin with a storage policy (``Growing`` by default, as the paper) for unit tests."""
    from spikecl.cl import policies
    from spikecl.cl.plugins import Replay

    return Replay(stores=stores, policy=getattr(policies, policy)(capacity=capacity, growth=growth, **policy_args),
                  mix=mix, replay_ratio=replay_ratio)


def readout_plugin():
    """The paper's new-class readout columns, N(0.003, 0.003)."""
    from spikecl.cl.plugins import NewClassReadout

    return NewClassReadout(mean=0.003, std=0.003)


def shipped_plugin(name: str, **settings):
    """The plugin of ``conf/plugin/<name>.yaml`` with its shipped settings, changed by ``settings``."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from spikecl.cli import config_dir

    node = OmegaConf.load(config_dir() / "plugin" / f"{name}.yaml")
    return instantiate(OmegaConf.merge(node, settings))
