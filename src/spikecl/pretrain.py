"""Pretraining, cached: the pretrained model is a function of its inputs, so a sweep trains it once.

The cache key hashes exactly what determines the result: the spikecl release, the data (content
fingerprint), protocol and test fraction, the split (held-out speaker or class, or the old classes) with the
resulting pretraining train and test indices, the model config, the pretraining hyper-parameters and loss
regularisers, and the seed. An entry holds the weights, the test accuracy and the per-epoch metric rows; it
is written atomically, and a file lock makes parallel jobs that need the same entry wait for the first one
instead of training twice (where locks are not available, each trains and the atomic rename settles it).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

import spikecl
from spikecl.cl.sources import RawSource
from spikecl.data import SpikeDataset, Task
from spikecl.engine import Part, Timer, check_finite, minibatches, train_epoch
from spikecl.models.lif import RSNN
from spikecl.utils.atomic import write_with

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


def data_fingerprint(data: SpikeDataset) -> str:
    """Hash of the binned data set's content (events, labels, speakers, file of origin)."""
    h = hashlib.blake2b(digest_size=16)
    s = data.spikes
    for arr in (s.offsets, s.steps, s.units, s.counts, data.labels, data.speakers, data.from_test_file):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(f"{s.nb_steps}/{s.nb_units}".encode())
    return h.hexdigest()


def cache_key(cfg: DictConfig, data: SpikeDataset, pretrain_task: Task) -> str:
    """Key of the pretrained model for this configuration."""
    split = OmegaConf.to_container(cfg.split, resolve=True)
    fields = {
        "format": CACHE_FORMAT,
        "spikecl": spikecl.__version__,  # another release may train differently
        "data": data_fingerprint(data),
        "protocol": cfg.dataset.protocol,
        "test_fraction": cfg.dataset.test_fraction,
        "split": {k: v for k, v in split.items() if k != "new_classes"},  # learned after pretraining
        "train_idx": hashlib.blake2b(np.asarray(pretrain_task.train).tobytes(), digest_size=16).hexdigest(),
        "test_idx": hashlib.blake2b(np.asarray(pretrain_task.test).tobytes(), digest_size=16).hexdigest(),
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "pretrain": OmegaConf.to_container(cfg.pretrain, resolve=True),
        "loss": OmegaConf.to_container(cfg.loss, resolve=True),
        "seed": cfg.seed,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:24]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (POSIX); a no-op where file locks do not exist."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another job that is pretraining the same model (%s)", path.name)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _load(path: Path, model: RSNN) -> dict[str, Any] | None:
    """The cache entry at ``path`` loaded into ``model``, or None if absent or unreadable."""
    if not path.exists():
        return None
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(entry["state_dict"])
        return entry
    except Exception as exc:  # a corrupt entry is retrained, never trusted
        log.warning("pretraining cache entry %s is unreadable (%s): training again", path, exc)
        return None


def pretrain(model: RSNN, cfg: DictConfig, data: SpikeDataset, task: Task, device: torch.device,
             on_epoch: Callable[[int, float], dict[str, float]], progress: bool) -> dict[str, Any]:
    """Train every layer on the pretraining task; returns timing figures. ``on_epoch(epoch, loss)``
    evaluates and returns the metrics of that epoch."""
    p = cfg.pretrain
    optimizer = instantiate(p.optimizer)(model.parameters())
    source = RawSource(model, data.spikes, task.train, data.labels, 0, device)
    rng = np.random.default_rng([cfg.seed, 0])
    timer = Timer()
    reg = (cfg.loss.reg_l1, cfg.loss.reg_l2)
    for epoch in tqdm(range(1, p.epochs + 1), desc="pretraining", unit="epoch", disable=not progress):
        batches = [[Part(source, b)] for b in minibatches(rng.permutation(len(source)), p.batch_size)]
        loss = timer.run(partial(train_epoch, model, optimizer, batches, 0, reg, progress, f"pretrain epoch {epoch}"))
        check_finite(loss, "pretrain", 0, epoch, "pretrain.lr")
        on_epoch(epoch, loss)
    return {"seconds": timer.seconds, "samples_per_second": timer.rate}


def pretrained(model: RSNN, cfg: DictConfig, data: SpikeDataset, task: Task, device: torch.device,
               train: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """Load the pretrained weights from the cache, or call ``train()`` and store the result.

    Returns the entry's info (timings, metric rows: whatever ``train`` returned) and whether it was cached.
    """
    key = cache_key(cfg, data, task)
    folder = Path(cfg.cache_dir).expanduser() / "pretrained"
    path = folder / f"{key}.pt"
    with _locked(folder / f"{key}.lock"):
        entry = _load(path, model)
        if entry is not None:
            log.info("pretrained model loaded from the cache (%s); pretraining skipped", path)
            model.to(device)
            return entry["info"], True
        info = train()
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        write_with(path, lambda tmp: torch.save({"state_dict": state, "info": info}, tmp))
        log.info("pretrained model stored in the cache (%s)", path)
        return info, False
